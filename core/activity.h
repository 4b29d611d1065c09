#pragma once
// Activity: one FL training job a tenant submitted, and the settings it runs with.
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include <nlohmann/json_fwd.hpp>

#include "core/federation.h"

namespace mufl {

// Lifecycle (docs/openapi.yaml lists the same names):
//   queued → consolidating → splitting → training → succeeded | failed | cancelled
// The names are stored in SQLite: never rename one.
enum class ActivityState { kQueued, kConsolidating, kSplitting, kTraining, kSucceeded, kFailed, kCancelled };

inline constexpr ActivityState kAllActivityStates[] = {
    ActivityState::kQueued,    ActivityState::kConsolidating, ActivityState::kSplitting, ActivityState::kTraining,
    ActivityState::kSucceeded, ActivityState::kFailed,        ActivityState::kCancelled};

const char* to_string(ActivityState s);
std::optional<ActivityState> parse_activity_state(std::string_view s);
// Succeeded, failed and cancelled are terminal: nothing changes an activity after them.
bool is_terminal(ActivityState s);

struct Partition {
  std::string kind = "iid";  // "iid" | "dirichlet"
  double alpha = 0.5;        // Dirichlet concentration; used only when kind == "dirichlet"
  bool operator==(const Partition&) const = default;
};

// What the tenant asked for, with every default filled in. Defaults are documented in
// docs/openapi.yaml (ActivitySpec) and enforced by tenants/activity_spec.h.
struct ActivitySpec {
  std::string name;
  std::string dataset;     // a catalog data set, simulated in mufld; empty on a federation
  std::string federation;  // "fed_…": real clients train it (docs/clients.md); empty for a data set
  DataSchema schema;       // the federation's, as it was at submission (the model's input)
  // How long a round's chosen clients have to report (federation only).
  int64_t round_timeout_seconds = 300;
  std::string task;
  int64_t rounds = 0;
  int64_t clients = 32;
  int64_t clients_per_round = 5;
  int64_t min_clients = 1;  // reports a round needs to aggregate (the others dropped out)
  // Local epochs per round; with personalized_epochs the most a client trains, the largest
  // client's (FedUReID's personalised epochs: fl/training.h, personalized_epochs()).
  int64_t local_epochs = 1;
  bool personalized_epochs = false;
  int64_t batch_size = 32;
  double learning_rate = 0.05;
  double prox_mu = 0.0;     // FedProx proximal term; 0 is plain local SGD
  std::string aggregator = "fedavg";
  // How a round's updates are weighted: "samples" (FedAvg: by training samples) or "cosine"
  // (FedReID: by the cosine distance of each client's model before and after training).
  std::string weighting = "samples";
  // Where a client starts its local training: "fedavg" (the global model) or "fedema" (FedEMA,
  // Zhuang et al. 2022: an EMA of its kept local model and the global model, weighted by their
  // divergence; fl/fedema.h). ema_lambda is FedEMA's λ, 0 for "auto".
  std::string local_update = "fedavg";
  double ema_lambda = 0.0;
  // FedReID's client clustering: after round `cluster_round` the clients train and are
  // aggregated in `client_clusters` clusters of similar updates (fl/fl_job.h); 1 is off.
  int64_t client_clusters = 1;
  int64_t cluster_round = 1;
  Partition partition;
  int64_t seed = 0;
  bool merge = true;
  int64_t priority = 0;
  std::optional<int64_t> deadline_unix_ms;
  bool operator==(const ActivitySpec&) const = default;
};

// How far training got. Written by the executor after every round, in the same transaction as
// the round's record and checkpoint.
struct ActivityProgress {
  int64_t rounds_done = 0;
  std::string device;            // the slot training it ("cpu:0"); empty when not running
  int64_t started_unix_ms = 0;   // first time it started training; 0 when it never did
  int64_t finished_unix_ms = 0;  // when it reached a terminal state after training; 0 otherwise
  std::string last_round_json;   // the latest round's report (JSON object); empty before round 1
  bool has_model = false;        // a final model can be downloaded
  bool operator==(const ActivityProgress&) const = default;
};

struct Activity {
  std::string id;         // "act_…"
  std::string tenant_id;  // owner
  int64_t seq = 0;        // creation order, increasing; the basis of pagination
  ActivitySpec spec;
  ActivityState state = ActivityState::kQueued;
  std::string state_reason;  // why it is in this state, when that is not obvious
  int64_t created_unix_ms = 0;
  int64_t updated_unix_ms = 0;
  ActivityProgress progress;
};

// The stored form of a spec (JSON object with every field). spec_from_json accepts only what
// spec_to_json wrote; the strict parser for requests is tenants/activity_spec.h.
nlohmann::json spec_to_json(const ActivitySpec& spec);
ActivitySpec spec_from_json(const nlohmann::json& j);

}  // namespace mufl
