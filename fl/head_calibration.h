#pragma once
// The head calibration pass: what a merged model owes each member at the end of its training.
//
// While heads share the encoder, every task's features move with its mates' steps, and a head
// is fitted to features that keep moving under it (docs/merge-and-split.md, "Why the capped
// task loses"). At a member's last round the encoder stops for it, so its head can be fitted to
// the encoder it will be delivered with. After that round's aggregation, each of the round's
// clients trains only the finishing members' heads on its own samples for one local epoch,
// from the aggregated model, with the encoder frozen; the server replaces those heads by the
// sample-weighted mean of the clients' (plain FedAvg: the server optimiser, which steps the
// whole model, does not see this pass). The encoder and every other head are left bit for bit.
// A single-head job never calibrates: it is what "alone" means.
//
// Simulation only (a catalog data set): real clients would need a second lease in the round.
// Deterministic: each client's batch order comes from its task seed, mixed with a constant of
// this pass. Internal to fl/ (torch types).
#include <functional>
#include <vector>

#include "core/result.h"
#include "fl/model.h"
#include "fl/partition.h"
#include "fl/round_clients.h"
#include "fl/training.h"

namespace mufl::fl {

// Calibrates heads `heads` (indices into global's tasks) of `global` in place, on `clients`
// (their partitions of `data`), training each on `worker` (a model of global's shape) with
// `options` (its epochs, batch size and learning rate; head_only is set here). Returns
// the samples trained; sets `stopped` and changes nothing when `should_stop` fires.
// REQUIRES: no ssl head among `heads`; clients within the partition.
Result<int64_t> calibrate_heads(MultiTaskNet& global, MultiTaskNet& worker, const TaskData& data,
                                const Partition& partition, const std::vector<ClientTask>& clients,
                                const std::vector<size_t>& heads, LocalTrainOptions options,
                                const std::function<bool()>& should_stop, bool& stopped);

}  // namespace mufl::fl
