#pragma once
// The rules for a submitted activity: which fields exist, their types, ranges and defaults.
// docs/openapi.yaml (ActivitySpec) documents the same table; keep them in step.
#include <cstdint>

#include <nlohmann/json_fwd.hpp>

#include "core/activity.h"
#include "core/catalog.h"
#include "core/result.h"

namespace mufl::tenants {

// Limits a request must stay within.
inline constexpr int64_t kMaxRounds = 10'000;
inline constexpr int64_t kMaxClients = 10'000;
inline constexpr int64_t kMaxLocalEpochs = 100;
inline constexpr int64_t kMaxBatchSize = 4'096;
inline constexpr double kMaxLearningRate = 10.0;
inline constexpr double kMaxDirichletAlpha = 1'000.0;
inline constexpr double kMaxProxMu = 10.0;
inline constexpr int64_t kMinPriority = -1'000;
inline constexpr int64_t kMaxPriority = 1'000;
inline constexpr size_t kMaxNameLength = 128;
inline constexpr int64_t kMinRoundTimeoutSeconds = 5, kMaxRoundTimeoutSeconds = 86'400;

// Defaults for fields a request leaves out (ActivitySpec holds the same values).
inline constexpr int64_t kDefaultClients = 32;
inline constexpr int64_t kDefaultClientsPerRound = 5;  // capped at `clients`
inline constexpr int64_t kDefaultRoundTimeoutSeconds = 300;

// The aggregators the runtime offers (Reddi et al., "Adaptive Federated Optimization").
inline constexpr const char* kAggregators[] = {"fedavg", "fedavgm", "fedadam", "fedyogi", "fedadagrad"};
// How a round's updates are weighted: by samples (FedAvg) or by cosine distance (FedReID).
inline constexpr const char* kWeightings[] = {"samples", "cosine"};
// Where a client starts its local training: the global model (FedAvg) or FedEMA's EMA.
inline constexpr const char* kLocalUpdates[] = {"fedavg", "fedema"};
// FedEMA's λ at most (μ = min(λ·divergence, 1) reaches 1 at a divergence of 1/λ).
inline constexpr double kMaxEmaLambda = 1e6;
// Client clustering (FedReID): at most this many clusters, and at most this many clients, since
// the clustering round holds every client's update at once (1,000 × the 35k-parameter model in
// float32 is 140 MB) and compares every pair (docs/tasks.md).
inline constexpr int64_t kMaxClientClusters = 16;
inline constexpr int64_t kMaxClusteredClients = 1'000;
// "local_epochs": "personalized" without max_local_epochs: the largest client trains this many.
inline constexpr int64_t kDefaultPersonalizedEpochs = 5;

// Parses and validates the body of POST /v1/activities against `catalog`, filling in defaults.
// The activity trains on a catalog `dataset` or on a `federation`'s clients, one of the two; on
// a federation `clients` and `partition` do not apply (its clients hold their data) and
// `round_timeout_seconds` does. Whether the federation exists and what its schema is, the
// caller checks (spec.schema is left at its default).
// `now_ms` is the current time, against which `deadline` must lie in the future.
// Returns kInvalidArgument listing every bad field (unknown, missing, wrong type, out of range,
// unknown data set or task) in one Status.
Result<ActivitySpec> parse_activity_spec(const nlohmann::json& body, const Catalog& catalog, int64_t now_ms);

}  // namespace mufl::tenants
