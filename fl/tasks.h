#pragma once
// The training side of each catalog task (core/catalog.h): how its target is derived from an
// image and its label, its loss, and its test metric. docs/tasks.md documents the same table.
// Internal to fl/ (torch types).
#include <torch/torch.h>

#include <string>
#include <vector>

#include "core/result.h"

namespace mufl::fl {

enum class TaskKind {
  kLabel,  // one value per image: logits [N, outputs] against int64 targets [N]
  kDense,  // one value per pixel: maps [N, 1, H, W] against float targets of the same shape
  // Self-supervised (`ssl`, fl/simsiam.h): the head sees two augmented views of each image
  // (fl/augment.h paired_views) and outputs [2N, 2·outputs]; its target is the label, which only
  // the linear probe uses (fl/linear_probe.h).
  kSiamese,
};

struct TaskDef {
  std::string name;     // catalog name: "class", "segment", …
  TaskKind kind = TaskKind::kLabel;
  int outputs = 0;      // classes of a label task; channels (1) of a dense task; ssl's embedding size
  std::string metric;   // "accuracy", "iou", "mse" or "linear_probe_accuracy"
  bool higher_is_better = true;
  int64_t labels = 10;  // labels of the data (0..labels-1): class's outputs, magnitude's threshold
};

// The definition of a catalog task on data with `labels` labels (class has that many
// outputs); kInvalidArgument for an unknown name, or a label task that needs more labels than
// there are (parity and magnitude need 2).
Result<TaskDef> find_task(const std::string& name, int64_t labels = 10);

// Targets for every sample. images: float [N,C,H,W] in [0,1]; labels: int64 [N].
//   class, ssl: label · parity: label % 2 · magnitude: label >= labels/2     (int64 [N])
// Dense targets are one map per image [N,1,H,W], of the image itself when C is 1 and of the
// mean of its channels (its grey level) otherwise:
//   reconstruct: the image · segment: image > 0.5 (as 0/1)
//   edges: Sobel gradient magnitude / (4·√2), the largest it can be for [0,1] images
//   distance: Euclidean distance to the nearest foreground pixel / (max(H,W)·√2); 1 with no
//   foreground
torch::Tensor make_targets(const TaskDef& task, const torch::Tensor& images, const torch::Tensor& labels);

// The mean training loss of a batch: cross-entropy (label tasks), binary cross-entropy on
// logits (segment), mean squared error of sigmoid(output) (other dense tasks), the SimSiam loss
// of paired views (ssl: `target` is not used).
torch::Tensor task_loss(const TaskDef& task, const torch::Tensor& output, const torch::Tensor& target);

// Running sums over a test set, so that metrics are exact over the whole set, not batch means.
struct EvalSums {
  double loss_sum = 0;      // loss × samples
  double numerator = 0;     // correct predictions · intersection · squared error (ssl: none)
  double denominator = 0;   // samples · union · elements (ssl: none)
  int64_t samples = 0;
};
void accumulate(const TaskDef& task, const torch::Tensor& output, const torch::Tensor& target, EvalSums& sums);

struct TaskScore {
  double loss = 0;
  double metric = 0;  // accuracy in [0,1], IoU in [0,1], or MSE; ssl: see evaluate() (fl/training.h)
};
TaskScore finish(const EvalSums& sums);

}  // namespace mufl::fl
