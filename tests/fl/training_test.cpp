#include <catch2/catch.hpp>

#include <numeric>

#include "fl/model.h"
#include "fl/training.h"

using namespace mufl;
using namespace mufl::fl;

namespace {

std::vector<TaskDef> defs(std::vector<std::string> names) {
  std::vector<TaskDef> out;
  for (const auto& n : names) out.push_back(*find_task(n));
  return out;
}

// Odd labels light the top half of the image, even labels the bottom half: learnable in a few
// steps. (Not plain bright vs dark images: GroupNorm removes a per-image brightness.)
ImageSet bright_dark(int64_t n) {
  ImageSet s;
  s.labels = torch::arange(n, torch::kInt64).remainder(10);
  auto odd = s.labels.remainder(2).to(torch::kFloat32).view({n, 1, 1, 1});
  auto top = torch::cat({torch::ones({1, 1, 14, 28}), torch::zeros({1, 1, 14, 28})}, 2);
  s.images = (odd * top + (1 - odd) * (1 - top)).mul(0.8).add(0.1).contiguous();
  return s;
}

MultiTaskNet seeded_net(const std::vector<TaskDef>& tasks, uint64_t seed) {
  torch::manual_seed(seed);
  return MultiTaskNet(tasks);
}

}  // namespace

TEST_CASE("model: one shared encoder and a head per task, with named weights", "[model]") {
  auto net = seeded_net(defs({"class", "segment"}), 1);
  auto out = net->forward(torch::zeros({3, 1, 28, 28}));
  REQUIRE(out.size() == 2);
  CHECK(out[0].sizes() == torch::IntArrayRef({3, 10}));
  CHECK(out[1].sizes() == torch::IntArrayRef({3, 1, 28, 28}));

  auto names = weight_names(net);
  CHECK(names.front().rfind("encoder.", 0) == 0);
  CHECK(std::count_if(names.begin(), names.end(), [](auto& n) { return n.rfind("head_class.", 0) == 0; }) == 2);
  CHECK(std::count_if(names.begin(), names.end(), [](auto& n) { return n.rfind("head_segment.", 0) == 0; }) == 4);

  auto w = get_weights(net);
  REQUIRE(w.size() == names.size());
  auto other = seeded_net(defs({"class", "segment"}), 2);
  set_weights(other, w);
  auto w2 = get_weights(other);
  for (size_t i = 0; i < w.size(); ++i) CHECK(torch::equal(w[i], w2[i]));
}

TEST_CASE("training: local SGD lowers the loss and is deterministic for a seed", "[training]") {
  auto tasks = defs({"parity", "segment"});
  auto data = make_task_data(bright_dark(200), tasks);
  std::vector<int64_t> idx(200);
  std::iota(idx.begin(), idx.end(), 0);

  auto net = seeded_net(tasks, 7);
  const Weights start = get_weights(net);
  auto before = evaluate(net, data);
  LocalTrainOptions o;
  o.epochs = 3;
  o.batch_size = 20;
  auto r = train_local(net, data, idx, o, /*seed=*/42);
  CHECK(r.samples == 600);
  CHECK(r.steps == 30);
  auto after = evaluate(net, data);
  CHECK(after[0].loss < before[0].loss);
  CHECK(after[0].metric == Approx(1.0));  // bright vs dark is trivially separable
  CHECK(after[1].loss < before[1].loss);

  // The same start and seed give the same weights; another seed does not.
  auto again = seeded_net(tasks, 99);
  set_weights(again, start);
  train_local(again, data, idx, o, 42);
  auto w1 = get_weights(net), w2 = get_weights(again);
  for (size_t i = 0; i < w1.size(); ++i) CHECK(torch::equal(w1[i], w2[i]));
  auto third = seeded_net(tasks, 99);
  set_weights(third, start);
  train_local(third, data, idx, o, 43);
  CHECK_FALSE(torch::equal(get_weights(third)[0], w1[0]));
}

TEST_CASE("training: should_stop ends within one batch, FedProx keeps weights near the global", "[training]") {
  auto tasks = defs({"class"});
  auto data = make_task_data(bright_dark(100), tasks);
  std::vector<int64_t> idx(100);
  std::iota(idx.begin(), idx.end(), 0);
  auto net = seeded_net(tasks, 3);
  const Weights global = get_weights(net);

  int asked = 0;
  LocalTrainOptions o;
  o.batch_size = 10;
  auto r = train_local(net, data, idx, o, 1, nullptr, [&] { return ++asked > 2; });
  CHECK(r.stopped);
  CHECK(r.steps == 2);

  auto distance = [&](MultiTaskNet& m) {
    double d = 0;
    auto w = get_weights(m);
    for (size_t i = 0; i < w.size(); ++i) d += (w[i] - global[i]).pow(2).sum().item<double>();
    return d;
  };
  o.epochs = 5;
  o.learning_rate = 0.1;
  auto plain = seeded_net(tasks, 4);
  set_weights(plain, global);
  train_local(plain, data, idx, o, 5);
  auto prox = seeded_net(tasks, 4);
  set_weights(prox, global);
  o.prox_mu = 10.0;
  train_local(prox, data, idx, o, 5, &global);
  CHECK(distance(prox) < distance(plain));
}

TEST_CASE("training: the encoder gets the mean of the heads' gradients, or their sum", "[training]") {
  auto tasks = defs({"parity", "reconstruct"});
  auto data = make_task_data(bright_dark(20), tasks);
  std::vector<int64_t> idx(20);
  std::iota(idx.begin(), idx.end(), 0);
  auto net = seeded_net(tasks, 11);
  const Weights start = get_weights(net);
  const auto names = weight_names(net);
  // One plain SGD step on one batch: each weight moves by −lr × the gradient it got.
  LocalTrainOptions o;
  o.batch_size = 20;
  o.momentum = 0;
  o.weight_decay = 0;
  auto moved_by = [&](EncoderGradient mode) {
    set_weights(net, start);
    o.encoder_gradient = mode;
    train_local(net, data, idx, o, 1);
    Weights delta = get_weights(net);
    for (size_t i = 0; i < delta.size(); ++i) delta[i] = delta[i] - start[i];
    return delta;
  };
  const Weights mean = moved_by(EncoderGradient::kMean), sum = moved_by(EncoderGradient::kSum);
  int encoder = 0, head = 0;
  double moved = 0;
  for (size_t i = 0; i < names.size(); ++i) {
    if (names[i].rfind("encoder.", 0) == 0) {
      // Two heads: the sum moves every encoder weight twice as far as the mean (up to float32
      // rounding of w − lr·g, about 1e-7 of a weight near 1).
      INFO(names[i] << " max diff " << (sum[i] - 2 * mean[i]).abs().max().item<double>() << " max step "
                    << mean[i].abs().max().item<double>());
      CHECK(torch::allclose(sum[i], 2 * mean[i], 1e-3, 1e-6));
      moved += mean[i].abs().sum().item<double>();
      ++encoder;
    } else {
      // A head gets its own task's full gradient either way.
      CHECK(torch::allclose(sum[i], mean[i], 1e-4, 1e-8));
      ++head;
    }
  }
  CHECK(encoder > 0);
  CHECK(head > 0);
  CHECK(moved > 0);
}
