#pragma once
// The self-supervised task `ssl`: SimSiam (Chen & He, "Exploring Simple Siamese Representation
// Learning", CVPR 2021). Two augmented views of an image (fl/augment.h) go through the shared
// encoder and this head; the head's predictor learns to predict one view's projection from the
// other's, with a stop-gradient on the projection that is predicted. SimSiam needs no target
// network and no negative pairs, so an ssl model is its parameters alone: FedAvg averages all
// of it and a checkpoint holds nothing more (BYOL would add an EMA target network per client).
// No running statistics anywhere (fl/model.h): the head standardises over the batch without
// keeping statistics (BatchStandardize), so the model is its parameters alone.
// Internal to fl/ (torch types).
#include <torch/torch.h>

#include <cstdint>

namespace mufl::fl {

// Each feature standardised over the batch (mean 0, variance 1 over the rows), with no
// parameters and no running statistics: what SimSiam's BatchNorm layers do in training, the
// same in evaluation. Without it (LayerNorm in its place) SimSiam collapsed here within one
// epoch on mnist: the normalised projections' std over samples fell to 0.002 (0.088 is healthy).
class BatchStandardizeImpl : public torch::nn::Module {
 public:
  torch::Tensor forward(const torch::Tensor& x);
};
TORCH_MODULE(BatchStandardize);

// The ssl head on the encoder's pooled features [N, in_features] (fl/model.cpp):
//   projector: linear in→dim, BatchStandardize, ReLU, linear dim→dim, BatchStandardize  → z
//   predictor: linear dim→hidden, BatchStandardize, ReLU, linear hidden→dim            → p
// forward() returns [N, 2·dim]: z in columns [0, dim), p in columns [dim, 2·dim).
class SimSiamHeadImpl : public torch::nn::Module {
 public:
  SimSiamHeadImpl(int64_t in_features, int64_t dim = 128, int64_t hidden = 32);
  torch::Tensor forward(const torch::Tensor& features);

 private:
  torch::nn::Sequential projector_{nullptr}, predictor_{nullptr};
};
TORCH_MODULE(SimSiamHead);

// The symmetric SimSiam loss, −½·cos(p1, sg(z2)) − ½·cos(p2, sg(z1)), each cosine averaged over
// the batch ([N, dim] each). sg is stop-gradient: no gradient reaches z1 or z2 through their
// own term. In [−1, 1]; −1 when each prediction points along the other view's projection.
torch::Tensor simsiam_loss(const torch::Tensor& p1, const torch::Tensor& z1, const torch::Tensor& p2,
                           const torch::Tensor& z2);

// The loss of a SimSiamHead's output on paired views ([2N, 2·dim], first views in rows [0, N),
// fl/augment.h paired_views). REQUIRES: an even number of rows and of columns.
torch::Tensor simsiam_loss(const torch::Tensor& head_output);

}  // namespace mufl::fl
