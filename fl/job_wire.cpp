#include "fl/job_wire.h"

#include <charconv>
#include <climits>
#include <cmath>
#include <cstdint>
#include <functional>
#include <limits>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace mufl::fl {
namespace {

using Json = nlohmann::json;

constexpr double kInf = std::numeric_limits<double>::infinity();

// Why `v` is not a finite JSON number ("" when it is one, then `out` holds it).
std::string as_number(const Json& v, double min, double& out) {
  if (!v.is_number()) return "must be a number";
  const double d = v.get<double>();
  if (!std::isfinite(d)) return "must be finite";
  if (d < min) return "must be at least " + Json(min).dump();
  out = d;
  return "";
}

// Why `v` is not a JSON integer in [min, max] ("" when it is one, then `out` holds it).
std::string as_integer(const Json& v, int64_t min, int64_t max, int64_t& out) {
  if (!v.is_number_integer()) return "must be an integer";
  if (v.is_number_unsigned() && v.get<uint64_t>() > static_cast<uint64_t>(INT64_MAX)) return "is out of range";
  const int64_t i = v.get<int64_t>();
  if (i < min || i > max) return "must be from " + std::to_string(min) + " to " + std::to_string(max);
  out = i;
  return "";
}

// Reads the fields of one JSON object strictly, keeping the first failure. Every key the
// object holds must be read before finish(), which refuses any other as unknown.
class Fields {
 public:
  // `what` names the message ("the job config"); `path` names this object in errors ("job",
  // "schema", "eval[1]"); `prefix` goes before its keys' names ("", "schema.", "eval[1].").
  Fields(const Json& j, std::string what, const std::string& path, std::string prefix)
      : j_(j), what_(std::move(what)), prefix_(std::move(prefix)) {
    if (!j_.is_object()) fail(path, "must be an object");
  }

  bool ok() const { return first_.is_ok(); }
  std::string path(const std::string& key) const { return prefix_ + key; }

  // Records a failure unless one came first.
  void fail(const std::string& field, const std::string& why) {
    if (ok()) first_ = Status::invalid_argument(what_ + " has an invalid field", {{field, why}});
  }
  void check(bool good, const std::string& field, const std::string& why) {
    if (!good) fail(field, why);
  }
  void check(const Status& s) {
    if (ok() && !s.is_ok()) first_ = s;
  }

  // The value under `key`, marked as read; nullptr (and a failure) when absent or after one.
  const Json* take(const char* key) {
    read_.insert(key);
    if (!ok()) return nullptr;
    const auto it = j_.find(key);
    if (it == j_.end()) {
      fail(path(key), "is required");
      return nullptr;
    }
    return &*it;
  }

  void text(const char* key, std::string& out) {
    const Json* v = take(key);
    if (v == nullptr) return;
    if (v->is_string()) out = v->get<std::string>();
    else fail(path(key), "must be a string");
  }
  void integer(const char* key, int64_t& out, int64_t min = INT64_MIN, int64_t max = INT64_MAX) {
    const Json* v = take(key);
    if (v == nullptr) return;
    const std::string why = as_integer(*v, min, max, out);
    check(why.empty(), path(key), why);
  }
  void small_integer(const char* key, int& out, int min = INT_MIN) {
    int64_t wide = out;
    integer(key, wide, min, INT_MAX);
    out = static_cast<int>(wide);
  }
  void number(const char* key, double& out, double min = -kInf) {
    const Json* v = take(key);
    if (v == nullptr) return;
    const std::string why = as_number(*v, min, out);
    check(why.empty(), path(key), why);
  }
  void flag(const char* key, bool& out) {
    const Json* v = take(key);
    if (v == nullptr) return;
    if (v->is_boolean()) out = v->get<bool>();
    else fail(path(key), "must be true or false");
  }
  void texts(const char* key, std::vector<std::string>& out) {
    const Json* v = take(key);
    if (v == nullptr) return;
    if (!v->is_array()) return fail(path(key), "must be an array of strings");
    for (size_t i = 0; i < v->size() && ok(); ++i) {
      const Json& e = (*v)[i];
      if (e.is_string()) out.push_back(e.get<std::string>());
      else fail(path(key) + "[" + std::to_string(i) + "]", "must be a string");
    }
  }
  // An array of integers, each at least `min`; a bad element fails the array's field.
  void integers(const char* key, std::vector<int64_t>& out, int64_t min) {
    const Json* v = take(key);
    if (v == nullptr) return;
    if (!v->is_array()) return fail(path(key), "must be an array of integers");
    for (size_t i = 0; i < v->size() && ok(); ++i) {
      int64_t n = 0;
      const std::string why = as_integer((*v)[i], min, INT64_MAX, n);
      if (why.empty()) out.push_back(n);
      else fail(path(key), "element " + std::to_string(i) + " " + why);
    }
  }
  // A string field that names an enum value: `parse` gives nullopt for an unknown name.
  template <typename T>
  void choice(const char* key, T& out, std::optional<T> (*parse)(std::string_view), const char* names) {
    std::string s;
    text(key, s);
    if (!ok()) return;
    const std::optional<T> parsed = parse(s);
    if (parsed) out = *parsed;
    else fail(path(key), "must be one of " + std::string(names) + ", not '" + s + "'");
  }

