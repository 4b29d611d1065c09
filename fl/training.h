#pragma once
// Local training on one client's samples and evaluation on a test set, for a MultiTaskNet.
// The loss of a multi-task model is the plain sum of its tasks' losses.
// Internal to fl/ (torch types).
#include <torch/torch.h>

#include <cstdint>
#include <functional>
#include <vector>

#include "fl/datasets.h"
#include "fl/model.h"
#include "fl/tasks.h"
#include "fl/weights.h"

namespace mufl::fl {

// Images with the targets of each task of a model, computed once per data set.
struct TaskData {
  torch::Tensor images;               // float [N, 1, 28, 28]
  std::vector<torch::Tensor> targets; // one per task, in the model's task order
  int64_t size() const { return images.size(0); }
};
TaskData make_task_data(const ImageSet& set, const std::vector<TaskDef>& tasks);

struct LocalTrainOptions {
  int epochs = 1;
  int batch_size = 32;
  double learning_rate = 0.05;
  double momentum = 0.9;
  double weight_decay = 5e-4;
  // FedProx (Li et al. 2020): adds mu/2 · ||w − w_global||² to the loss; 0 turns it off.
  double prox_mu = 0.0;
};

struct LocalResult {
  int64_t samples = 0;   // samples trained on, counting every epoch
  int64_t steps = 0;     // optimiser steps
  double mean_loss = 0;  // mean batch loss over the steps
  bool stopped = false;  // should_stop said so before the end
};

// Trains `model` in place, starting from whatever weights it holds (the global model), with SGD
// on the samples `indices` of `data`. The order of batches comes from `seed` alone, so a client
// trains the same way every time. `global` is needed only when prox_mu > 0. `should_stop` is
// asked before every batch (cancellation within one batch).
LocalResult train_local(MultiTaskNet& model, const TaskData& data, const std::vector<int64_t>& indices,
                        const LocalTrainOptions& options, uint64_t seed, const Weights* global = nullptr,
                        const std::function<bool()>& should_stop = {});

// Loss and metric per task over all of `data`, in the model's task order.
std::vector<TaskScore> evaluate(MultiTaskNet& model, const TaskData& data, int batch_size = 500);

}  // namespace mufl::fl
