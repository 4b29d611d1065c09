#pragma once
// Client partitions of a training set: which sample indices each simulated client holds.
// IID deals a seeded shuffle out evenly; Dirichlet draws, for every label, the share of each
// client from Dir(alpha) (label skew; Hsu et al. 2019): small alpha → each client sees few labels.
// Deterministic for a given seed (std::mt19937_64 and libstdc++'s distributions). Torch-free.
// Each client's indices are sorted ascending: the order carries no information (local training
// shuffles) and sorted indices gather faster.
#include <cstdint>
#include <vector>

#include "core/result.h"

namespace mufl::fl {

using Partition = std::vector<std::vector<int64_t>>;  // client → sample indices

// Every index 0..num_samples-1 appears in exactly one client; sizes differ by at most one
// (so some clients are empty when clients > num_samples).
// REQUIRES: clients >= 1 (an empty partition otherwise).
Partition partition_iid(int64_t num_samples, int clients, uint64_t seed);

// Every index appears in exactly one client. Every client gets at least `min_per_client`
// samples (the proportions are redrawn up to 100 times until so, then the shortfall is topped
// up one sample at a time from the largest client) so that no client is empty.
// kInvalidArgument when clients < 1, num_classes < 1, a label is outside 0..num_classes-1,
// alpha <= 0 (or not finite), min_per_client < 0, or clients * min_per_client > labels.size().
Result<Partition> partition_dirichlet(const std::vector<int64_t>& labels, int num_classes, int clients, double alpha,
                                      uint64_t seed, int64_t min_per_client = 1);

}  // namespace mufl::fl
