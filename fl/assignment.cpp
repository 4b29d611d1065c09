#include "fl/assignment.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <numeric>
#include <optional>

#include "core/strings.h"
#include "fl/assignment_options.h"
#include "fl/client_data.h"
#include "fl/datasets.h"
#include "fl/fedema_clients.h"
#include "fl/model.h"
#include "fl/tasks.h"
#include "fl/training.h"
#include "fl/wire.h"
#include "protocol/safetensors.h"

namespace mufl::fl {
namespace {

Status bad(const std::string& field, const std::string& why) {
  return Status::invalid_argument("the assignment has an invalid field", {{field, why}});
}

template <typename T>
Status read(const nlohmann::json& obj, const char* key, T& out) {
  if (!obj.contains(key)) return bad(key, "is required");
  try {
    out = obj.at(key).get<T>();
  } catch (const std::exception&) {
    return bad(key, "has the wrong type");
  }
  return Status::ok();
}

// The client's samples of one part with the targets of `tasks`.
Result<TaskData> load_part(const std::string& dir, bool train, const std::vector<TaskDef>& tasks) {
  auto set = load_client_part(dir, train);
  if (!set.ok()) return set.status();
  return make_task_data(*set, tasks);
}

}  // namespace

nlohmann::json assignment_to_json(const Assignment& a) {
  nlohmann::json heads = nlohmann::json::array();
  for (size_t i = 0; i < a.tasks.size(); ++i) heads.push_back({{"key", a.heads.at(i)}, {"task", a.tasks[i]}});
  nlohmann::json j = {{"heads", heads},
          {"input", {{"channels", a.channels}, {"height", a.height}, {"width", a.width}, {"labels", a.labels}}},
          {"local",
           {{"epochs", a.epochs},
            {"batch_size", a.batch_size},
            {"learning_rate", a.learning_rate},
            {"momentum", a.momentum},
            {"weight_decay", a.weight_decay},
            {"prox_mu", a.prox_mu},
            {"affinity_every", a.affinity_every},
            {"encoder_gradient", a.encoder_gradient},
            {"balance", a.balance}}},
          {"seed", std::to_string(a.seed)}};
  if (a.personalize_max_samples > 0) j["local"]["personalize_max_samples"] = a.personalize_max_samples;
  if (a.encoder_step != 1.0) j["local"]["encoder_step"] = a.encoder_step;
  if (a.local_update != "fedavg") {  // only then: clients that predate FedEMA read the rest as before
    j["local"]["local_update"] = a.local_update;
    j["local"]["ema_lambda"] = a.ema_lambda;
    j["fedema"] = {{"job", a.job}, {"round", a.round}};
  }
  return j;
}

Result<Assignment> assignment_from_json(const nlohmann::json& j) {
  Assignment a;
  if (!j.is_object() || !j.contains("heads") || !j["heads"].is_array() || j["heads"].empty())
    return bad("heads", "must be a non-empty array of {key, task}");
  for (const auto& h : j["heads"]) {
    if (!h.is_object() || !h.contains("key") || !h["key"].is_string() || !h.contains("task") || !h["task"].is_string())
      return bad("heads", "must be a non-empty array of {key, task}");
    a.heads.push_back(h["key"]);
    a.tasks.push_back(h["task"]);
  }
  if (!j.contains("input") || !j["input"].is_object()) return bad("input", "must be an object");
  const auto& in = j["input"];
  for (Status s : {read(in, "channels", a.channels), read(in, "height", a.height), read(in, "width", a.width),
                   read(in, "labels", a.labels)})
    if (!s.is_ok()) return s;
  if (a.channels < 1 || a.height < 4 || a.width < 4 || a.labels < 1)
    return bad("input", "channels and labels must be positive, sides at least 4");
  if (!j.contains("local") || !j["local"].is_object()) return bad("local", "must be an object");
  const auto& l = j["local"];
  for (Status s : {read(l, "epochs", a.epochs), read(l, "batch_size", a.batch_size),
                   read(l, "learning_rate", a.learning_rate), read(l, "momentum", a.momentum),
                   read(l, "weight_decay", a.weight_decay), read(l, "prox_mu", a.prox_mu),
                   read(l, "affinity_every", a.affinity_every), read(l, "encoder_gradient", a.encoder_gradient),
                   read(l, "balance", a.balance)})
    if (!s.is_ok()) return s;
  if (a.epochs < 1 || a.batch_size < 1 || !(a.learning_rate > 0)) return bad("local", "epochs, batch_size and learning_rate must be positive");
  std::string seed;
  if (Status s = read(j, "seed", seed); !s.is_ok()) return s;
  auto [end, ec] = std::from_chars(seed.data(), seed.data() + seed.size(), a.seed);
  if (ec != std::errc() || end != seed.data() + seed.size()) return bad("seed", "must be a decimal string");
  if (l.contains("personalize_max_samples")) {
    if (Status s = read(l, "personalize_max_samples", a.personalize_max_samples); !s.is_ok()) return s;
    if (a.personalize_max_samples < 0) return bad("personalize_max_samples", "0 (off) or the largest client's samples");
  }
  if (l.contains("encoder_step")) {
    if (Status s = read(l, "encoder_step", a.encoder_step); !s.is_ok()) return s;
    if (!(a.encoder_step > 0 && a.encoder_step <= 1)) return bad("encoder_step", "a number in (0, 1]");
  }
  if (l.contains("local_update")) {
    if (Status s = read(l, "local_update", a.local_update); !s.is_ok()) return s;
    if (a.local_update != "fedavg" && a.local_update != "fedema") return bad("local_update", "\"fedavg\" or \"fedema\"");
  }
  if (a.local_update == "fedema") {
    if (Status s = read(l, "ema_lambda", a.ema_lambda); !s.is_ok()) return s;
    if (!(a.ema_lambda >= 0) || !std::isfinite(a.ema_lambda)) return bad("ema_lambda", "0 (auto) or a positive number");
    if (!j.contains("fedema") || !j["fedema"].is_object()) return bad("fedema", "must be an object");
    for (Status s : {read(j["fedema"], "job", a.job), read(j["fedema"], "round", a.round)})
      if (!s.is_ok()) return s;
    // The job names a folder on the client: a plain name that is not "." or "..", nor hidden.
    if (a.job.empty() || a.job.size() > 128 || a.job[0] == '.' || !is_plain_name(a.job))
      return bad("job", "must be a plain name of up to 128 characters, not starting with '.'");
    if (a.round < 1) return bad("round", "must be at least 1");
  }
  return a;
}

nlohmann::json local_report_to_json(const LocalReport& r) {
  nlohmann::json eval = nlohmann::json::array();
  for (const auto& e : r.eval)
    eval.push_back({{"head", e.head}, {"task", e.task}, {"loss", e.loss}, {"metric", e.metric}, {"value", e.value}});
  nlohmann::json j = {{"num_samples", r.num_samples}, {"samples", r.samples},   {"steps", r.steps},
                      {"mean_loss", r.mean_loss},     {"affinity", r.affinity}, {"lookaheads", r.lookaheads},
                      {"test_samples", r.test_samples}, {"eval", eval}};
  if (!r.energy_meter.empty()) j["energy"] = {{"meter", r.energy_meter}, {"joules", r.energy_joules}};
  if (!r.alignment.empty()) j["alignment"] = r.alignment;
  return j;
}

namespace {

// The report's optional "energy": {"meter": "rapl"|"nvml"|"model", "joules": 0..kMaxReportJoules}.
Status read_energy(const nlohmann::json& j, LocalReport& r) {
  if (!j.contains("energy")) return Status::ok();
  const auto& e = j["energy"];
  if (!e.is_object()) return bad("energy", "must be an object");
  if (Status s = read(e, "meter", r.energy_meter); !s.is_ok()) return s;
  if (Status s = read(e, "joules", r.energy_joules); !s.is_ok()) return s;
  if (r.energy_meter != "rapl" && r.energy_meter != "nvml" && r.energy_meter != "model")
    return bad("energy.meter", "must be rapl, nvml or model");
  if (!std::isfinite(r.energy_joules) || r.energy_joules < 0 || r.energy_joules > kMaxReportJoules)
    return bad("energy.joules", "must be between 0 and 1e9");
  return Status::ok();
}

// The report's optional "alignment": one number in [-1, 1] per head.
Status read_alignment(const nlohmann::json& j, LocalReport& r) {
  if (!j.contains("alignment")) return Status::ok();
  if (Status s = read(j, "alignment", r.alignment); !s.is_ok()) return s;
  for (double a : r.alignment)
    if (!(a >= -1.0 && a <= 1.0)) return bad("alignment", "must hold numbers from -1 to 1");
  return Status::ok();
}

}  // namespace

Result<LocalReport> local_report_from_json(const nlohmann::json& j) {
  LocalReport r;
  if (!j.is_object()) return bad("report", "must be an object");
  for (Status s : {read(j, "num_samples", r.num_samples), read(j, "samples", r.samples), read(j, "steps", r.steps),
                   read(j, "mean_loss", r.mean_loss), read(j, "affinity", r.affinity),
                   read(j, "lookaheads", r.lookaheads), read(j, "test_samples", r.test_samples)})
    if (!s.is_ok()) return s;
  if (r.num_samples < 1) return bad("num_samples", "must be at least 1");
  if (!std::isfinite(r.mean_loss)) return bad("mean_loss", "must be finite");
  if (!j.contains("eval") || !j["eval"].is_array()) return bad("eval", "must be an array");
  for (const auto& e : j["eval"]) {
    HeadEval h;
    for (Status s : {read(e, "head", h.head), read(e, "task", h.task), read(e, "loss", h.loss),
                     read(e, "metric", h.metric), read(e, "value", h.value)})
      if (!s.is_ok()) return s;
    r.eval.push_back(std::move(h));
  }
  if (Status s = read_energy(j, r); !s.is_ok()) return s;
  if (Status s = read_alignment(j, r); !s.is_ok()) return s;
  return r;
}

Assignment make_assignment(const std::vector<std::string>& tasks, const std::vector<std::string>& heads,
                           const LocalTrainOptions& options, uint64_t seed) {
  Assignment a;
  a.tasks = tasks;
  a.heads = heads;
  a.epochs = options.epochs;
  a.personalize_max_samples = options.personalize_max_samples;
  a.batch_size = options.batch_size;
  a.learning_rate = options.learning_rate;
  a.momentum = options.momentum;
  a.weight_decay = options.weight_decay;
  a.prox_mu = options.prox_mu;
  a.affinity_every = options.affinity_every;
  a.encoder_gradient = options.encoder_gradient == EncoderGradient::kSum ? "sum" : "mean";
  a.balance = to_string(options.balance);
  a.encoder_step = options.encoder_step;
  a.seed = seed;
  return a;
}

LocalTrainOptions local_options(const Assignment& a) {
  LocalTrainOptions options;
  options.epochs = static_cast<int>(a.epochs);
  options.personalize_max_samples = a.personalize_max_samples;
  options.batch_size = static_cast<int>(a.batch_size);
  options.learning_rate = a.learning_rate;
  options.momentum = a.momentum;
  options.weight_decay = a.weight_decay;
  options.prox_mu = a.prox_mu;
  options.affinity_every = static_cast<int>(a.affinity_every);
  options.encoder_gradient = a.encoder_gradient == "sum" ? EncoderGradient::kSum : EncoderGradient::kMean;
  options.balance = parse_task_balance(a.balance).value_or(TaskBalance::kNone);
  options.encoder_step = a.encoder_step;
  return options;
}

namespace {

// The client's own evaluation of the model it trained, on its held-out part when it has one
// (federated evaluation): test_samples and a score per head into `report`. ssl's linear probe
// is fitted on the client's `train` part (the whole of it) and scored on the held-out part.
Status evaluate_held_out(MultiTaskNet& model, const std::vector<TaskDef>& tasks, const Assignment& a,
                         const std::string& data_dir, const torch::Device& dev, const TaskData& train,
                         LocalReport& report) {
  if (!has_client_test_part(data_dir)) return Status::ok();
  auto test = load_part(data_dir, false, tasks);
  if (!test.ok()) return test.status();
  if (test->size() == 0) return Status::ok();
  test->images = test->images.to(dev);
  for (auto& t : test->targets) t = t.to(dev);
  ProbeOptions probe;
  probe.max_train_samples = std::max<int64_t>(1, train.size());
  const auto scores = evaluate(model, *test, 500, &train, probe);
  report.test_samples = test->size();
  for (size_t i = 0; i < scores.size(); ++i)
    report.eval.push_back({a.heads[i], tasks[i].name, tasks[i].metric, scores[i].loss, scores[i].metric});
  return Status::ok();
}

// Reads the client's meter over one lease; a power model counts busy watts only inside it.
class MeteredLease {
 public:
  explicit MeteredLease(const EnergyProbe& probe) : probe_(probe) {
    if (probe_.busy) probe_.busy(true);
    start_ = probe_.joules ? probe_.joules() : 0;
  }
  ~MeteredLease() {
    if (probe_.busy) probe_.busy(false);
  }
  // Fills the report's energy, when the client meters itself.
  void report(LocalReport& r) const {
    if (!probe_.joules) return;
    r.energy_meter = probe_.meter;
    r.energy_joules = std::max(0.0, probe_.joules() - start_);
  }

