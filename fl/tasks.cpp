#include "fl/tasks.h"

#include <algorithm>
#include <cmath>
#include <limits>

#include "fl/simsiam.h"

namespace mufl::fl {
namespace {

constexpr int kSslEmbedding = 128;  // SimSiam's projection size here (fl/simsiam.h)

// Squared 1-D distance transform of f (Felzenszwalb & Huttenlocher, "Distance Transforms of
// Sampled Functions", 2012): d[q] = min_p (q - p)² + f[p], in linear time.
void squared_dt_1d(const float* f, float* d, int n, std::vector<int>& v, std::vector<float>& z) {
  v.assign(n, 0);
  z.assign(n + 1, 0);
  int k = 0;
  z[0] = -std::numeric_limits<float>::infinity();
  z[1] = std::numeric_limits<float>::infinity();
  // Lower envelope of the parabolas rooted at (p, f[p]); z holds where each one takes over.
  auto intersect = [&](int q, int p) { return ((f[q] + q * q) - (f[p] + p * p)) / (2.0f * (q - p)); };
  for (int q = 1; q < n; ++q) {
    float s = intersect(q, v[k]);
    while (s <= z[k]) {  // terminates: z[0] is -inf and f is finite
      --k;
      s = intersect(q, v[k]);
    }
    ++k;
    v[k] = q;
    z[k] = s;
    z[k + 1] = std::numeric_limits<float>::infinity();
  }
  k = 0;
  for (int q = 0; q < n; ++q) {
    while (z[k + 1] < q) ++k;
    const float dq = static_cast<float>(q - v[k]);
    d[q] = dq * dq + f[v[k]];
  }
}

torch::Tensor distance_targets(const torch::Tensor& images) {
  const auto mask = (images > 0.5).to(torch::kFloat32).contiguous();
  const int64_t n = mask.size(0), h = mask.size(2), w = mask.size(3);
  auto out = torch::empty_like(mask);
  const float* m = mask.data_ptr<float>();
  float* o = out.data_ptr<float>();
  const float kFar = 1e6f;  // "no foreground here": larger than any squared distance on 512×512
  const float scale = 1.0f / (static_cast<float>(std::max(h, w)) * std::sqrt(2.0f));
  std::vector<float> f(std::max(h, w)), d(std::max(h, w)), grid(h * w);
  std::vector<int> v;
  std::vector<float> z;
  for (int64_t i = 0; i < n; ++i) {
    const float* mi = m + i * h * w;
    bool any = false;
    for (int64_t p = 0; p < h * w; ++p) {
      grid[p] = mi[p] > 0 ? 0.0f : kFar;
      any |= mi[p] > 0;
    }
    float* oi = o + i * h * w;
    if (!any) {
      std::fill(oi, oi + h * w, 1.0f);
      continue;
    }
    for (int64_t x = 0; x < w; ++x) {  // columns
      for (int64_t y = 0; y < h; ++y) f[y] = grid[y * w + x];
      squared_dt_1d(f.data(), d.data(), static_cast<int>(h), v, z);
      for (int64_t y = 0; y < h; ++y) grid[y * w + x] = d[y];
    }
    for (int64_t y = 0; y < h; ++y) {  // rows
      squared_dt_1d(grid.data() + y * w, d.data(), static_cast<int>(w), v, z);
      for (int64_t x = 0; x < w; ++x) oi[y * w + x] = std::min(1.0f, std::sqrt(d[x]) * scale);
    }
  }
  return out;
}

torch::Tensor sobel_targets(const torch::Tensor& images) {
  const auto gx_k = torch::tensor({-1.f, 0.f, 1.f, -2.f, 0.f, 2.f, -1.f, 0.f, 1.f}).view({1, 1, 3, 3});
  const auto gy_k = gx_k.transpose(2, 3).contiguous();
  const auto x = images.to(torch::kFloat32);
  const auto gx = torch::conv2d(x, gx_k, {}, 1, 1);
  const auto gy = torch::conv2d(x, gy_k, {}, 1, 1);
  return (torch::sqrt(gx * gx + gy * gy) / (4.0 * std::sqrt(2.0))).clamp(0.0, 1.0);
}

}  // namespace

Result<TaskDef> find_task(const std::string& name, int64_t labels) {
  const int out = static_cast<int>(labels);
  if (labels < 1) return Status::invalid_argument("task '" + name + "' needs at least one label");
  if ((name == "parity" || name == "magnitude") && labels < 2)
    return Status::invalid_argument("task '" + name + "' needs at least two labels, the data has " +
                                    std::to_string(labels));
  if (name == "class") return TaskDef{name, TaskKind::kLabel, out, "accuracy", true, labels};
  if (name == "parity" || name == "magnitude") return TaskDef{name, TaskKind::kLabel, 2, "accuracy", true, labels};
  if (name == "segment") return TaskDef{name, TaskKind::kDense, 1, "iou", true, labels};
  if (name == "reconstruct" || name == "edges" || name == "distance")
    return TaskDef{name, TaskKind::kDense, 1, "mse", false, labels};
  if (name == "ssl") return TaskDef{name, TaskKind::kSiamese, kSslEmbedding, "linear_probe_accuracy", true, labels};
  return Status::invalid_argument("unknown task '" + name + "'");
}

torch::Tensor make_targets(const TaskDef& task, const torch::Tensor& all_channels, const torch::Tensor& labels) {
  torch::NoGradGuard no_grad;
  if (task.name == "class" || task.name == "ssl") return labels.to(torch::kInt64).clone();
  if (task.name == "parity") return labels.to(torch::kInt64).remainder(2);
  if (task.name == "magnitude") return (labels >= task.labels / 2).to(torch::kInt64);
  // Dense tasks map the grey level of colour images; a one-channel image is its own.
  const torch::Tensor images = all_channels.size(1) == 1 ? all_channels : all_channels.mean(1, /*keepdim=*/true);
  if (task.name == "reconstruct") return images.to(torch::kFloat32).clone();
  if (task.name == "segment") return (images > 0.5).to(torch::kFloat32);
  if (task.name == "edges") return sobel_targets(images);
  if (task.name == "distance") return distance_targets(images);
  throw std::invalid_argument("make_targets: unknown task " + task.name);
}

torch::Tensor task_loss(const TaskDef& task, const torch::Tensor& output, const torch::Tensor& target) {
  if (task.kind == TaskKind::kLabel) return torch::nn::functional::cross_entropy(output, target);
  if (task.kind == TaskKind::kSiamese) return simsiam_loss(output);
  if (task.name == "segment") return torch::binary_cross_entropy_with_logits(output, target);
  return torch::mse_loss(torch::sigmoid(output), target);
}

void accumulate(const TaskDef& task, const torch::Tensor& output, const torch::Tensor& target, EvalSums& sums) {
  torch::NoGradGuard no_grad;
  const int64_t n = target.size(0);  // images (an ssl head's output has two rows per image)
  sums.loss_sum += task_loss(task, output, target).item<double>() * static_cast<double>(n);
  sums.samples += n;
  if (task.kind == TaskKind::kLabel) {
    sums.numerator += output.argmax(1).eq(target).sum().item<double>();
    sums.denominator += static_cast<double>(n);
  } else if (task.kind == TaskKind::kSiamese) {
    // The loss alone: the metric is the linear probe's (fl/linear_probe.h).
  } else if (task.name == "segment") {
    const auto pred = output > 0;
    const auto truth = target > 0.5;
    sums.numerator += (pred & truth).sum().item<double>();
    sums.denominator += (pred | truth).sum().item<double>();
  } else {
    sums.numerator += (torch::sigmoid(output) - target).pow(2).sum().item<double>();
    sums.denominator += static_cast<double>(target.numel());
  }
}

TaskScore finish(const EvalSums& sums) {
  TaskScore s;
  if (sums.samples > 0) s.loss = sums.loss_sum / static_cast<double>(sums.samples);
  // An empty union (no foreground predicted or true anywhere) is a perfect segmentation.
  s.metric = sums.denominator > 0 ? sums.numerator / sums.denominator : 1.0;
  return s;
}

}  // namespace mufl::fl
