#include "fl/fl_job.h"

#include <algorithm>
#include <cctype>
#include <chrono>
#include <cmath>
#include <map>
#include <mutex>
#include <numeric>
#include <random>
#include <set>
#include <sstream>

#include "fl/datasets.h"
#include "fl/fedema_clients.h"
#include "fl/head_calibration.h"
#include "fl/job_clusters.h"
#include "fl/model.h"
#include "fl/partition.h"
#include "fl/remote_clients.h"
#include "fl/round_clients.h"
#include "fl/seeds.h"
#include "fl/shards.h"
#include "fl/strategy.h"
#include "fl/task_balance.h"
#include "fl/tasks.h"
#include "fl/training.h"

namespace mufl::fl {
namespace {

double seconds_since(std::chrono::steady_clock::time_point t) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t).count();
}

// The round's clients: `count` of `candidates` (all of them when there are fewer) by a partial
// Fisher-Yates shuffle seeded with `seed`, in ascending order, so that the result does not
// depend on the draw order.
std::vector<int64_t> sample_clients(std::vector<int64_t> candidates, int64_t count, uint64_t seed) {
  const int64_t n = static_cast<int64_t>(candidates.size());
  count = std::min(count, n);
  std::mt19937_64 pick(seed);
  for (int64_t i = 0; i < count; ++i) {
    std::uniform_int_distribution<int64_t> d(i, n - 1);
    std::swap(candidates[static_cast<size_t>(i)], candidates[static_cast<size_t>(d(pick))]);
  }
  candidates.resize(static_cast<size_t>(count));
  std::sort(candidates.begin(), candidates.end());
  return candidates;
}

// Data sets and task targets are shared by every job that uses them: MNIST's training images
// alone take 188 MB as floats. Entries live as long as some job holds them.
class DataCache {
 public:
  static DataCache& instance() {
    static DataCache* cache = new DataCache();
    return *cache;
  }

  Result<std::shared_ptr<const DatasetSplits>> splits(const std::string& data_dir, const std::string& name) {
    std::lock_guard lock(mu_);
    const std::string key = data_dir + "\n" + name;
    if (auto hit = splits_[key].lock()) return hit;
    auto loaded = load_dataset(data_dir, name);
    if (!loaded.ok()) return loaded.status();
    auto shared = std::make_shared<const DatasetSplits>(std::move(*loaded));
    splits_[key] = shared;
    return shared;
  }

  // The targets of `task` on `set`, keyed by the set's storage so that each is computed once.
  std::shared_ptr<const torch::Tensor> targets(const TaskDef& task, const ImageSet& set) {
    std::lock_guard lock(mu_);
    const std::string key = task.name + "\n" + std::to_string(reinterpret_cast<uintptr_t>(set.images.data_ptr()));
    if (auto hit = targets_[key].lock()) return hit;
    auto t = std::make_shared<const torch::Tensor>(make_targets(task, set.images, set.labels).contiguous());
    targets_[key] = t;
    return t;
  }

 private:
  std::mutex mu_;
  std::map<std::string, std::weak_ptr<const DatasetSplits>> splits_;
  std::map<std::string, std::weak_ptr<const torch::Tensor>> targets_;
};

// Federated evaluation: each head's loss and metric as the mean of the clients' evaluations,
// weighted by their held-out samples. A head no client evaluated is left out.
std::vector<TaskMetrics> federated_evaluation(const std::vector<std::string>& heads, const std::vector<TaskDef>& tasks,
                                              const std::vector<ClientResult>& evaluated) {
  std::vector<TaskMetrics> out;
  for (size_t i = 0; i < heads.size(); ++i) {
    double loss = 0, value = 0, weight = 0;
    for (const auto& r : evaluated)
      for (const auto& e : r.eval)
        if (e.head == heads[i] && e.task == tasks[i].name) {
          const double w = static_cast<double>(r.test_samples);
          loss += w * e.loss;
          value += w * e.value;
          weight += w;
        }
    if (weight > 0) out.push_back({heads[i], tasks[i].name, loss / weight, tasks[i].metric, value / weight});
  }
  return out;
}

// What a caught exception says, without LibTorch's C++ backtrace (c10::Error appends one).
std::string error_text(const std::exception& e) {
  if (const auto* c = dynamic_cast<const c10::Error*>(&e)) return c->what_without_backtrace();
  return e.what();
}

// Runs `body`, turning anything it throws (c10::Error, std::bad_alloc, any std::exception, or
// something else) into kInternal "<what>: <message>": no exception leaves fl/.
template <typename Fn>
auto guarded(const char* what, Fn&& body) -> decltype(body()) {
  try {
    return body();
  } catch (const std::exception& e) {
    return Status::internal(std::string(what) + ": " + error_text(e));
  } catch (...) {
    return Status::internal(std::string(what) + ": an unknown exception");
  }
}

// A round whose training loss or evaluation is NaN or infinite diverged: retrying gives the
// same numbers (every draw is seeded), so it is a failure of the settings, said as such.
Status check_finite(const RoundReport& r) {
  auto bad = [&](double v) { return !std::isfinite(v); };
  std::string what;
  if (bad(r.train_loss)) what = "the training loss is " + std::to_string(r.train_loss);
  for (const auto& m : r.eval)
    if (what.empty() && (bad(m.loss) || bad(m.value)))
      what = "the test loss of " + m.task + " (head " + m.head + ") is " + std::to_string(m.loss);
  if (what.empty()) return Status::ok();
  return Status::failed_precondition("training diverged in round " + std::to_string(r.round) + ": " + what +
                                     "; a lower learning_rate (or batch_size) may help");
}

// torch::manual_seed is process-wide: hold this while seeding and initialising a model.
std::mutex& init_mutex() {
  static std::mutex mu;
  return mu;
}

}  // namespace

