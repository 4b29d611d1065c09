#pragma once
// Local training on one client's samples and evaluation on a test set, for a MultiTaskNet.
// Each head of a multi-task model gets its own task's full gradient; the shared encoder gets a
// weighted sum of the tasks' gradients at its output (fl/task_balance.h: their mean or sum,
// balanced or not).
// Internal to fl/ (torch types).
#include <torch/torch.h>

#include <cstdint>
#include <functional>
#include <vector>

#include "fl/datasets.h"
#include "fl/encoder_gradient.h"
#include "fl/linear_probe.h"
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

// FedUReID's personalised epochs (Zhuang et al., ACM MM 2021), by data volume: a client with
// `samples` of the largest client's `max_samples` trains ceil(max_epochs · samples /
// max_samples) epochs, at least 1. The largest client trains max_epochs; a client a tenth its
// size, a tenth of them: small clients stop before they overfit their few samples, and the
// computation they would have spent is saved. REQUIRES: max_epochs ≥ 1, 0 ≤ samples ≤ max_samples,
// max_samples > 0 (else max_epochs).
int personalized_epochs(int max_epochs, int64_t samples, int64_t max_samples);

struct LocalTrainOptions {
  int epochs = 1;  // the most a client trains with personalize_max_samples
  // > 0: each client trains personalized_epochs(epochs, its samples, this) epochs.
  int64_t personalize_max_samples = 0;
  int batch_size = 32;
  double learning_rate = 0.05;
  double momentum = 0.9;
  double weight_decay = 5e-4;
  // FedProx (Li et al. 2020): adds mu/2 · ||w − w_global||² to the loss; 0 turns it off.
  double prox_mu = 0.0;
  // Task affinity lookahead (TAG, Fifty et al. 2021) every `affinity_every` batches; 0 is off.
  // Needs two or more heads. It does not change training: the weights after train_local are
  // bit-identical with and without it.
  int affinity_every = 0;
  EncoderGradient encoder_gradient = EncoderGradient::kMean;
  TaskBalance balance = TaskBalance::kNone;  // fl/task_balance.h
  // Non-empty: only these heads (indices into the model's tasks) train, each on its own loss,
  // on the encoder's features as they are; the encoder and the other heads are not changed (the
  // head calibration pass, fl/head_calibration.h). The lookahead, FedProx and balancing do not
  // apply. Not for ssl heads (c10::Error).
  std::vector<size_t> head_only;
  // Multiplies the encoder's gradient (the balanced sum at the features) before the step; the
  // heads' steps are their own. In (0, 1]: by_kind's ramp after a split (split_ramp_step(),
  // fl/task_balance.h). 1 trains bit for bit as without it.
  double encoder_step = 1.0;
};

struct LocalResult {
  int64_t samples = 0;   // samples trained on, counting every epoch
  int64_t steps = 0;     // optimiser steps
  double mean_loss = 0;  // mean batch loss over the steps
  bool stopped = false;  // should_stop said so before the end
  // Z[i][j] = affinity of head i's update on head j's loss (K×K, diagonal included), averaged
  // over the lookaheads of each epoch and summed over epochs; empty when the lookahead is off.
  std::vector<std::vector<double>> affinity;
  int64_t lookaheads = 0;         // lookahead batches measured
  double affinity_seconds = 0;    // wall time spent on them (the lookahead's cost)
  // alignment[t] = the mean over the steps of the cosine between head t's term of the encoder
  // gradient (at the shared features, as balanced) and the sum of its mates' terms, in [-1, 1]:
  // above 0 when the mates' steps also lower t's loss (to first order), below 0 when they
  // conflict with it. The merge guard reads it (scheduler/grouping/merge_guard.h). Empty for one
  // head, for head-only training and when no step ran.
  std::vector<double> alignment;
};

// The lookahead on one batch, at the model's current weights (θs, θ_j), with step size `lr`:
// for each head i, a virtual SGD step of the encoder alone along ∇θs L_i (scaled as balancing
// scales task i's term of the encoder gradient, without the 1/K of kMean) gives θs|i, and
//   Z[i][j] = (1 − L_j(θs|i, θ_j) / L_j(θs, θ_j)) / lr.
// `grads[i]` are ∇θs L_i in encoder_parameters() order and `base[j]` = L_j(θs, θ_j). The
// encoder's weights are restored bit for bit before it returns. Adds into `z` (K×K).
void affinity_lookahead(MultiTaskNet& model, const torch::Tensor& images, const std::vector<torch::Tensor>& targets,
                        const std::vector<std::vector<torch::Tensor>>& grads, const std::vector<double>& base,
                        double lr, std::vector<std::vector<double>>& z);

// The label probe of `by_kind` (docs/merge-and-split.md, "Label heads fitted first, and a ramp
// after the split"): in a merged group (kMean) that mixes label and dense tasks, train_local first
// fits the label heads alone on the encoder's features as they are, as linear probing does
// before fine-tuning (LP-FT, Kumar et al. 2022), and only then trains the whole model. A label
// head far from fit (random at the start; behind the encoder after each aggregation) makes
// cross-entropy gradients at the shared features that move the encoder far from what the dense
// heads read. The probe costs an encoder forward pass per batch, in the merged rounds only.
// The same groups limit their label tasks' encoder steps (limit_label_steps, fl/task_balance.h).
// True when `options` and `tasks` call for it.
bool probes_label_heads(const LocalTrainOptions& options, const std::vector<TaskDef>& tasks);
// The probe's options: `options` with head_only = the label heads, one epoch, and the learning
// rate × kLabelProbeLearningRateScale (at the full rate a linear head on the flattened 32×7×7
// features overshoots: on mnist the first merged round's train loss rose from 6.83 to 9.11).
constexpr double kLabelProbeLearningRateScale = 0.1;
LocalTrainOptions label_probe_options(const LocalTrainOptions& options, const std::vector<TaskDef>& tasks);
// The probe's batch order comes from this seed, drawn from the client's training seed.
uint64_t label_probe_seed(uint64_t seed);

// Trains `model` in place, starting from whatever weights it holds (the global model), with SGD
// on the samples `indices` of `data`. The order of batches comes from `seed` alone, so a client
// trains the same way every time. A model of ssl heads trains on two augmented views of each
// image (fl/augment.h), drawn from `seed` too; one that mixes ssl with other tasks throws c10::Error. `global` is needed only when prox_mu > 0. `should_stop` is
// asked before every batch (cancellation within one batch). When probes_label_heads(), the label
// probe runs first; its steps and samples are not counted in the result.
LocalResult train_local(MultiTaskNet& model, const TaskData& data, const std::vector<int64_t>& indices,
                        const LocalTrainOptions& options, uint64_t seed, const Weights* global = nullptr,
                        const std::function<bool()>& should_stop = {});

// Loss and metric per task over all of `data`, in the model's task order. An ssl head's loss is
// the SimSiam loss on two views of each image drawn from a fixed seed (the same views every
// time); its metric is the linear probe's test accuracy (fl/linear_probe.h), fitted on
// `probe_train` (the training set: images and the same task's targets, which are the labels),
// or 0 without it; `probe` sets its sample counts (the default: ProbeOptions's full probe). Throws c10::Error for a model that mixes ssl with other tasks.
std::vector<TaskScore> evaluate(MultiTaskNet& model, const TaskData& data, int batch_size = 500,
                                const TaskData* probe_train = nullptr, const ProbeOptions& probe = {});

}  // namespace mufl::fl
