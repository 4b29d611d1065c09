#include "fl/training.h"

#include <algorithm>
#include <chrono>
#include <numeric>
#include <optional>
#include <random>

#include "fl/augment.h"
#include "fl/linear_probe.h"
#include "fl/seeds.h"
#include "fl/task_balance.h"

namespace mufl::fl {
namespace {

// The views of the test set are always the same: ssl's test loss compares across rounds and jobs.
constexpr uint64_t kTestViewsSeed = 0x7465737476696577ULL;  // "testview"

// True when the model's heads are ssl heads, which train on paired views of each image; false
// when none is. A model that mixes the two is refused (FlJob refuses such a job).
bool trains_on_views(MultiTaskNet& model) {
  const auto& tasks = model->tasks();
  const auto siamese = std::count_if(tasks.begin(), tasks.end(), [](const TaskDef& t) { return t.kind == TaskKind::kSiamese; });
  TORCH_CHECK(siamese == 0 || siamese == static_cast<std::ptrdiff_t>(tasks.size()),
              "ssl heads train on two views of each image and cannot share a model with other tasks");
  return siamese > 0;
}

}  // namespace

TaskData make_task_data(const ImageSet& set, const std::vector<TaskDef>& tasks) {
  TaskData d;
  d.images = set.images.contiguous();
  for (const auto& t : tasks) d.targets.push_back(make_targets(t, set.images, set.labels).contiguous());
  return d;
}

int personalized_epochs(int max_epochs, int64_t samples, int64_t max_samples) {
  if (max_samples <= 0 || samples >= max_samples) return max_epochs;
  const int64_t e = (static_cast<int64_t>(max_epochs) * std::max<int64_t>(samples, 0) + max_samples - 1) / max_samples;
  return static_cast<int>(std::max<int64_t>(1, e));
}

namespace {

// The batches of local training: `indices` reshuffled each epoch by a generator seeded with
// `seed`, cut into batches of `batch_size`. Calls step(batch, batch_no) for each (batch: int64
// indices into the data; batch_no counts from 0 in each epoch) and end_epoch() after each epoch,
// the one a stop cut short included. Returns true when `should_stop` ended it (checked before
// each batch).
template <typename Step, typename EndEpoch>
bool for_each_batch(const std::vector<int64_t>& indices, int epochs, int64_t batch_size, uint64_t seed,
                    const std::function<bool()>& should_stop, Step&& step, EndEpoch&& end_epoch) {
  std::vector<int64_t> order(indices);
  std::mt19937_64 rng(seed);
  const auto n = static_cast<int64_t>(order.size());
  for (int epoch = 0; epoch < epochs; ++epoch) {
    std::shuffle(order.begin(), order.end(), rng);
    const auto index = torch::from_blob(order.data(), {n}, torch::kInt64);
    bool stopped = false;
    int64_t batch_no = 0;
    for (int64_t start = 0; start < n; start += batch_size, ++batch_no) {
      if (should_stop && should_stop()) {
        stopped = true;
        break;
      }
      step(index.slice(0, start, std::min<int64_t>(start + batch_size, n)), batch_no);
    }
    end_epoch();
    if (stopped) return true;
  }
  return false;
}

// train_local with head_only: the encoder's features under no_grad, one SGD step of the chosen
// heads per batch on the sum of their losses (heads share no parameter: each gets its own gradient).
LocalResult train_heads(MultiTaskNet& model, const TaskData& data, const std::vector<int64_t>& indices,
                        const LocalTrainOptions& options, uint64_t seed, const std::function<bool()>& should_stop) {
  TORCH_CHECK(!trains_on_views(model), "ssl heads are not calibrated: their metric reads the encoder alone");
  LocalResult result;
  model->train();
  std::vector<torch::Tensor> params;
  for (size_t h : options.head_only)
    for (const auto& p : model->head_parameters(h)) params.push_back(p);
  torch::optim::SGD optimizer(params, torch::optim::SGDOptions(options.learning_rate)
                                          .momentum(options.momentum)
                                          .weight_decay(options.weight_decay));
  const auto& tasks = model->tasks();
  double loss_sum = 0;
  const auto step = [&](const torch::Tensor& batch, int64_t) {
    torch::Tensor features;
    {
      torch::NoGradGuard no_grad;
      features = model->encode(data.images.index_select(0, batch));
    }
    torch::Tensor loss = torch::zeros({}, features.options());
    for (size_t h : options.head_only)
      loss = loss + task_loss(tasks[h], model->head(h, features), data.targets[h].index_select(0, batch));
    optimizer.zero_grad();
    loss.backward();
    optimizer.step();
    loss_sum += loss.item<double>();
    result.samples += batch.size(0);
    ++result.steps;
  };
  result.stopped = for_each_batch(indices, options.epochs, options.batch_size, seed, should_stop, step, [] {});
  result.mean_loss = result.steps > 0 ? loss_sum / static_cast<double>(result.steps) : 0.0;
  return result;
}

}  // namespace

bool probes_label_heads(const LocalTrainOptions& options, const std::vector<TaskDef>& tasks) {
  if (options.balance != TaskBalance::kByKind || options.encoder_gradient != EncoderGradient::kMean) return false;
  const auto has = [&](TaskKind kind) {
    return std::any_of(tasks.begin(), tasks.end(), [&](const TaskDef& t) { return t.kind == kind; });
  };
  return has(TaskKind::kLabel) && has(TaskKind::kDense);
}

LocalTrainOptions label_probe_options(const LocalTrainOptions& options, const std::vector<TaskDef>& tasks) {
  LocalTrainOptions probe = options;
  probe.epochs = 1;
  probe.personalize_max_samples = 0;
  probe.learning_rate = options.learning_rate * kLabelProbeLearningRateScale;
  probe.head_only.clear();
  for (size_t t = 0; t < tasks.size(); ++t)
    if (tasks[t].kind == TaskKind::kLabel) probe.head_only.push_back(t);
  return probe;
}

uint64_t label_probe_seed(uint64_t seed) { return mix(seed ^ 0x6c6162656cULL); }  // "label"

LocalResult train_local(MultiTaskNet& model, const TaskData& data, const std::vector<int64_t>& indices,
                        const LocalTrainOptions& options, uint64_t seed, const Weights* global,
                        const std::function<bool()>& should_stop) {
  LocalResult result;
  if (indices.empty()) return result;
  if (!options.head_only.empty()) return train_heads(model, data, indices, options, seed, should_stop);
  const bool merged_label_and_dense = probes_label_heads(options, model->tasks());
  if (merged_label_and_dense) {
    const auto probe = label_probe_options(options, model->tasks());
    if (train_heads(model, data, indices, probe, label_probe_seed(seed), should_stop).stopped) {
      result.stopped = true;
      return result;
    }
  }
  model->train();
  torch::optim::SGD optimizer(model->parameters(), torch::optim::SGDOptions(options.learning_rate)
                                                       .momentum(options.momentum)
                                                       .weight_decay(options.weight_decay));
  const auto params = model->parameters();
  const auto encoder_params = model->encoder_parameters();
  const auto& tasks = model->tasks();
  const size_t k = tasks.size();
  const TaskBalance balance = balance_for(options.balance, tasks);
  const bool lookahead = options.affinity_every > 0 && k > 1;
  if (lookahead) result.affinity.assign(k, std::vector<double>(k, 0.0));
  // ssl: each batch's two views come from a seed of their own, drawn from the client's seed.
  const bool views = trains_on_views(model);
  std::mt19937_64 view_seeds(mix(seed ^ 0x7669657773ULL));  // "views"
  double loss_sum = 0;
  const int epochs = options.personalize_max_samples > 0
                         ? personalized_epochs(options.epochs, static_cast<int64_t>(indices.size()),
                                               options.personalize_max_samples)
                         : options.epochs;
  // The lookahead's affinity of the current epoch: averaged per epoch, summed over epochs (DESIGN.md).
  std::vector<std::vector<double>> epoch_z(lookahead ? k : 0, std::vector<double>(k, 0.0));
  int64_t epoch_lookaheads = 0;
  std::vector<double> alignment_sum(k > 1 ? k : 0, 0.0);
  const auto step = [&](const torch::Tensor& batch, int64_t batch_no) {
    const auto images = data.images.index_select(0, batch);
    const auto x = views ? paired_views(images, view_seeds()) : images;
    // The encoder runs once (for ssl, on both views of each image); each head trains on a
    // detached copy of its output, so that each task's gradient at the shared features can be
    // read, balanced and combined (fl/task_balance.h) before one backward pass through the encoder.
    const auto features = model->encode(x);
    const auto shared = features.detach().requires_grad_(true);
    std::vector<torch::Tensor> targets, losses, feature_grads;
    double task_loss_value = 0;
    for (size_t t = 0; t < k; ++t) {
      targets.push_back(data.targets[t].index_select(0, batch));
      losses.push_back(task_loss(tasks[t], model->head(t, shared), targets.back()));
      task_loss_value += losses.back().item<double>();
    }
    optimizer.zero_grad();
    for (size_t t = 0; t < k; ++t) {
      losses[t].backward();  // head t's own full gradient; task t's at the features
      feature_grads.push_back(shared.grad());
      shared.mutable_grad().reset();  // the next task's backward starts a fresh one
    }
    std::vector<double> weights = task_weights(feature_grads, options.encoder_gradient, balance);
    if (merged_label_and_dense) limit_label_steps(feature_grads, tasks, weights);
    torch::Tensor combined = feature_grads[0] * weights[0];
    for (size_t t = 1; t < k; ++t) combined.add_(feature_grads[t], weights[t]);
    if (k > 1) {
      const auto alignment = mates_alignment(feature_grads, weights);
      for (size_t t = 0; t < k; ++t) alignment_sum[t] += alignment[t];
    }
    // The lookahead steps each task's encoder alone along its own (balanced, unaveraged)
    // gradient, so it needs ∇θs of each task from the encoder's graph, before backward frees it.
    const bool measure = lookahead && batch_no % options.affinity_every == 0;
    const auto lookahead_start = std::chrono::steady_clock::now();
    std::vector<std::vector<torch::Tensor>> grads;
    std::vector<double> base;
    if (measure) {
      const std::vector<double> own = lookahead_weights(feature_grads, options.encoder_gradient, balance);
      for (size_t t = 0; t < k; ++t) {
        grads.push_back(torch::autograd::grad({features}, encoder_params, {feature_grads[t] * own[t]},
                                              /*retain_graph=*/true, /*create_graph=*/false, /*allow_unused=*/true));
        base.push_back(losses[t].item<double>());
      }
    }
    double lookahead_seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - lookahead_start).count();
    if (options.encoder_step != 1.0) combined.mul_(options.encoder_step);
    features.backward(combined);
    if (options.prox_mu > 0 && global) {
      torch::Tensor prox = torch::zeros({}, x.options());
      for (size_t i = 0; i < params.size(); ++i) prox = prox + (params[i] - (*global)[i]).pow(2).sum();
      (0.5 * options.prox_mu * prox).backward();
    }
    // After backward (the graph holds the encoder weights the lookahead moves) and before the
    // step (the lookahead must see θs, not the stepped weights).
    if (measure) {
      const auto t0 = std::chrono::steady_clock::now();
      affinity_lookahead(model, x, targets, grads, base, options.learning_rate, epoch_z);
      ++epoch_lookaheads;
      lookahead_seconds += std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
      result.affinity_seconds += lookahead_seconds;
    }
    optimizer.step();
    loss_sum += task_loss_value;
    result.samples += batch.size(0);
    ++result.steps;
  };
  const auto end_epoch = [&] {
    if (epoch_lookaheads == 0) return;
    for (size_t i = 0; i < k; ++i)
      for (size_t j = 0; j < k; ++j) {
        result.affinity[i][j] += epoch_z[i][j] / static_cast<double>(epoch_lookaheads);
        epoch_z[i][j] = 0;
      }
    result.lookaheads += epoch_lookaheads;
    epoch_lookaheads = 0;
  };
  result.stopped = for_each_batch(indices, epochs, options.batch_size, seed, should_stop, step, end_epoch);
  result.mean_loss = result.steps > 0 ? loss_sum / static_cast<double>(result.steps) : 0.0;
  if (result.steps > 0)
    for (double a : alignment_sum) result.alignment.push_back(a / static_cast<double>(result.steps));
  return result;
}