 private:
  const EnergyProbe& probe_;
  double start_ = 0;
};

}  // namespace

Result<std::string> train_assignment(const Assignment& a, std::string_view global_weights, const std::string& data_dir,
                                     const std::string& device, const std::function<bool()>& should_stop,
                                     const EnergyProbe& energy, const std::string& state_dir) {
  if (a.local_update == "fedema" && state_dir.empty())
    return bad("local_update", "\"fedema\" needs a folder where this client keeps its models");
  const MeteredLease metered(energy);
  try {
    std::vector<TaskDef> tasks;
    for (const auto& name : a.tasks) {
      auto t = find_task(name, a.labels);
      if (!t.ok()) return t.status();
      tasks.push_back(*t);
    }
    const torch::Device dev(device);
    auto train = load_part(data_dir, true, tasks);
    if (!train.ok()) return train.status();
    const InputShape input{a.channels, a.height, a.width};
    if (train->images.dim() != 4 || train->images.size(1) != a.channels || train->images.size(2) != a.height ||
        train->images.size(3) != a.width)
      return Status::invalid_argument("the data in " + data_dir + " are not " + std::to_string(a.channels) + "x" +
                                      std::to_string(a.height) + "x" + std::to_string(a.width) +
                                      " images, as the assignment's model takes");
    MultiTaskNet model(tasks, a.heads, input);
    model->to(dev);
    auto file = protocol::decode_safetensors(global_weights);
    if (!file.ok()) return file.status();
    auto global = weights_from(*file, model);
    if (!global.ok()) return global.status();
    std::optional<FedEmaClients> fedema;
    if (a.local_update == "fedema") {
      fedema.emplace(state_dir + "/" + a.job, a.ema_lambda);
      auto start = fedema->start(0, a.round, *global, model);  // sets the model's weights
      if (!start.ok()) return start.status();
    } else {
      set_weights(model, *global);
    }
    train->images = train->images.to(dev);
    for (auto& t : train->targets) t = t.to(dev);

    const LocalTrainOptions options = local_options(a);
    std::vector<int64_t> indices(static_cast<size_t>(train->size()));
    std::iota(indices.begin(), indices.end(), 0);
    LocalResult r = train_local(model, *train, indices, options, a.seed, &*global, should_stop);
    if (r.stopped) return Status::unavailable("stopped");
    if (fedema) {
      if (Status s = fedema->keep(0, a.round, model); !s.is_ok()) return s;
      (void)fedema->release(a.round - 2);  // best effort: a file left over is only space
    }

    LocalReport report;
    report.num_samples = train->size();
    report.samples = r.samples;
    report.steps = r.steps;
    report.mean_loss = r.mean_loss;
    report.affinity = r.affinity;
    report.alignment = r.alignment;
    report.lookaheads = r.lookaheads;
    if (Status s = evaluate_held_out(model, tasks, a, data_dir, dev, *train, report); !s.is_ok()) return s;
    metered.report(report);
    return protocol::encode_safetensors(
        to_tensor_file(model, {{kReportMetadataKey, local_report_to_json(report).dump()}}));
  } catch (const std::exception& e) {
    return Status::internal(std::string("training the assignment: ") + e.what());
  }
}

}  // namespace mufl::fl