JobConfig JobConfig::from_spec(const ActivitySpec& spec) {
  JobConfig c;
  c.dataset = spec.dataset;
  c.tasks = {spec.task};
  c.rounds = spec.rounds;
  c.clients = spec.clients;
  c.clients_per_round = spec.clients_per_round;
  c.min_clients = spec.min_clients;
  c.prox_mu = spec.prox_mu;
  c.local_epochs = spec.local_epochs;
  c.batch_size = spec.batch_size;
  c.learning_rate = spec.learning_rate;
  c.aggregator = spec.aggregator;
  c.weighting = spec.weighting;
  c.personalized_epochs = spec.personalized_epochs;
  c.local_update = spec.local_update;
  c.ema_lambda = spec.ema_lambda;
  c.client_clusters = static_cast<int>(spec.client_clusters);
  c.cluster_round = spec.cluster_round;
  c.partition = spec.partition.kind;
  c.dirichlet_alpha = spec.partition.alpha;
  c.seed = static_cast<uint64_t>(spec.seed);
  return c;
}

struct FlJob::State {
  JobConfig config;  // heads filled in
  std::vector<TaskDef> tasks;
  InputShape input;  // of one image: the catalog's 1×28×28, or the federation's schema
  std::shared_ptr<const DatasetSplits> data;
  std::vector<std::shared_ptr<const torch::Tensor>> target_refs;  // keep cached targets alive
  TaskData train, test;
  Partition partition;
  int64_t largest_client = 0;  // samples of the partition's largest client (personalised epochs)
  torch::Device device{torch::kCPU};
  MultiTaskNet global{nullptr};
  MultiTaskNet worker{nullptr};  // the model a client trains; reset to the global weights each time
  std::unique_ptr<Strategy> strategy;
  std::unique_ptr<FedEmaClients> fedema;   // "fedema" only: the clients' kept models
  std::unique_ptr<RoundClients> clients;  // who trains a round's clients (fl/round_clients.h)
  int64_t rounds_done = 0;

  // Client clustering (config.client_clusters > 1 only): before the clustering round the
  // clusters are not formed and `global` is the model; after it `global` is a copy of the
  // largest cluster's model (what export_model() gives).
  std::unique_ptr<JobClusters> clusters;
  std::vector<TaskData> test_by_label;  // the test set split by label (label-mix evaluation)

  bool clustered() const { return clusters && clusters->formed(); }
  // Head `head_key` of `source` (a model with this job's heads), as export_model(head_key) saves it.
  Result<std::string> export_head(MultiTaskNet source, const std::string& head_key) const;
  // FlJob::derive's clusters: those of `from`, with this job's heads (`kept`: the heads both have).
  void carry_clusters(const State& from, const std::vector<std::pair<std::string, std::string>>& kept);
  std::vector<std::vector<TaskMetrics>> evaluate_clusters();
  // `model` on the test set, label by label, weighted by `mix` (each label's share).
  std::vector<TaskMetrics> evaluate_on_mix(const Weights& model, const std::vector<double>& mix);
};

namespace {

// The test set's samples of each label 0 … labels−1 (an empty TaskData for a label it lacks).
std::vector<TaskData> split_by_label(const TaskData& test, const torch::Tensor& labels, torch::Device device) {
  const int64_t count = labels.numel() ? labels.max().item<int64_t>() + 1 : 0;
  std::vector<TaskData> out;
  for (int64_t l = 0; l < count; ++l) {
    const auto idx = (labels == l).nonzero().flatten().to(device);
    TaskData part;
    part.images = test.images.index_select(0, idx);
    for (const auto& t : test.targets) part.targets.push_back(t.index_select(0, idx));
    out.push_back(std::move(part));
  }
  return out;
}

// Each head's loss and metric as the mean of the clusters', weighted by `weights`.
std::vector<TaskMetrics> weighted_mean(const std::vector<std::vector<TaskMetrics>>& per_cluster,
                                       const std::vector<int64_t>& weights) {
  std::vector<TaskMetrics> out = per_cluster.at(0);
  double total = 0;
  for (auto w : weights) total += static_cast<double>(w);
  for (size_t h = 0; h < out.size(); ++h) {
    out[h].loss = out[h].value = 0;
    for (size_t c = 0; c < per_cluster.size(); ++c) {
      const double share =
          total > 0 ? static_cast<double>(weights[c]) / total : 1.0 / static_cast<double>(weights.size());
      out[h].loss += share * per_cluster[c][h].loss;
      out[h].value += share * per_cluster[c][h].value;
    }
  }
  return out;
}

}  // namespace

// Each cluster's model on the test set, label by label, weighted by its members' label mix.
std::vector<std::vector<TaskMetrics>> FlJob::State::evaluate_clusters() {
  std::vector<std::vector<TaskMetrics>> out;
  for (size_t c = 0; c < clusters->count(); ++c)
    out.push_back(evaluate_on_mix(clusters->models()[c], clusters->label_mix(c)));
  return out;
}

std::vector<TaskMetrics> FlJob::State::evaluate_on_mix(const Weights& model, const std::vector<double>& mix) {
  if (test_by_label.empty()) test_by_label = split_by_label(test, data->test.labels, device);
  set_weights(worker, model);
  std::vector<TaskMetrics> m;
  for (size_t h = 0; h < tasks.size(); ++h) m.push_back({config.heads[h], tasks[h].name, 0, tasks[h].metric, 0});
  double mass = 0;
  for (size_t l = 0; l < test_by_label.size() && l < mix.size(); ++l) {
    const double share = mix[l];
    if (share <= 0 || test_by_label[l].size() == 0) continue;
    const auto scores = fl::evaluate(worker, test_by_label[l], 500);
    for (size_t h = 0; h < m.size(); ++h) {
      m[h].loss += share * scores[h].loss;
      m[h].value += share * scores[h].metric;
    }
    mass += share;
  }
  for (auto& t : m) {
    t.loss /= std::max(mass, 1e-12);
    t.value /= std::max(mass, 1e-12);
  }
  return m;
}

