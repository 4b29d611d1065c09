#pragma once
// Augmented views of images for the self-supervised task `ssl` (docs/tasks.md): SimSiam learns
// by making two random views of the same image agree. Every random choice comes from a seed, so
// a client that trains with the same seed sees the same views (a resumed job trains exactly as
// an unbroken one).
// Internal to fl/ (torch types). Pure functions: safe from any thread.
#include <torch/torch.h>

#include <cstdint>

namespace mufl::fl {

// The transforms, in the order they apply. Defaults suit 1×28×28 grey images in [0, 1].
struct AugmentOptions {
  int64_t pad = 4;            // random crop: zero-pad each side by `pad`, crop back to H×W (0: none)
  bool flip = true;           // horizontal flip with probability 1/2
  double brightness = 0.4;    // multiply by a factor uniform in [1 − b, 1 + b] (0: none)
  double contrast = 0.4;      // scale the distance to the image's mean by [1 − c, 1 + c] (0: none)
  double noise_std = 0.03;    // add Gaussian noise of this standard deviation (0: none)
};

// One random view of each image of `images` (float [N, C, H, W] in [0, 1]), clamped to [0, 1],
// on the images' device. Each image gets its own crop offset, flip, brightness, contrast and
// noise, all drawn from `seed`: the same images and seed give the same tensor, bit for bit.
// No gradient flows through it.
torch::Tensor augment(const torch::Tensor& images, uint64_t seed, const AugmentOptions& options = {});

// Two independent views of each image, stacked: rows [0, N) are the first view of images
// 0..N−1 and rows [N, 2N) the second ([2N, C, H, W]). This is the layout the ssl head's loss
// expects (fl/simsiam.h).
torch::Tensor paired_views(const torch::Tensor& images, uint64_t seed, const AugmentOptions& options = {});

}  // namespace mufl::fl
