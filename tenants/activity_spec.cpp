#include "tenants/activity_spec.h"

#include <algorithm>
#include <limits>
#include <optional>

#include <nlohmann/json.hpp>

#include "core/time_format.h"
#include "tenants/json_fields.h"

namespace mufl::tenants {
namespace {

std::string join_names(const std::vector<std::string>& names) {
  std::string out;
  for (const auto& n : names) out += (out.empty() ? "" : ", ") + n;
  return out;
}

// Sets `into` to `value` when it is one of `names`; otherwise names the field and the choices.
template <size_t N>
void pick_one(FieldReader& r, const char* field, const std::optional<std::string>& value,
              const char* const (&names)[N], std::string& into) {
  if (!value) return;
  std::string choices;
  for (const char* name : names) {
    if (*value == name) {
      into = *value;
      return;
    }
    choices += (choices.empty() ? "" : ", ") + std::string(name);
  }
  r.fail(field, "unknown " + std::string(field) + " '" + *value + "'; one of " + choices);
}

// Client clustering: k clusters of the activity's clients (a catalog data set's, or a
// federation's), clustered after a round the activity reaches. Called once the other fields are in `spec`.
void check_clusters(FieldReader& r, const std::optional<int64_t>& k, const std::optional<int64_t>& after,
                    ActivitySpec& spec) {
  if (after && (!k || *k == 1)) r.fail("cluster_round", "applies only with \"client_clusters\" above 1");
  if (!k || *k == 1) return;
  // On a federation the enrolled clients are the population: known only when it clusters.
  const bool federated = !spec.federation.empty();
  if (spec.task == "ssl")
    r.fail("client_clusters", "does not apply to task 'ssl' (each cluster would need its own linear probe)");
  else if (!federated && *k > spec.clients)
    r.fail("client_clusters", "must not exceed clients (" + std::to_string(spec.clients) + ")");
  else if (!federated && spec.clients > kMaxClusteredClients)
    r.fail("client_clusters", "clusters at most " + std::to_string(kMaxClusteredClients) +
                                  " clients: the clustering round compares every client's update");
  spec.client_clusters = *k;
  if (!after) return;
  if (spec.rounds > 0 && *after > spec.rounds)
    r.fail("cluster_round", "must not exceed rounds (" + std::to_string(spec.rounds) + ")");
  spec.cluster_round = *after;
}

}  // namespace

Result<ActivitySpec> parse_activity_spec(const nlohmann::json& body, const Catalog& catalog, int64_t now_ms) {
  std::vector<FieldError> errors;
  FieldReader r(body, "", errors);
  ActivitySpec spec;

  auto name = r.string("name", true, 1, kMaxNameLength);
  auto dataset = r.string("dataset", false, 1, 64);
  auto federation = r.string("federation", false, 1, 64);
  if (!body.contains("dataset") && !body.contains("federation"))  // named here: errors keep the fields' order
    r.fail("dataset", "is required (or a federation whose clients train it)");
  auto round_timeout = r.integer("round_timeout_seconds", false, kMinRoundTimeoutSeconds, kMaxRoundTimeoutSeconds);
  auto task = r.string("task", true, 1, 64);
  auto rounds = r.integer("rounds", true, 1, kMaxRounds);
  auto clients = r.integer("clients", false, 1, kMaxClients);
  auto per_round = r.integer("clients_per_round", false, 1, kMaxClients);
  auto min_clients = r.integer("min_clients", false, 1, kMaxClients);
  // An integer, or "personalized" (FedUReID: each client's epochs follow its data volume).
  const bool personalized = body.contains("local_epochs") && body["local_epochs"].is_string();
  std::optional<int64_t> epochs;
  if (personalized) {
    auto rule = r.string("local_epochs", false, 1, 32);
    if (rule && *rule != "personalized")
      r.fail("local_epochs", "must be an integer from 1 to " + std::to_string(kMaxLocalEpochs) + ", or \"personalized\"");
  } else {
    epochs = r.integer("local_epochs", false, 1, kMaxLocalEpochs);
  }
  auto max_epochs = r.integer("max_local_epochs", false, 1, kMaxLocalEpochs);
  auto batch = r.integer("batch_size", false, 1, kMaxBatchSize);
  auto lr = r.number("learning_rate", false, 0.0, true, kMaxLearningRate);
  auto prox_mu = r.number("prox_mu", false, 0.0, false, kMaxProxMu);
  auto aggregator = r.string("aggregator", false, 1, 32);
  auto weighting = r.string("weighting", false, 1, 32);
  auto local_update = r.string("local_update", false, 1, 32);
  // A number > 0, or "auto" (the default): τ / the client's first divergence.
  const bool lambda_auto = body.contains("ema_lambda") && body["ema_lambda"].is_string();
  std::optional<double> ema_lambda;
  if (lambda_auto) {
    auto word = r.string("ema_lambda", false, 1, 32);
    if (word && *word != "auto") r.fail("ema_lambda", "must be a number > 0, or \"auto\"");
  } else {
    ema_lambda = r.number("ema_lambda", false, 0.0, true, kMaxEmaLambda);
  }
  auto client_clusters = r.integer("client_clusters", false, 1, kMaxClientClusters);
  auto cluster_round = r.integer("cluster_round", false, 1, kMaxRounds);
  const nlohmann::json* partition = r.object("partition", false);
  auto seed = r.integer("seed", false, 0, std::numeric_limits<int64_t>::max());
  auto merge = r.boolean("merge", false);
  auto priority = r.integer("priority", false, kMinPriority, kMaxPriority);
  auto deadline = r.string("deadline", false, 1, 64);
  r.finish();

  if (name) spec.name = *name;
  const bool on_federation = federation.has_value();
  if (on_federation && dataset) r.fail("federation", "give a dataset or a federation, not both");
  if (on_federation) {
    spec.federation = *federation;
    if (body.contains("clients")) r.fail("clients", "does not apply on a federation: its enrolled clients are the population");
    if (body.contains("partition")) r.fail("partition", "does not apply on a federation: its clients hold their own data");
    if (round_timeout) spec.round_timeout_seconds = *round_timeout;
  } else if (round_timeout) {
    r.fail("round_timeout_seconds", "applies only on a federation");
  }
  if (dataset) {
    if (catalog.dataset(*dataset)) {
      spec.dataset = *dataset;
    } else {
      std::vector<std::string> names;
      for (const auto& d : catalog.datasets()) names.push_back(d.name);
      r.fail("dataset", "unknown data set '" + *dataset + "'; the catalog has " + join_names(names));
    }
  }
  if (task) {
    if (!catalog.task(*task)) {
      std::vector<std::string> names;
      for (const auto& t : catalog.tasks()) names.push_back(t.name);
      r.fail("task", "unknown task '" + *task + "'; the catalog has " + join_names(names));
    } else if (!spec.dataset.empty() && !catalog.supports(spec.dataset, *task)) {
      r.fail("task", "task '" + *task + "' is not offered on data set '" + spec.dataset + "'");
    } else {
      spec.task = *task;
    }
  }
  if (rounds) spec.rounds = *rounds;
  if (clients) spec.clients = *clients;
  spec.clients_per_round = per_round.value_or(std::min(kDefaultClientsPerRound, spec.clients));
  if (on_federation) spec.clients = spec.clients_per_round;  // unused: the enrolled clients are the population
  if (per_round && *per_round > spec.clients)
    r.fail("clients_per_round", "must not exceed clients (" + std::to_string(spec.clients) +
                                    (clients ? ")" : ", the default)"));
  if (min_clients) {
    spec.min_clients = *min_clients;
    if (*min_clients > spec.clients_per_round)
      r.fail("min_clients", "must not exceed clients_per_round (" + std::to_string(spec.clients_per_round) + ")");
  }
  if (prox_mu) spec.prox_mu = *prox_mu;
  if (epochs) spec.local_epochs = *epochs;
  if (personalized) {
    spec.personalized_epochs = true;
    spec.local_epochs = max_epochs.value_or(kDefaultPersonalizedEpochs);
  } else if (max_epochs) {
    r.fail("max_local_epochs", "applies only with \"local_epochs\": \"personalized\"");
  }
  if (batch) spec.batch_size = *batch;
  if (lr) spec.learning_rate = *lr;
  pick_one(r, "aggregator", aggregator, kAggregators, spec.aggregator);
  pick_one(r, "weighting", weighting, kWeightings, spec.weighting);
  pick_one(r, "local_update", local_update, kLocalUpdates, spec.local_update);
  if (body.contains("ema_lambda") && spec.local_update != "fedema")
    r.fail("ema_lambda", "applies only with \"local_update\": \"fedema\"");
  else if (ema_lambda)
    spec.ema_lambda = *ema_lambda;
  check_clusters(r, client_clusters, cluster_round, spec);
  if (partition) {
    FieldReader p(*partition, "partition.", errors);
    auto kind = p.string("kind", true, 1, 32);
    auto alpha = p.number("alpha", false, 0.0, true, kMaxDirichletAlpha);
    p.finish();
    if (kind && *kind != "iid" && *kind != "dirichlet")
      p.fail("kind", "must be \"iid\" or \"dirichlet\"");
    else if (kind)
      spec.partition.kind = *kind;
    if (alpha && kind && *kind == "iid") p.fail("alpha", "applies only to kind \"dirichlet\"");
    if (alpha) spec.partition.alpha = *alpha;
  }
  if (seed) spec.seed = *seed;
  if (merge) spec.merge = *merge;
  if (priority) spec.priority = *priority;
  if (deadline) {
    auto when = parse_rfc3339(*deadline);
    if (!when)
      r.fail("deadline", "must be an RFC 3339 timestamp such as 2026-12-31T18:00:00Z");
    else if (*when <= now_ms)
      r.fail("deadline", "must lie in the future (now is " + format_rfc3339(now_ms) + ")");
    else
      spec.deadline_unix_ms = *when;
  }

  if (!errors.empty()) return Status::invalid_argument("the activity request has invalid fields", std::move(errors));
  return spec;
}

}  // namespace mufl::tenants