FlJob::FlJob(std::unique_ptr<State> state) : s_(std::move(state)) {}
FlJob::~FlJob() = default;
const JobConfig& FlJob::config() const { return s_->config; }
int64_t FlJob::rounds_done() const { return s_->rounds_done; }

Result<std::unique_ptr<FlJob>> FlJob::create(const JobConfig& config, const RuntimeOptions& options) {
  return guarded("cannot build the job", [&] { return build(config, options); });
}

Result<std::unique_ptr<FlJob>> FlJob::build(const JobConfig& config, const RuntimeOptions& options) {
  std::vector<FieldError> errors;
  if (config.tasks.empty()) errors.push_back({"tasks", "at least one task"});
  const bool federated = !config.federation.empty();
  if (config.clients < 1) errors.push_back({"clients", "at least 1"});
  if (config.clients_per_round < 1 || (!federated && config.clients_per_round > config.clients))
    errors.push_back({"clients_per_round", "from 1 to clients"});
  std::shared_ptr<ClientPool> pool = federated && options.client_pools ? options.client_pools(config.federation) : nullptr;
  if (federated && !pool) errors.push_back({"federation", "no clients for federation " + config.federation});
  if (federated && config.name.empty()) errors.push_back({"name", "a job on a federation needs a name"});
  if (config.min_clients < 1 || config.min_clients > config.clients_per_round)
    errors.push_back({"min_clients", "from 1 to clients_per_round"});
  if (config.client_failure_rate < 0 || config.client_failure_rate >= 1)
    errors.push_back({"client_failure_rate", "in [0, 1)"});
  if (config.max_round_attempts < 1) errors.push_back({"max_round_attempts", "at least 1"});
  if (config.rounds < 1 || config.local_epochs < 1 || config.batch_size < 1 || config.learning_rate <= 0)
    errors.push_back({"rounds", "rounds, local_epochs, batch_size and learning_rate must be positive"});
  if (config.round_offset < 0) errors.push_back({"round_offset", "at least 0"});
  if (config.weighting != "samples" && config.weighting != "cosine")
    errors.push_back({"weighting", "\"samples\" or \"cosine\""});
  if (config.local_update != "fedavg" && config.local_update != "fedema")
    errors.push_back({"local_update", "\"fedavg\" or \"fedema\""});
  if (config.local_update == "fedema" && !federated && config.client_state_dir.empty())
    errors.push_back({"client_state_dir", "\"fedema\" keeps its clients' models there"});
  if (!(config.ema_lambda >= 0) || !std::isfinite(config.ema_lambda))
    errors.push_back({"ema_lambda", "0 (auto) or a positive number"});
  if (config.affinity_every < 0) errors.push_back({"affinity_every", "at least 0"});
  if (config.client_clusters < 1 || config.client_clusters > 16)
    errors.push_back({"client_clusters", "from 1 (off) to 16"});
  if (config.client_clusters > 1 && std::count(config.tasks.begin(), config.tasks.end(), "ssl") > 0)
    errors.push_back({"client_clusters", "does not apply to ssl (each cluster would need its own linear probe)"});
  if (config.cluster_round < 1) errors.push_back({"cluster_round", "at least 1"});
  // ssl trains on two views of each image: its heads share a model with no other task's. On a
  // federation each client fits the linear probe on its own data (fl/assignment.h).
  const auto ssl_heads = std::count(config.tasks.begin(), config.tasks.end(), "ssl");
  if (ssl_heads > 0 && ssl_heads < static_cast<std::ptrdiff_t>(config.tasks.size()))
    errors.push_back({"tasks", "ssl trains on two views of each image and cannot share a model with other tasks"});
  std::vector<std::string> heads = config.heads.empty() ? config.tasks : config.heads;
  if (heads.size() != config.tasks.size()) errors.push_back({"heads", "one key per task"});
  for (size_t i = 0; i < heads.size(); ++i) {
    const bool charset = !heads[i].empty() && std::all_of(heads[i].begin(), heads[i].end(), [](unsigned char c) {
      return std::isalnum(c) || c == '_';
    });
    if (!charset) errors.push_back({"heads", "keys are non-empty and use [A-Za-z0-9_]: '" + heads[i] + "'"});
    if (std::find(heads.begin(), heads.begin() + static_cast<std::ptrdiff_t>(i), heads[i]) !=
        heads.begin() + static_cast<std::ptrdiff_t>(i))
      errors.push_back({"heads", "duplicate head key '" + heads[i] + "'"});
  }
  if (!errors.empty()) return Status::invalid_argument("bad job configuration", std::move(errors));

  auto state = std::make_unique<State>();
  state->config = config;
  state->config.heads = heads;
  try {
    state->device = torch::Device(options.device);
  } catch (const std::exception&) {
    return Status::invalid_argument("unknown LibTorch device '" + options.device + "'");
  }
  if (state->device.is_cuda() && state->device.index() >= cuda_device_count())
    return Status::invalid_argument("CUDA device " + options.device + " is not available");
  // A catalog data set's images are 1×28×28 with 10 labels; a federation's are its schema's.
  const int64_t labels = federated ? config.schema.labels : 10;
  if (federated) state->input = {config.schema.channels, config.schema.height, config.schema.width};
  for (const auto& name : config.tasks) {
    auto t = find_task(name, labels);
    if (!t.ok()) return t.status();
    if (t->kind == TaskKind::kDense && !dense_fits(state->input))
      return Status::invalid_argument("bad job configuration",
                                      {{"tasks", name + " needs image sides that are multiples of 4, not " +
                                                     std::to_string(state->input.height) + "x" +
                                                     std::to_string(state->input.width)}});
    state->tasks.push_back(*t);
  }
  auto strategy = make_strategy(config.aggregator);
  if (!strategy.ok()) return strategy.status();
  state->strategy = std::move(*strategy);

  if (!federated) {
    auto data = DataCache::instance().splits(options.data_dir, config.dataset);
    if (!data.ok()) return data.status();
    state->data = *data;
    // On a GPU each job keeps its own copy of the data on the device; on the CPU .to() is a no-op.
    state->train.images = state->data->train.images.to(state->device);
    state->test.images = state->data->test.images.to(state->device);
    for (const auto& t : state->tasks) {
      auto train_t = DataCache::instance().targets(t, state->data->train);
      auto test_t = DataCache::instance().targets(t, state->data->test);
      state->train.targets.push_back(train_t->to(state->device));
      state->test.targets.push_back(test_t->to(state->device));
      state->target_refs.push_back(train_t);
      state->target_refs.push_back(test_t);
    }
    auto partition = make_partition(config, state->data->train);
    if (!partition.ok()) return partition.status();
    state->partition = std::move(*partition);
    for (const auto& part : state->partition)
      state->largest_client = std::max<int64_t>(state->largest_client, static_cast<int64_t>(part.size()));
    if (config.client_clusters > 1)
      state->clusters = std::make_unique<JobClusters>(state->partition, state->data->train.labels);
  }
  if (federated && config.client_clusters > 1)  // no partition: the clients that train in the clustering round
    state->clusters = std::make_unique<JobClusters>(state->partition, torch::Tensor());

  {
    // The encoder's initialisation depends on the seed alone, and each head's on the seed, its
    // task and how many heads of the same task come before it: the first `class` head starts
    // the same in any job with that seed (so the same submission trains the same, whatever id
    // it got), and a second `class` head in a merged group starts elsewhere.
    std::lock_guard lock(init_mutex());
    torch::manual_seed(seed_for(config.seed, Purpose::kInit));
    state->global = MultiTaskNet(state->tasks, heads, state->input);
    for (size_t i = 0; i < heads.size(); ++i) {
      const auto same_before = std::count(config.tasks.begin(), config.tasks.begin() + static_cast<std::ptrdiff_t>(i),
                                          config.tasks[i]);
      const std::string init_key = config.tasks[i] + "#" + std::to_string(same_before);
      torch::manual_seed(seed_for(config.seed, Purpose::kInit, 0, 0, static_cast<int64_t>(stable_hash(init_key))));
      MultiTaskNet one(std::vector<TaskDef>{state->tasks[i]}, std::vector<std::string>{heads[i]}, state->input);
      copy_weights(one, state->global, {{heads[i], heads[i]}}, /*encoder=*/false);
    }
    state->worker = MultiTaskNet(state->tasks, heads, state->input);
  }
  state->global->to(state->device);
  state->worker->to(state->device);
  if (federated) {
    auto remote = std::make_unique<RemoteClients>(state->worker, std::move(pool), config.name,
                                                  config.round_timeout_seconds * 1000, config.min_clients);
    remote->set_local_update(config.local_update, config.ema_lambda);  // the clients keep their models
    remote->set_personalized_epochs(config.personalized_epochs);
    state->clients = std::move(remote);
  } else {
    if (config.local_update == "fedema")
      state->fedema = std::make_unique<FedEmaClients>(config.client_state_dir, config.ema_lambda);
    state->clients =
        std::make_unique<SimulatedClients>(state->worker, state->train, state->partition, state->fedema.get());
  }
  return std::unique_ptr<FlJob>(new FlJob(std::move(state)));
}

