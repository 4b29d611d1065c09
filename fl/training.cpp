#include "fl/training.h"

#include <algorithm>
#include <numeric>
#include <random>

namespace mufl::fl {

TaskData make_task_data(const ImageSet& set, const std::vector<TaskDef>& tasks) {
  TaskData d;
  d.images = set.images.contiguous();
  for (const auto& t : tasks) d.targets.push_back(make_targets(t, set.images, set.labels).contiguous());
  return d;
}

LocalResult train_local(MultiTaskNet& model, const TaskData& data, const std::vector<int64_t>& indices,
                        const LocalTrainOptions& options, uint64_t seed, const Weights* global,
                        const std::function<bool()>& should_stop) {
  LocalResult result;
  if (indices.empty()) return result;
  model->train();
  torch::optim::SGD optimizer(model->parameters(), torch::optim::SGDOptions(options.learning_rate)
                                                       .momentum(options.momentum)
                                                       .weight_decay(options.weight_decay));
  const auto params = model->parameters();
  const auto& tasks = model->tasks();
  std::vector<int64_t> order(indices);
  std::mt19937_64 rng(seed);
  double loss_sum = 0;
  for (int epoch = 0; epoch < options.epochs; ++epoch) {
    std::shuffle(order.begin(), order.end(), rng);
    const auto index = torch::from_blob(order.data(), {static_cast<int64_t>(order.size())}, torch::kInt64);
    for (int64_t start = 0; start < index.size(0); start += options.batch_size) {
      if (should_stop && should_stop()) {
        result.stopped = true;
        break;
      }
      const auto batch = index.slice(0, start, std::min<int64_t>(start + options.batch_size, index.size(0)));
      const auto x = data.images.index_select(0, batch);
      const auto features = model->encode(x);
      torch::Tensor loss = torch::zeros({});
      for (size_t t = 0; t < tasks.size(); ++t)
        loss = loss + task_loss(tasks[t], model->head(t, features), data.targets[t].index_select(0, batch));
      const double task_loss_value = loss.item<double>();
      if (options.prox_mu > 0 && global) {
        torch::Tensor prox = torch::zeros({});
        for (size_t i = 0; i < params.size(); ++i) prox = prox + (params[i] - (*global)[i]).pow(2).sum();
        loss = loss + 0.5 * options.prox_mu * prox;
      }
      optimizer.zero_grad();
      loss.backward();
      optimizer.step();
      loss_sum += task_loss_value;
      result.samples += batch.size(0);
      ++result.steps;
    }
    if (result.stopped) break;
  }
  result.mean_loss = result.steps > 0 ? loss_sum / static_cast<double>(result.steps) : 0.0;
  return result;
}

std::vector<TaskScore> evaluate(MultiTaskNet& model, const TaskData& data, int batch_size) {
  torch::NoGradGuard no_grad;
  model->eval();
  const auto& tasks = model->tasks();
  std::vector<EvalSums> sums(tasks.size());
  for (int64_t start = 0; start < data.size(); start += batch_size) {
    const int64_t end = std::min<int64_t>(start + batch_size, data.size());
    const auto features = model->encode(data.images.slice(0, start, end));
    for (size_t t = 0; t < tasks.size(); ++t)
      accumulate(tasks[t], model->head(t, features), data.targets[t].slice(0, start, end), sums[t]);
  }
  std::vector<TaskScore> scores;
  for (const auto& s : sums) scores.push_back(finish(s));
  return scores;
}

}  // namespace mufl::fl