  // The first failure, or the first key that was never read.
  Status finish() {
    if (ok() && j_.is_object())
      for (const auto& item : j_.items())
        if (read_.count(item.key()) == 0) fail(path(item.key()), "is not a field of " + what_);
    return first_;
  }

 private:
  const Json& j_;
  std::string what_;
  std::string prefix_;
  std::set<std::string, std::less<>> read_;
  Status first_;
};

// EncoderGradient's wire names (fl/encoder_gradient.h names TaskBalance's, not these).
const char* gradient_name(EncoderGradient g) { return g == EncoderGradient::kSum ? "sum" : "mean"; }
std::optional<EncoderGradient> parse_gradient(std::string_view s) {
  if (s == "mean") return EncoderGradient::kMean;
  if (s == "sum") return EncoderGradient::kSum;
  return std::nullopt;
}

// The seed's decimal text; nullopt unless it is digits only and fits in 64 bits.
std::optional<uint64_t> parse_seed(const std::string& s) {
  uint64_t seed = 0;
  const auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), seed);
  if (s.empty() || ec != std::errc() || end != s.data() + s.size()) return std::nullopt;
  return seed;
}

Status read_schema(const Json& j, DataSchema& schema) {
  Fields f(j, "the job config", "schema", "schema.");
  f.integer("channels", schema.channels);
  f.integer("height", schema.height);
  f.integer("width", schema.width);
  f.integer("labels", schema.labels);
  return f.finish();
}

// The fields of JobConfig that say what the job trains and where.
void read_job_identity(Fields& f, JobConfig& c) {
  f.text("dataset", c.dataset);
  f.text("federation", c.federation);
  if (const Json* s = f.take("schema")) f.check(read_schema(*s, c.schema));
  f.text("name", c.name);
  f.integer("round_timeout_seconds", c.round_timeout_seconds);
  f.texts("tasks", c.tasks);
  f.texts("heads", c.heads);
  f.integer("rounds", c.rounds);
  f.integer("round_offset", c.round_offset);
}

// The fields of JobConfig that say how it trains.
void read_job_training(Fields& f, JobConfig& c) {
  f.small_integer("affinity_every", c.affinity_every);
  f.choice("encoder_gradient", c.encoder_gradient, parse_gradient, "mean, sum");
  f.choice("balance", c.balance, parse_task_balance, "none, cap, cap_merged, cap_equal, by_kind");
  f.texts("final_heads", c.final_heads);
  f.flag("head_calibration", c.head_calibration);
  f.flag("calibrate_every_client", c.calibrate_every_client);
  f.integer("clients", c.clients);
  f.integer("clients_per_round", c.clients_per_round);
  f.integer("local_epochs", c.local_epochs);
  f.integer("batch_size", c.batch_size);
  f.number("learning_rate", c.learning_rate);
  f.number("lr_decay", c.lr_decay);
  f.text("aggregator", c.aggregator);
  f.text("weighting", c.weighting);
  f.flag("personalized_epochs", c.personalized_epochs);
  f.text("local_update", c.local_update);
  f.number("ema_lambda", c.ema_lambda);
  f.small_integer("client_clusters", c.client_clusters, 1);
  f.integer("cluster_round", c.cluster_round, 1);
  f.text("partition", c.partition);
  f.number("dirichlet_alpha", c.dirichlet_alpha);
  std::string seed;
  f.text("seed", seed);
  if (f.ok()) {
    const auto parsed = parse_seed(seed);
    f.check(parsed.has_value(), "seed", "must be a decimal string of an unsigned 64-bit integer");
    c.seed = parsed.value_or(0);
  }
  f.number("prox_mu", c.prox_mu);
  f.number("client_failure_rate", c.client_failure_rate);
  f.integer("min_clients", c.min_clients);
  f.small_integer("max_round_attempts", c.max_round_attempts);
}