Result<RoundReport> FlJob::run_round(const std::function<bool()>& should_stop) {
  const int64_t round = s_->config.round_offset + s_->rounds_done + 1;
  return guarded(("round " + std::to_string(round)).c_str(), [&] { return train_round(should_stop); });
}

namespace {

// A client update's aggregation weight (JobConfig::weighting): its samples, or its cosine
// distance from the model it started from.
double update_weight(const std::string& weighting, const ClientUpdate& u, const Weights& start) {
  return weighting == "cosine" ? cosine_weight(start, u.weights) : static_cast<double>(u.num_samples);
}

}  // namespace

// One round's work as it goes: the start models, the clients' results summed as they come.
struct FlJob::RoundWork {
  struct Reported {
    int64_t num_samples = 0;
    LocalResult local;
  };
  int64_t round = 0;  // 0-based, counted over the lineage
  Weights global;     // the global model the round starts from
  // With client clustering each cluster's clients start from its model and are summed into a
  // sum of its own; the clustering round keeps every update instead, to compare them.
  bool clustering_now = false;
  std::vector<Weights> starts;  // one per cluster, else {global}
  LocalTrainOptions local;
  RoundReport report;
  // The aggregated attempt's (each attempt starts them afresh):
  std::vector<UpdateSum> sums;             // per start model
  std::vector<int64_t> reported_by;        // reports per start model
  std::vector<int64_t> kept_clients;       // the clustering round: every client, ascending
  std::vector<ClientUpdate> kept;          // and its update
  std::vector<Reported> results;           // in the order summed
  std::vector<ClientResult> evaluated;     // the reporting clients' own evaluations (federations)
  std::vector<ClientTask> trained_tasks;   // the clients that started from the global model
  double loss_weighted = 0;
  std::set<std::string> meters;
};

LocalTrainOptions FlJob::local_options(double learning_rate) const {
  const JobConfig& c = s_->config;
  LocalTrainOptions local;
  local.epochs = static_cast<int>(c.local_epochs);
  local.batch_size = static_cast<int>(c.batch_size);
  local.learning_rate = learning_rate;
  local.prox_mu = c.prox_mu;
  local.affinity_every = c.affinity_every;
  local.encoder_gradient = c.encoder_gradient;
  local.balance = c.balance;
  if (c.personalized_epochs) local.personalize_max_samples = s_->largest_client;
  // The job is one group: born of a split when it sums (executor_rounds.cpp), its rounds done
  // are the rounds since the split.
  local.encoder_step = split_ramp_step(c.balance, c.encoder_gradient, s_->tasks, s_->rounds_done);
  return local;
}

