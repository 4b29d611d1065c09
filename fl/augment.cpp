#include "fl/augment.h"

#include <ATen/CPUGeneratorImpl.h>

#include <random>
#include <vector>

#include "fl/seeds.h"

namespace mufl::fl {
namespace {

// A double uniform in [0, 1) from the 53 high bits: the same on every platform (unlike
// std::uniform_real_distribution, whose algorithm the standard leaves open).
double unit(std::mt19937_64& rng) { return static_cast<double>(rng() >> 11) * 0x1.0p-53; }

// Each image's random parameters, drawn image by image from one stream.
struct Draws {
  std::vector<int64_t> dy, dx;
  std::vector<uint8_t> flip;
  std::vector<float> brightness, contrast;
};

Draws draw(int64_t n, uint64_t seed, const AugmentOptions& o) {
  std::mt19937_64 rng(seed);
  Draws d;
  const auto span = static_cast<uint64_t>(2 * o.pad + 1);
  for (int64_t i = 0; i < n; ++i) {
    d.dy.push_back(static_cast<int64_t>(rng() % span));
    d.dx.push_back(static_cast<int64_t>(rng() % span));
    d.flip.push_back(o.flip && unit(rng) < 0.5 ? 1 : 0);
    d.brightness.push_back(static_cast<float>(1.0 + o.brightness * (2.0 * unit(rng) - 1.0)));
    d.contrast.push_back(static_cast<float>(1.0 + o.contrast * (2.0 * unit(rng) - 1.0)));
  }
  return d;
}

// Zero-pads by `pad` and crops H×W back at each image's (dy, dx): two gathers, no loop.
torch::Tensor random_crop(const torch::Tensor& x, const Draws& d, int64_t pad) {
  if (pad <= 0) return x;
  const int64_t n = x.size(0), c = x.size(1), h = x.size(2), w = x.size(3);
  const auto longs = torch::TensorOptions().dtype(torch::kInt64);
  const auto padded = torch::constant_pad_nd(x, {pad, pad, pad, pad}, 0.0);
  const auto dy = torch::tensor(d.dy, longs).view({n, 1, 1, 1}).to(x.device());
  const auto dx = torch::tensor(d.dx, longs).view({n, 1, 1, 1}).to(x.device());
  const auto rows = (dy + torch::arange(h, longs.device(x.device())).view({1, 1, h, 1})).expand({n, c, h, w + 2 * pad});
  const auto cols = (dx + torch::arange(w, longs.device(x.device())).view({1, 1, 1, w})).expand({n, c, h, w});
  return padded.gather(2, rows).gather(3, cols);
}

}  // namespace

torch::Tensor augment(const torch::Tensor& images, uint64_t seed, const AugmentOptions& o) {
  torch::NoGradGuard no_grad;
  const int64_t n = images.size(0);
  const Draws d = draw(n, seed, o);
  const auto per_image = [&](const auto& values, torch::ScalarType type) {
    return torch::tensor(values, torch::TensorOptions().dtype(type)).view({n, 1, 1, 1}).to(images.device());
  };
  auto x = random_crop(images.to(torch::kFloat32), d, o.pad);
  if (o.flip) x = torch::where(per_image(d.flip, torch::kUInt8).to(torch::kBool), x.flip({3}), x);
  if (o.brightness > 0) x = x * per_image(d.brightness, torch::kFloat32);
  if (o.contrast > 0) {
    const auto mean = x.mean({1, 2, 3}, /*keepdim=*/true);
    x = (x - mean) * per_image(d.contrast, torch::kFloat32) + mean;
  }
  if (o.noise_std > 0) {
    // LibTorch's CPU generator, seeded apart from the parameters: the same on every run.
    auto gen = at::make_generator<at::CPUGeneratorImpl>(mix(seed ^ 0x6e6f697365ULL));  // "noise"
    x = x + o.noise_std * torch::randn(x.sizes(), gen, torch::kFloat32).to(x.device());
  }
  return x.clamp(0.0, 1.0);
}

torch::Tensor paired_views(const torch::Tensor& images, uint64_t seed, const AugmentOptions& options) {
  return torch::cat({augment(images, mix(seed ^ 1), options), augment(images, mix(seed ^ 2), options)}, 0);
}

}  // namespace mufl::fl
