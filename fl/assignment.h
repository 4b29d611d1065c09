#pragma once
// Assignment: what a federation client trains for one lease (docs/clients.md, "Lease"), and
// LocalReport, what it reports with its update. The server writes an assignment into the
// lease's JSON; mufl-client reads it back and trains it with train_assignment(), the same
// train_local the in-process simulation runs. Torch-free header.
#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/result.h"

namespace mufl::fl {

struct Assignment {
  std::vector<std::string> tasks;  // one per head, in the model's order
  std::vector<std::string> heads;  // the heads' keys, parallel to tasks
  // The model's input and the labels of the data (the federation's schema).
  int64_t channels = 1, height = 28, width = 28, labels = 10;
  int64_t epochs = 1;
  // > 0: FedUReID's personalised epochs (fl/training.h, personalized_epochs()): the client
  // trains personalized_epochs(epochs, its training samples, this) epochs, this being the
  // federation's largest client. 0: every client trains `epochs`.
  int64_t personalize_max_samples = 0;
  int64_t batch_size = 32;
  double learning_rate = 0.05;
  double momentum = 0.9;
  double weight_decay = 5e-4;
  double prox_mu = 0;
  int64_t affinity_every = 0;
  std::string encoder_gradient = "mean";  // "mean" | "sum" (fl/encoder_gradient.h)
  std::string balance = "none";           // fl::parse_task_balance's names
  double encoder_step = 1.0;              // LocalTrainOptions::encoder_step, in (0, 1]
  uint64_t seed = 0;                      // the client's training seed for this round and draw
  // Where the client starts: "fedavg" (the global model) or "fedema" (FedEMA, fl/fedema.h: from
  // the EMA of the model it kept for `job` and the global one; it then keeps its trained model).
  std::string local_update = "fedavg";
  double ema_lambda = 0;  // FedEMA's λ; 0 is "auto"
  std::string job;        // "fedema": the job whose model the client keeps (a plain name)
  int64_t round = 0;      // "fedema": the lineage round (1-based) the lease trains
};

// {"heads": [{"key", "task"}], "input": {"channels", "height", "width", "labels"},
//  "local": {...}, "seed": "<decimal>"} (the seed as a string: JSON numbers lose bits above
// 2^53 in many clients). With personalised epochs only, "local" adds "personalize_max_samples"
// (a client that predates it trains every epoch, as before). Below 1 only, "local" adds
// "encoder_step" (by_kind's ramp after a split; a client that predates it takes full steps). With "fedema" only, "local" adds "local_update" and "ema_lambda", and
// the object "fedema": {"job", "round"}; an assignment without them is FedAvg's, as before.
nlohmann::json assignment_to_json(const Assignment& a);
// kInvalidArgument naming the first bad field.
Result<Assignment> assignment_from_json(const nlohmann::json& j);

struct HeadEval {
  std::string head, task, metric;
  double loss = 0, value = 0;
};

struct LocalReport {
  int64_t num_samples = 0;  // training samples held (the FedAvg weight)
  int64_t samples = 0;      // samples trained, every epoch counted
  int64_t steps = 0;
  double mean_loss = 0;
  std::vector<std::vector<double>> affinity;  // K×K, empty when the lookahead was off
  // Each head's alignment with its mates (LocalResult::alignment), in [-1, 1]; empty for one
  // head. Optional on the wire ("alignment"): a client of an older build leaves it out.
  std::vector<double> alignment;
  int64_t lookaheads = 0;
  int64_t test_samples = 0;     // the held-out part evaluated (0: none)
  std::vector<HeadEval> eval;   // per head on the held-out part; empty without one
  // The client's own energy for the lease (loading, training, evaluating), as its meter read
  // it: "rapl", "nvml" or "model"; empty when the client did not meter itself.
  std::string energy_meter;
  double energy_joules = 0;
};

// The most joules one report may claim (about 278 kWh): a bound against absurd figures, far
// above what any client spends on one lease.
inline constexpr double kMaxReportJoules = 1e9;

nlohmann::json local_report_to_json(const LocalReport& r);
Result<LocalReport> local_report_from_json(const nlohmann::json& j);

// The metadata key of an update file that holds its LocalReport as JSON text.
inline constexpr const char* kReportMetadataKey = "mufl.report";

// How a client reads its own energy meter (mufl-client wraps scheduler/energy/meters.h):
// `meter` names it, `joules` reads its monotonic counter, and `busy` (optional) tells a power
// model when the work starts and ends. Without `joules` the report carries no energy.
struct EnergyProbe {
  std::string meter;
  std::function<double()> joules;
  std::function<void(bool)> busy;
};

// The client's side of a lease: loads its data from `data_dir` (fl/client_data.h), builds the
// model the assignment names with `global_weights` (safetensors), trains it with the
// assignment's settings and seed, evaluates it on the held-out part, and returns the update:
// safetensors of its weights with its LocalReport under kReportMetadataKey, with the joules
// `energy` measured over the whole lease when it is set. kInvalidArgument
// when the weights do not fit the model or the data do not fit its tasks; kUnavailable
// ("stopped") when `should_stop` said so.
//
// FedEMA ("local_update": "fedema"): the client keeps its models under `state_dir`/<job>
// (fl/fedema_clients.h: a file per round it trained, so a server that redoes a round after a
// crash gets the same start), starts from their EMA with the global model, keeps the trained
// one and removes its files older than round − 2 needs (mufld trusts its two newest
// checkpoints). kInvalidArgument naming local_update without a `state_dir`; the state's own
// errors as FedEmaClients says.
Result<std::string> train_assignment(const Assignment& a, std::string_view global_weights, const std::string& data_dir,
                                     const std::string& device, const std::function<bool()>& should_stop = {},
                                     const EnergyProbe& energy = {}, const std::string& state_dir = {});

}  // namespace mufl::fl