Result<RoundReport> FlJob::train_round(const std::function<bool()>& should_stop) {
  State& s = *s_;
  const JobConfig& c = s.config;
  if (s.rounds_done >= c.rounds) return Status::failed_precondition("the job has run all its rounds");
  const auto started = std::chrono::steady_clock::now();
  RoundWork w;
  // 0-based inside and counted over the lineage (randomness and learning rate go on from the
  // parent group's rounds); 1-based in reports.
  w.round = c.round_offset + s.rounds_done;
  w.report.round = w.round + 1;
  w.report.learning_rate = c.learning_rate * std::pow(c.lr_decay, static_cast<double>(w.round));
  w.global = get_weights(s.global);
  w.local = local_options(w.report.learning_rate);
  w.clustering_now = c.client_clusters > 1 && !s.clustered() && w.round + 1 >= c.cluster_round;
  w.starts = s.clustered() ? s.clusters->models() : std::vector<Weights>{w.global};

  if (Status trained = train_clients(w, should_stop); !trained.is_ok()) return trained;
  if (!w.report.stopped) {
    if (Status aggregated = aggregate(w); !aggregated.is_ok()) return aggregated;
    // ssl's full probe only where a member ends: it costs about as much as a round on mnist.
    bool full_probe = false;
    for (size_t i = 0; i < s.tasks.size(); ++i) full_probe = full_probe || final_round_of(i);
    s.rounds_done += 1;
    if (Status evaluated = evaluate_round(w, full_probe); !evaluated.is_ok()) return evaluated;
    if (Status finite = check_finite(w.report); !finite.is_ok()) return finite;
  }
  w.report.seconds = seconds_since(started);
  return w.report;
}

Status FlJob::train_clients(RoundWork& w, const std::function<bool()>& should_stop) {
  const JobConfig& c = s_->config;
  RoundReport& report = w.report;
  for (int attempt = 0; attempt < c.max_round_attempts; ++attempt) {
    ++report.attempts;
    w.sums.assign(w.starts.size(), UpdateSum());
    w.reported_by.assign(w.starts.size(), 0);
    w.kept_clients.clear();
    w.kept.clear();
    w.results.clear();
    w.evaluated.clear();
    w.loss_weighted = 0;
    report.samples = 0;
    auto tasks = draw_clients(w, attempt, should_stop);  // by start model
    if (!tasks.ok()) return tasks.status();
    size_t task_count = 0;
    bool stopped = false;
    for (size_t m = 0; m < w.starts.size() && !stopped; ++m) {
      if ((*tasks)[m].empty()) continue;
      task_count += (*tasks)[m].size();
      const auto waiting = std::chrono::steady_clock::now();
      Status trained = s_->clients->train(w.starts[m], w.local, {w.round + 1, attempt, static_cast<int>(m)}, (*tasks)[m],
                                          [&](ClientResult r) { add_result(w, m, std::move(r)); }, should_stop,
                                          stopped);
      if (s_->clients->remote()) report.client_wait_seconds += seconds_since(waiting);
      if (!trained.is_ok()) return trained;
    }
    if (stopped) {
      report.stopped = true;
      return Status::ok();
    }
    report.clients_dropped += static_cast<int64_t>(task_count - w.results.size());  // real clients that did not report
    w.trained_tasks = (*tasks)[0];  // without clusters every client starts from the global model
    if (static_cast<int64_t>(w.results.size()) >= c.min_clients) break;
  }
  report.clients_reported = static_cast<int64_t>(w.results.size());
  for (const auto& m : w.meters) report.client_meters += (report.client_meters.empty() ? "" : "+") + m;
  if (report.clients_reported < c.min_clients)
    return Status::failed_precondition("round " + std::to_string(w.round + 1) + ": fewer than " +
                                       std::to_string(c.min_clients) + " clients reported in each of " +
                                       std::to_string(c.max_round_attempts) + " attempts");
  return Status::ok();
}

Result<std::vector<std::vector<ClientTask>>> FlJob::draw_clients(RoundWork& w, int attempt,
                                                                 const std::function<bool()>& should_stop) {
  State& s = *s_;
  const JobConfig& c = s.config;
  const auto waiting = std::chrono::steady_clock::now();
  auto candidates = s.clients->candidates(should_stop);
  w.report.client_wait_seconds += seconds_since(waiting);
  if (!candidates.ok()) return candidates.status();
  // The clustering round needs every client's update: all train, and none drops out.
  auto chosen = w.clustering_now ? std::move(*candidates)
                                 : sample_clients(std::move(*candidates), c.clients_per_round,
                                                  seed_for(c.seed, Purpose::kSample, w.round, attempt));
  // A federation may have more clients online than the rule compares: the lowest numbers.
  if (w.clustering_now && chosen.size() > static_cast<size_t>(kMaxFederatedClusterClients))
    chosen.resize(static_cast<size_t>(kMaxFederatedClusterClients));
  std::vector<std::vector<ClientTask>> tasks(w.starts.size());
  for (int64_t client : chosen) {
    ++w.report.clients_sampled;
    std::mt19937_64 fate(seed_for(c.seed, Purpose::kDropout, w.round, attempt, client));
    if (!w.clustering_now && std::uniform_real_distribution<double>(0, 1)(fate) < c.client_failure_rate) {
      ++w.report.clients_dropped;
      continue;
    }
    const size_t m = s.clustered() ? s.clusters->of(client) : 0;
    tasks[m].push_back({client, seed_for(c.seed, Purpose::kTrain, w.round, attempt, client)});
  }
  return tasks;
}

void FlJob::add_result(RoundWork& w, size_t start, ClientResult r) {
  // Throws on an update that does not fit, as aggregate() did.
  if (w.clustering_now) {
    w.kept_clients.push_back(r.client);
    w.kept.push_back(r.update);
  } else {
    w.sums[start].add(r.update, update_weight(s_->config.weighting, r.update, w.starts[start]));
  }
  ++w.reported_by[start];
  if (!r.energy_meter.empty()) w.meters.insert(r.energy_meter);
  w.report.client_joules += r.energy_joules;
  if (r.test_samples > 0) {
    ClientResult e;  // only its evaluation is needed
    e.client = r.client;
    e.test_samples = r.test_samples;
    e.eval = std::move(r.eval);
    w.evaluated.push_back(std::move(e));
  }
  w.loss_weighted += r.local.mean_loss * static_cast<double>(r.update.num_samples);
  w.report.samples += r.local.samples;
  w.results.push_back({r.update.num_samples, std::move(r.local)});
}