Status read_metrics(const Json& j, const std::string& path, TaskMetrics& m) {
  Fields f(j, "the round report", path, path + ".");
  f.text("head", m.head);
  f.text("task", m.task);
  f.number("loss", m.loss);
  f.text("metric", m.metric);
  f.number("value", m.value);
  return f.finish();
}

Status report_error(const std::string& field, const std::string& why) {
  return Status::invalid_argument("the round report has an invalid field", {{field, why}});
}

// The array at `path`, item by item: read_one(item, "<path>[i]", out).
template <typename T, typename ReadOne>
Status read_array(const Json& j, const std::string& path, std::vector<T>& out, ReadOne read_one) {
  if (!j.is_array()) return report_error(path, "must be an array");
  for (size_t i = 0; i < j.size(); ++i) {
    T item;
    if (Status s = read_one(j[i], path + "[" + std::to_string(i) + "]", item); !s.is_ok()) return s;
    out.push_back(std::move(item));
  }
  return Status::ok();
}

// One cluster of a clustered round (ClusterReport): its clients, counts and evaluation.
Status read_cluster(const Json& j, const std::string& path, ClusterReport& c) {
  Fields f(j, "the round report", path, path + ".");
  f.integers("clients", c.clients, 0);  // client numbers
  f.integer("samples", c.samples, 0);
  f.integer("clients_reported", c.clients_reported, 0);
  if (const Json* e = f.take("eval")) f.check(read_array(*e, path + ".eval", c.eval, read_metrics));
  return f.finish();
}

Json metrics_to_json(const std::vector<TaskMetrics>& eval) {
  Json out = Json::array();
  for (const auto& m : eval)
    out.push_back({{"head", m.head}, {"task", m.task}, {"loss", m.loss}, {"metric", m.metric}, {"value", m.value}});
  return out;
}

// A K×K matrix of finite numbers with K ≥ `min_side`, or an empty one.
Status read_affinity(const Json& j, size_t min_side, std::vector<std::vector<double>>& affinity) {
  if (!j.is_array()) return report_error("affinity", "must be an array of rows");
  if (!j.empty() && j.size() < min_side)
    return report_error("affinity", "has " + std::to_string(j.size()) + " rows, fewer than eval's " +
                                        std::to_string(min_side) + " heads");
  for (size_t i = 0; i < j.size(); ++i) {
    const std::string row = "affinity[" + std::to_string(i) + "]";
    if (!j[i].is_array() || j[i].size() != j.size())
      return report_error(row, "must be an array of " + std::to_string(j.size()) + " numbers (the matrix is square)");
    affinity.emplace_back(j.size(), 0.0);
    for (size_t k = 0; k < j.size(); ++k)
      if (std::string why = as_number(j[i][k], -kInf, affinity[i][k]); !why.empty())
        return report_error(row + "[" + std::to_string(k) + "]", why);
  }
  return Status::ok();
}

// {head key: a number in [-1, 1]} (RoundReport::alignment).
Status read_alignment(const Json& j, std::map<std::string, double>& alignment) {
  if (!j.is_object()) return report_error("alignment", "must be an object of head keys to numbers");
  for (const auto& [key, value] : j.items()) {
    double a = 0;
    std::string why = as_number(value, -1.0, a);
    if (why.empty() && a > 1.0) why = "must be at most 1";
    if (!why.empty()) return report_error("alignment." + key, why);
    alignment[key] = a;
  }
  return Status::ok();
}

// "" or meter names among model, nvml and rapl joined by '+'.
bool valid_meters(std::string_view meters) {
  if (meters.empty()) return true;
  while (true) {
    const size_t plus = meters.find('+');
    const std::string_view name = meters.substr(0, plus);
    if (name != "model" && name != "nvml" && name != "rapl") return false;
    if (plus == std::string_view::npos) return true;
    meters.remove_prefix(plus + 1);
  }
}

// RoundReport's counters and measures.
void read_report_counts(Fields& f, RoundReport& r) {
  f.integer("round", r.round, 1);
  f.small_integer("attempts", r.attempts, 1);
  f.integer("clients_sampled", r.clients_sampled, 0);
  f.integer("clients_reported", r.clients_reported, 0);
  f.integer("clients_dropped", r.clients_dropped, 0);
  f.integer("samples", r.samples, 0);
  f.number("train_loss", r.train_loss);
  f.number("learning_rate", r.learning_rate);
  f.integer("lookaheads", r.lookaheads, 0);
  f.number("affinity_seconds", r.affinity_seconds, 0);
  f.integer("calibration_samples", r.calibration_samples, 0);
  f.number("seconds", r.seconds, 0);
  f.number("client_wait_seconds", r.client_wait_seconds, 0);
  f.number("client_joules", r.client_joules, 0);
}

}  // namespace

