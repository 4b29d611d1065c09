#include "core/activity.h"

#include <nlohmann/json.hpp>

#include "core/time_format.h"

namespace mufl {

const char* to_string(ActivityState s) {
  switch (s) {
    case ActivityState::kQueued: return "queued";
    case ActivityState::kConsolidating: return "consolidating";
    case ActivityState::kSplitting: return "splitting";
    case ActivityState::kTraining: return "training";
    case ActivityState::kSucceeded: return "succeeded";
    case ActivityState::kFailed: return "failed";
    case ActivityState::kCancelled: return "cancelled";
  }
  return "unknown";
}

std::optional<ActivityState> parse_activity_state(std::string_view s) {
  for (ActivityState st : kAllActivityStates)
    if (s == to_string(st)) return st;
  return std::nullopt;
}

bool is_terminal(ActivityState s) {
  return s == ActivityState::kSucceeded || s == ActivityState::kFailed || s == ActivityState::kCancelled;
}

nlohmann::json spec_to_json(const ActivitySpec& s) {
  nlohmann::json partition = {{"kind", s.partition.kind}};
  if (s.partition.kind == "dirichlet") partition["alpha"] = s.partition.alpha;
  nlohmann::json j = {
      {"name", s.name},
      {"dataset", s.dataset},
      {"task", s.task},
      {"rounds", s.rounds},
      {"clients", s.clients},
      {"clients_per_round", s.clients_per_round},
      {"min_clients", s.min_clients},
      {"local_epochs", s.personalized_epochs ? nlohmann::json("personalized") : nlohmann::json(s.local_epochs)},
      {"batch_size", s.batch_size},
      {"learning_rate", s.learning_rate},
      {"prox_mu", s.prox_mu},
      {"aggregator", s.aggregator},
      {"weighting", s.weighting},
      {"local_update", s.local_update},
      {"partition", partition},
      {"seed", s.seed},
      {"merge", s.merge},
      {"priority", s.priority},
      {"deadline", s.deadline_unix_ms ? nlohmann::json(format_rfc3339(*s.deadline_unix_ms)) : nlohmann::json()},
  };
  if (s.personalized_epochs) j["max_local_epochs"] = s.local_epochs;
  if (s.client_clusters > 1) {  // only then: the stored form of other specs is what it was
    j["client_clusters"] = s.client_clusters;
    j["cluster_round"] = s.cluster_round;
  }
  if (s.local_update != "fedavg")
    j["ema_lambda"] = s.ema_lambda > 0 ? nlohmann::json(s.ema_lambda) : nlohmann::json("auto");
  if (!s.federation.empty()) {
    j.erase("dataset");
    j["federation"] = s.federation;
    j["schema"] = {{"channels", s.schema.channels},
                   {"height", s.schema.height},
                   {"width", s.schema.width},
                   {"labels", s.schema.labels}};
    j["round_timeout_seconds"] = s.round_timeout_seconds;
  }
  return j;
}

ActivitySpec spec_from_json(const nlohmann::json& j) {
  ActivitySpec s;
  s.name = j.at("name").get<std::string>();
  s.dataset = j.value("dataset", std::string());
  s.federation = j.value("federation", std::string());
  if (j.contains("schema")) {
    const auto& d = j["schema"];
    s.schema = {d.at("channels").get<int64_t>(), d.at("height").get<int64_t>(), d.at("width").get<int64_t>(),
                d.at("labels").get<int64_t>()};
  }
  s.round_timeout_seconds = j.value("round_timeout_seconds", int64_t{300});
  s.task = j.at("task").get<std::string>();
  s.rounds = j.at("rounds").get<int64_t>();
  s.clients = j.at("clients").get<int64_t>();
  s.clients_per_round = j.at("clients_per_round").get<int64_t>();
  s.personalized_epochs = j.at("local_epochs").is_string();  // "personalized"
  s.local_epochs = s.personalized_epochs ? j.at("max_local_epochs").get<int64_t>() : j.at("local_epochs").get<int64_t>();
  s.batch_size = j.at("batch_size").get<int64_t>();
  s.learning_rate = j.at("learning_rate").get<double>();
  s.aggregator = j.at("aggregator").get<std::string>();
  // Fields added after schema 1: rows written before them take the defaults.
  s.min_clients = j.value("min_clients", int64_t{1});
  s.prox_mu = j.value("prox_mu", 0.0);
  s.weighting = j.value("weighting", std::string("samples"));
  s.local_update = j.value("local_update", std::string("fedavg"));
  if (j.contains("ema_lambda") && j["ema_lambda"].is_number()) s.ema_lambda = j["ema_lambda"].get<double>();
  s.client_clusters = j.value("client_clusters", int64_t{1});
  s.cluster_round = j.value("cluster_round", int64_t{1});
  s.partition.kind = j.at("partition").at("kind").get<std::string>();
  if (j.at("partition").contains("alpha")) s.partition.alpha = j["partition"]["alpha"].get<double>();
  s.seed = j.at("seed").get<int64_t>();
  s.merge = j.at("merge").get<bool>();
  s.priority = j.at("priority").get<int64_t>();
  if (j.contains("deadline") && j["deadline"].is_string())
    s.deadline_unix_ms = parse_rfc3339(j["deadline"].get<std::string>());
  return s;
}

}  // namespace mufl