Status FlJob::aggregate(RoundWork& w) {
  State& s = *s_;
  const JobConfig& c = s.config;
  int64_t weight = 0;
  if (w.clustering_now) {
    s.clusters->form(c.client_clusters, w.kept_clients, w.kept, w.global,
                     [&](const ClientUpdate& u) { return update_weight(c.weighting, u, w.global); }, *s.strategy,
                     c.aggregator);
    set_weights(s.global, s.clusters->models()[s.clusters->largest()]);
    for (const auto& u : w.kept) weight += u.num_samples;
    w.kept.clear();  // every client's weights: let them go before evaluating
  } else if (s.clustered()) {
    for (size_t m = 0; m < w.starts.size(); ++m) {
      if (w.sums[m].count() == 0) continue;  // none of its members trained: it keeps its model
      s.clusters->aggregate(m, w.sums[m]);
      weight += w.sums[m].samples();
    }
    set_weights(s.global, s.clusters->models()[s.clusters->largest()]);
  } else {
    set_weights(s.global, s.strategy->aggregate_sum(w.global, w.sums[0]));
    weight = w.sums[0].samples();
    if (Status calibrated = calibrate(w.trained_tasks, w.local, w.report); !calibrated.is_ok()) return calibrated;
  }
  RoundReport& report = w.report;
  report.train_loss = weight > 0 ? w.loss_weighted / static_cast<double>(weight) : 0;
  // Affinity: the clients' matrices averaged, weighted by their samples (DESIGN.md).
  for (const auto& [num_samples, r] : w.results) {
    const auto& z = r.affinity;
    report.lookaheads += r.lookaheads;
    report.affinity_seconds += r.affinity_seconds;
    if (z.empty()) continue;
    if (report.affinity.empty()) report.affinity.assign(z.size(), std::vector<double>(z.size(), 0.0));
    const double share = static_cast<double>(num_samples) / static_cast<double>(weight);
    for (size_t i = 0; i < z.size(); ++i)
      for (size_t j = 0; j < z.size(); ++j) report.affinity[i][j] += share * z[i][j];
  }
  average_alignment(w);
  return Status::ok();
}

void FlJob::average_alignment(RoundWork& w) const {
  const auto& heads = s_->config.heads;
  std::vector<double> sum(heads.size(), 0.0);
  double weight = 0;
  for (const auto& [num_samples, r] : w.results) {
    if (r.alignment.size() != heads.size()) continue;  // one head, or a client that did not measure it
    for (size_t h = 0; h < heads.size(); ++h) sum[h] += static_cast<double>(num_samples) * r.alignment[h];
    weight += static_cast<double>(num_samples);
  }
  if (weight <= 0) return;
  for (size_t h = 0; h < heads.size(); ++h) w.report.alignment[heads[h]] = sum[h] / weight;
}

Status FlJob::evaluate_round(RoundWork& w, bool full_probe) {
  State& s = *s_;
  RoundReport& report = w.report;
  if (s.clustered()) {
    report_clusters(w);
  } else if (s.config.federation.empty()) {
    auto eval = evaluate(full_probe);
    if (!eval.ok()) return eval.status();
    report.eval = std::move(*eval);
  } else {
    report.eval = federated_evaluation(s.config.heads, s.tasks, w.evaluated);
  }
  return Status::ok();
}

void FlJob::report_clusters(RoundWork& w) {
  State& s = *s_;
  const auto& samples = s.clusters->samples();
  std::vector<std::vector<TaskMetrics>> per_cluster;
  if (s.clusters->federated()) {
    // Each client evaluated the model it trained from its cluster's: the round's metrics are
    // all of them, and each cluster's those of its own clients.
    std::vector<std::vector<ClientResult>> by_cluster(s.clusters->count());
    for (const auto& e : w.evaluated) by_cluster[s.clusters->of(e.client)].push_back(e);
    for (const auto& evaluated : by_cluster)
      per_cluster.push_back(federated_evaluation(s.config.heads, s.tasks, evaluated));
    w.report.eval = federated_evaluation(s.config.heads, s.tasks, w.evaluated);
  } else {
    per_cluster = s.evaluate_clusters();
    w.report.eval = weighted_mean(per_cluster, samples);
  }
  const auto members = s.clusters->members();
  for (size_t m = 0; m < members.size(); ++m) {
    // In the clustering round every client reported, each now in its new cluster.
    const int64_t reported = w.clustering_now ? static_cast<int64_t>(members[m].size()) : w.reported_by[m];
    w.report.clusters.push_back({members[m], samples[m], reported, per_cluster[m]});
  }
}

Result<std::vector<TaskMetrics>> FlJob::evaluate() const { return evaluate(true); }

Result<std::vector<TaskMetrics>> FlJob::evaluate(bool full_probe) const {
  if (!s_->config.federation.empty())
    return Status::failed_precondition("a job on a federation has no test set: its clients evaluate");
  return guarded("evaluation", [&]() -> Result<std::vector<TaskMetrics>> {
    if (s_->clustered()) return weighted_mean(s_->evaluate_clusters(), s_->clusters->samples());
    ProbeOptions probe;
    if (!full_probe) probe.max_train_samples = probe.max_test_samples = kQuickProbeSamples;
    auto scores = fl::evaluate(s_->global, s_->test, 500, &s_->train, probe);  // train: ssl's linear probe
    std::vector<TaskMetrics> out;
    for (size_t i = 0; i < scores.size(); ++i)
      out.push_back({s_->config.heads[i], s_->tasks[i].name, scores[i].loss, s_->tasks[i].metric, scores[i].metric});
    return out;
  });
}