nlohmann::json job_config_to_json(const JobConfig& c) {
  return {{"dataset", c.dataset},
          {"federation", c.federation},
          {"schema",
           {{"channels", c.schema.channels},
            {"height", c.schema.height},
            {"width", c.schema.width},
            {"labels", c.schema.labels}}},
          {"name", c.name},
          {"round_timeout_seconds", c.round_timeout_seconds},
          {"tasks", c.tasks},
          {"heads", c.heads},
          {"rounds", c.rounds},
          {"round_offset", c.round_offset},
          {"affinity_every", c.affinity_every},
          {"encoder_gradient", gradient_name(c.encoder_gradient)},
          {"balance", to_string(c.balance)},
          {"final_heads", c.final_heads},
          {"head_calibration", c.head_calibration},
          {"calibrate_every_client", c.calibrate_every_client},
          {"clients", c.clients},
          {"clients_per_round", c.clients_per_round},
          {"local_epochs", c.local_epochs},
          {"batch_size", c.batch_size},
          {"learning_rate", c.learning_rate},
          {"lr_decay", c.lr_decay},
          {"aggregator", c.aggregator},
          {"weighting", c.weighting},
          {"personalized_epochs", c.personalized_epochs},
          {"local_update", c.local_update},
          {"ema_lambda", c.ema_lambda},
          {"client_clusters", c.client_clusters},
          {"cluster_round", c.cluster_round},
          {"partition", c.partition},
          {"dirichlet_alpha", c.dirichlet_alpha},
          {"seed", std::to_string(c.seed)},
          {"prox_mu", c.prox_mu},
          {"client_failure_rate", c.client_failure_rate},
          {"min_clients", c.min_clients},
          {"max_round_attempts", c.max_round_attempts}};
}

Result<JobConfig> job_config_from_json(const nlohmann::json& j) {
  JobConfig c;
  Fields f(j, "the job config", "job", "");
  read_job_identity(f, c);
  read_job_training(f, c);
  if (Status s = f.finish(); !s.is_ok()) return s;
  return c;
}

nlohmann::json round_report_to_json(const RoundReport& r) {
  Json clusters = Json::array();
  for (const auto& c : r.clusters)
    clusters.push_back({{"clients", c.clients},
                        {"samples", c.samples},
                        {"clients_reported", c.clients_reported},
                        {"eval", metrics_to_json(c.eval)}});
  return {{"round", r.round},
          {"attempts", r.attempts},
          {"clients_sampled", r.clients_sampled},
          {"clients_reported", r.clients_reported},
          {"clients_dropped", r.clients_dropped},
          {"samples", r.samples},
          {"train_loss", r.train_loss},
          {"learning_rate", r.learning_rate},
          {"eval", metrics_to_json(r.eval)},
          {"clusters", clusters},
          {"affinity", r.affinity},
          {"lookaheads", r.lookaheads},
          {"affinity_seconds", r.affinity_seconds},
          {"alignment", r.alignment},
          {"calibration_samples", r.calibration_samples},
          {"calibrated", r.calibrated},
          {"seconds", r.seconds},
          {"client_wait_seconds", r.client_wait_seconds},
          {"client_joules", r.client_joules},
          {"client_meters", r.client_meters},
          {"stopped", r.stopped}};
}

Result<RoundReport> round_report_from_json(const nlohmann::json& j) {
  RoundReport r;
  Fields f(j, "the round report", "report", "");
  read_report_counts(f, r);
  if (const Json* e = f.take("eval")) f.check(read_array(*e, "eval", r.eval, read_metrics));
  if (const Json* c = f.take("clusters")) f.check(read_array(*c, "clusters", r.clusters, read_cluster));
  if (const Json* a = f.take("affinity")) f.check(read_affinity(*a, r.eval.size(), r.affinity));
  if (const Json* a = f.take("alignment")) f.check(read_alignment(*a, r.alignment));
  f.texts("calibrated", r.calibrated);
  f.text("client_meters", r.client_meters);
  if (f.ok())
    f.check(valid_meters(r.client_meters), "client_meters",
            "must be \"\" or meter names (model, nvml, rapl) joined by '+'");
  f.flag("stopped", r.stopped);
  if (Status s = f.finish(); !s.is_ok()) return s;
  return r;
}

}  // namespace mufl::fl