void affinity_lookahead(MultiTaskNet& model, const torch::Tensor& images, const std::vector<torch::Tensor>& targets,
                        const std::vector<std::vector<torch::Tensor>>& grads, const std::vector<double>& base,
                        double lr, std::vector<std::vector<double>>& z) {
  torch::NoGradGuard no_grad;
  auto encoder = model->encoder_parameters();
  const auto& tasks = model->tasks();
  std::vector<torch::Tensor> saved;
  for (const auto& p : encoder) saved.push_back(p.detach().clone());
  for (size_t i = 0; i < grads.size(); ++i) {
    for (size_t p = 0; p < encoder.size(); ++p)
      if (grads[i][p].defined()) encoder[p].sub_(grads[i][p], lr);
    const auto features = model->encode(images);
    for (size_t j = 0; j < tasks.size(); ++j) {
      if (!(base[j] > 0)) continue;  // a zero loss cannot get better: no signal
      const double after = task_loss(tasks[j], model->head(j, features), targets[j]).item<double>();
      z[i][j] += (1.0 - after / base[j]) / lr;
    }
    for (size_t p = 0; p < encoder.size(); ++p) encoder[p].copy_(saved[p]);
  }
}

std::vector<TaskScore> evaluate(MultiTaskNet& model, const TaskData& data, int batch_size, const TaskData* probe_train,
                                const ProbeOptions& probe_options) {
  torch::NoGradGuard no_grad;
  model->eval();
  const auto& tasks = model->tasks();
  std::vector<EvalSums> sums(tasks.size());
  for (int64_t start = 0; start < data.size(); start += batch_size) {
    const int64_t end = std::min<int64_t>(start + batch_size, data.size());
    const auto images = data.images.slice(0, start, end);
    torch::Tensor plain, paired;  // the encoder's features, computed once for the heads that need them
    for (size_t t = 0; t < tasks.size(); ++t) {
      const bool siamese = tasks[t].kind == TaskKind::kSiamese;
      torch::Tensor& features = siamese ? paired : plain;
      if (!features.defined())
        features = model->encode(siamese ? paired_views(images, mix(kTestViewsSeed ^ static_cast<uint64_t>(start)))
                                         : images);
      accumulate(tasks[t], model->head(t, features), data.targets[t].slice(0, start, end), sums[t]);
    }
  }
  std::vector<TaskScore> scores;
  for (const auto& s : sums) scores.push_back(finish(s));
  // ssl: every head shares the encoder, so one probe scores them all.
  std::optional<double> probe;
  for (size_t t = 0; t < tasks.size(); ++t) {
    if (tasks[t].kind != TaskKind::kSiamese) continue;
    if (probe_train && !probe)
      probe = linear_probe_accuracy(model, probe_train->images, probe_train->targets[t], data.images, data.targets[t],
                                    tasks[t].labels, probe_options);
    scores[t].metric = probe.value_or(0.0);
  }
  return scores;
}

}  // namespace mufl::fl