Result<std::vector<TaskMetrics>> FlJob::evaluate_on_client_data() const {
  if (!s_->config.federation.empty())
    return Status::failed_precondition("a job on a federation has no test set: its clients evaluate");
  if (std::count(s_->config.tasks.begin(), s_->config.tasks.end(), "ssl") > 0)
    return Status::failed_precondition("ssl is scored by a linear probe on the whole test set");
  if (s_->clustered()) return evaluate();
  return guarded("evaluation", [&]() -> Result<std::vector<TaskMetrics>> {
    std::vector<int64_t> everyone(s_->partition.size());
    std::iota(everyone.begin(), everyone.end(), 0);
    return s_->evaluate_on_mix(get_weights(s_->global), label_shares(s_->data->train.labels, s_->partition, everyone));
  });
}

Result<std::string> FlJob::checkpoint() const {
  try {
    torch::serialize::OutputArchive archive;
    archive.write("rounds_done", torch::tensor(s_->rounds_done, torch::kInt64));
    const Weights w = get_weights(s_->global);
    archive.write("weights.count", torch::tensor(static_cast<int64_t>(w.size()), torch::kInt64));
    // Checkpoints hold CPU tensors, so that a job may resume on another device.
    for (size_t i = 0; i < w.size(); ++i) archive.write("weights." + std::to_string(i), w[i].cpu());
    const auto st = s_->strategy->state();
    archive.write("strategy.count", torch::tensor(static_cast<int64_t>(st.size()), torch::kInt64));
    for (size_t i = 0; i < st.size(); ++i) archive.write("strategy." + std::to_string(i), st[i].cpu());
    if (s_->clusters) s_->clusters->write(archive);  // nothing until formed: other checkpoints are as they were
    std::ostringstream out;
    archive.save_to(out);
    return out.str();
  } catch (const std::exception& e) {
    return Status::internal(std::string("cannot write checkpoint: ") + error_text(e));
  }
}

Status FlJob::restore(const std::string& bytes) {
  try {
    torch::serialize::InputArchive archive;
    std::istringstream in(bytes);
    archive.load_from(in);
    torch::Tensor t;
    archive.read("rounds_done", t);
    const int64_t rounds = t.item<int64_t>();
    archive.read("weights.count", t);
    Weights w(static_cast<size_t>(t.item<int64_t>()));
    for (size_t i = 0; i < w.size(); ++i) {
      archive.read("weights." + std::to_string(i), w[i]);
      w[i] = w[i].to(s_->device);
    }
    archive.read("strategy.count", t);
    std::vector<torch::Tensor> st(static_cast<size_t>(t.item<int64_t>()));
    for (size_t i = 0; i < st.size(); ++i) {
      archive.read("strategy." + std::to_string(i), st[i]);
      st[i] = st[i].to(s_->device);
    }

    const auto params = s_->global->parameters();
    if (w.size() != params.size()) return Status::invalid_argument("checkpoint is for another model");
    for (size_t i = 0; i < w.size(); ++i)
      if (!w[i].sizes().equals(params[i].sizes())) return Status::invalid_argument("checkpoint is for another model");
    if (rounds < 0 || rounds > s_->config.rounds) return Status::invalid_argument("checkpoint round out of range");
    // Strategy state is per parameter (FedAvgM: v; adaptive: m then v): check it fits this model.
    for (size_t i = 0; i < st.size(); ++i)
      if (!st[i].sizes().equals(params[i % params.size()].sizes()))
        return Status::invalid_argument("checkpoint strategy state is for another model");
    std::unique_ptr<JobClusters> clusters;
    if (s_->clusters) {  // read into a fresh one, so that a bad checkpoint changes nothing
      clusters = std::make_unique<JobClusters>(s_->partition,
                                               s_->data ? s_->data->train.labels : torch::Tensor());
      Status read = clusters->read(archive, params, s_->config.client_clusters, s_->config.aggregator, s_->device);
      if (!read.is_ok()) return read;
    }
    if (Status s = s_->strategy->load_state(st); !s.is_ok()) return s;
    set_weights(s_->global, w);
    if (clusters) {
      s_->clusters = std::move(clusters);
      if (s_->clustered()) set_weights(s_->global, s_->clusters->models()[s_->clusters->largest()]);
    }
    s_->rounds_done = rounds;
    return Status::ok();
  } catch (const std::exception& e) {
    return Status::invalid_argument(std::string("unreadable checkpoint: ") + error_text(e));
  }
}

Status FlJob::release_client_states(int64_t oldest_round) {
  if (!s_->fedema) return Status::ok();
  return s_->fedema->release(oldest_round);
}

Result<std::unique_ptr<FlJob>> FlJob::derive(const FlJob& source, const JobConfig& config,
                                             const RuntimeOptions& options) {
  if (config.dataset != source.config().dataset || config.federation != source.config().federation)
    return Status::invalid_argument("derive: data set " + config.dataset + config.federation +
                                    " differs from the source's " + source.config().dataset +
                                    source.config().federation);
  auto job = create(config, options);
  if (!job.ok()) return job.status();
  State& to = *(*job)->s_;
  const State& from = *source.s_;
  std::vector<std::pair<std::string, std::string>> kept;
  for (size_t i = 0; i < to.config.heads.size(); ++i) {
    const auto& key = to.config.heads[i];
    const auto it = std::find(from.config.heads.begin(), from.config.heads.end(), key);
    if (it == from.config.heads.end()) continue;  // a new head: keeps its seeded start
    if (from.tasks[static_cast<size_t>(it - from.config.heads.begin())].name != to.tasks[i].name)
      return Status::invalid_argument("derive: head " + key + " changes its task");
    kept.emplace_back(key, key);
  }
  try {
    MultiTaskNet source_net = from.global;  // a handle; copy_weights only reads it
    copy_weights(source_net, to.global, kept);
    if (from.clustered() && to.clusters) to.carry_clusters(from, kept);
  } catch (const std::exception& e) {
    return Status::invalid_argument(std::string("derive: ") + error_text(e));
  }
  return job;
}

// The clusters of `from` into the job derived from it: each cluster's model keeps its encoder
// and the `kept` heads, and a head new in `to` starts as in to.global (its seeded start), alike
// in every cluster. `to.global` becomes the largest cluster's model, as after a clustering round.
void FlJob::State::carry_clusters(const State& from, const std::vector<std::pair<std::string, std::string>>& kept) {
  State& to = *this;
  const Weights base = get_weights(to.global);
  MultiTaskNet source(from.tasks, from.config.heads, from.input);  // CPU scratch models
  MultiTaskNet target(to.tasks, to.config.heads, to.input);
  std::vector<Weights> models;
  for (const Weights& model : from.clusters->models()) {
    set_weights(source, model);
    set_weights(target, base);
    copy_weights(source, target, kept);
    set_weights(to.worker, get_weights(target));  // onto the job's device
    models.push_back(get_weights(to.worker));
  }
  to.clusters->carry(*from.clusters, std::move(models), to.config.aggregator);
  set_weights(to.global, to.clusters->models()[to.clusters->largest()]);
}

const std::vector<std::string>& FlJob::heads() const { return s_->config.heads; }

void FlJob::set_affinity_every(int n) { s_->config.affinity_every = std::max(0, n); }

void FlJob::set_final_heads(const std::vector<std::string>& keys) { s_->config.final_heads = keys; }

bool FlJob::final_round_of(size_t head) const {
  const JobConfig& c = s_->config;
  return s_->rounds_done + 1 >= c.rounds ||
         std::count(c.final_heads.begin(), c.final_heads.end(), c.heads.at(head)) > 0;
}

Status FlJob::calibrate(const std::vector<ClientTask>& clients, const LocalTrainOptions& local, RoundReport& report) {
  State& s = *s_;
  const JobConfig& c = s.config;
  if (!c.head_calibration || c.heads.size() < 2 || !c.federation.empty()) return Status::ok();
  std::vector<size_t> heads;
  std::vector<std::string> keys;
  for (size_t i = 0; i < c.heads.size(); ++i)
    if (final_round_of(i) && s.tasks[i].kind != TaskKind::kSiamese) {
      heads.push_back(i);
      keys.push_back(c.heads[i]);
    }
  if (heads.empty()) return Status::ok();
  // Not stoppable: the round's aggregate is already in the global model, and the pass is one
  // short epoch of heads on the round's clients.
  bool stopped = false;
  std::vector<ClientTask> calibrating = clients;
  if (c.calibrate_every_client) {
    calibrating.clear();
    for (size_t k = 0; k < s.partition.size(); ++k) {
      const auto client = static_cast<int64_t>(k);
      calibrating.push_back({client, seed_for(c.seed, Purpose::kTrain, report.round - 1, 0, client)});
    }
  }
  auto samples = calibrate_heads(s.global, s.worker, s.train, s.partition, calibrating, heads, local, {}, stopped);
  if (!samples.ok()) return samples.status();
  report.calibration_samples = *samples;
  report.calibrated = keys;
  return Status::ok();
}

Result<std::string> FlJob::State::export_head(MultiTaskNet source, const std::string& head_key) const {
  const auto it = std::find(config.heads.begin(), config.heads.end(), head_key);
  if (it == config.heads.end()) return Status::not_found("no head " + head_key + " in this job");
  const TaskDef& task = tasks[static_cast<size_t>(it - config.heads.begin())];
  try {
    MultiTaskNet cpu(std::vector<TaskDef>{task}, std::vector<std::string>{}, input);
    copy_weights(source, cpu, {{head_key, task.name}});  // copy_ moves device → CPU
    std::ostringstream out;
    torch::save(cpu, out);
    return out.str();
  } catch (const std::exception& e) {
    return Status::internal(std::string("cannot export the model: ") + error_text(e));
  }
}

Result<std::string> FlJob::export_model(const std::string& head_key) const {
  return s_->export_head(s_->global, head_key);
}

Result<std::vector<std::string>> FlJob::export_cluster_models(const std::string& head_key) const {
  std::vector<std::string> out;
  if (!s_->clustered()) return out;
  return guarded("cannot export the clusters' models", [&]() -> Result<std::vector<std::string>> {
    MultiTaskNet scratch(s_->tasks, s_->config.heads, s_->input);  // on the CPU
    for (const Weights& model : s_->clusters->models()) {
      set_weights(scratch, model);
      auto bytes = s_->export_head(scratch, head_key);
      if (!bytes.ok()) return bytes.status();
      out.push_back(std::move(*bytes));
    }
    return out;
  });
}

Result<std::string> FlJob::export_model() const {
  try {
    // Exported from a CPU copy, so that the file loads on machines without a GPU.
    MultiTaskNet cpu(s_->tasks, s_->config.heads, s_->input);
    set_weights(cpu, get_weights(s_->global));  // copy_ moves device → CPU
    std::ostringstream out;
    torch::save(cpu, out);
    return out.str();
  } catch (const std::exception& e) {
    return Status::internal(std::string("cannot export the model: ") + error_text(e));
  }
}

Status set_torch_threads(int threads) {
  if (threads <= 0) return Status::ok();
  return guarded("cannot set LibTorch's threads", [&] {
    torch::set_num_threads(threads);
    return Status::ok();
  });
}

int torch_threads() {
  try {
    return torch::get_num_threads();
  } catch (...) {
    return 0;
  }
}

int cuda_device_count() {
  try {
    return torch::cuda::is_available() ? static_cast<int>(torch::cuda::device_count()) : 0;
  } catch (...) {  // a broken driver: train on the CPU
    return 0;
  }
}

Status check_dataset_available(const std::string& data_dir, const std::string& dataset) {
  return check_dataset_files(data_dir, dataset);
}

}  // namespace mufl::fl
