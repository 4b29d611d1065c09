#include <catch2/catch.hpp>

#include <cmath>
#include <numeric>

#include "fl/model.h"
#include "fl/task_balance.h"
#include "fl/training.h"
// Last: after the torch headers (Catch's CHECK, not glog's).
#include "tests/support/catch_over_torch.h"

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

TEST_CASE("task balance: without it the weights are 1 (sum) or 1/K (mean), whatever the norms", "[training][balance]") {
  torch::manual_seed(3);
  const std::vector<torch::Tensor> g = {torch::randn({4, 32, 7, 7}), 100 * torch::randn({4, 32, 7, 7})};
  CHECK(task_weights(g, EncoderGradient::kSum, TaskBalance::kNone) == std::vector<double>{1.0, 1.0});
  CHECK(task_weights(g, EncoderGradient::kMean, TaskBalance::kNone) == std::vector<double>{0.5, 0.5});
  // One task: nothing to balance, and no 1/K either.
  CHECK(task_weights({g[1]}, EncoderGradient::kMean, TaskBalance::kCap) == std::vector<double>{1.0});
}

TEST_CASE("task balance: a gradient 100x longer is cut to the geometric mean, a short one is left", "[training][balance]") {
  torch::manual_seed(4);
  const auto small = torch::randn({4, 32, 7, 7});
  const auto large = torch::randn({4, 32, 7, 7}) * (100 * small.norm().item<double>()) / torch::randn({4, 32, 7, 7}).norm().item<double>();
  const double ns = small.norm().item<double>(), nl = large.norm().item<double>();
  const double cap = std::sqrt(ns * nl);  // the geometric mean of the two norms
  // Capped terms are summed in every group, merged (kMean) or born of a split (kSum): a cap
  // already bounds the encoder's step (at most K times the cap), and the mean's 1/K would make
  // the step jump K-fold at the split (measured: a label group diverged there, train loss 3.06).
  for (auto combine : {EncoderGradient::kSum, EncoderGradient::kMean}) {
    const auto w = task_weights({small, large}, combine, TaskBalance::kCap);
    REQUIRE(w.size() == 2);
    CHECK(w[0] == Approx(1.0));                       // the short one keeps its length
    CHECK(w[1] * nl == Approx(cap).epsilon(1e-6));  // the long one is cut to the cap
    // The ratio of the two terms' lengths falls from about 100 to its square root.
    CHECK((w[1] * nl) / (w[0] * ns) == Approx(std::sqrt(nl / ns)).epsilon(1e-6));
  }
  // Equal norms: nothing changes.
  const auto w = task_weights({small, -small}, EncoderGradient::kSum, TaskBalance::kCap);
  CHECK(w[0] == Approx(1.0));
  CHECK(w[1] == Approx(1.0));
}

TEST_CASE("task balance cap_merged: capped while merged, the plain sum in a group born of a split", "[training][balance]") {
  torch::manual_seed(5);
  const auto small = torch::randn({4, 32, 7, 7});
  const auto large = 100 * torch::randn({4, 32, 7, 7});
  const std::vector<torch::Tensor> g = {small, large};
  // Merged (kMean): exactly kCap's weights, the long term cut to the geometric mean, no 1/K.
  const auto merged = task_weights(g, EncoderGradient::kMean, TaskBalance::kCapMerged);
  CHECK(merged == task_weights(g, EncoderGradient::kMean, TaskBalance::kCap));
  CHECK(merged[0] == 1.0);
  CHECK(merged[1] < 0.2);
  // Born of a split (kSum): every task's full gradient, however long.
  CHECK(task_weights(g, EncoderGradient::kSum, TaskBalance::kCapMerged) == std::vector<double>{1.0, 1.0});
  CHECK(parse_task_balance("cap_merged") == TaskBalance::kCapMerged);
  CHECK(std::string(to_string(TaskBalance::kCapMerged)) == "cap_merged");
  CHECK_FALSE(parse_task_balance("cap-merged").has_value());
}

TEST_CASE("task balance: the lookahead steps each task as training weighs it, without the mean's 1/K", "[training][balance]") {
  torch::manual_seed(6);
  const std::vector<torch::Tensor> g = {torch::randn({4, 32, 7, 7}), 100 * torch::randn({4, 32, 7, 7})};
  CHECK(lookahead_weights(g, EncoderGradient::kMean, TaskBalance::kNone) == std::vector<double>{1.0, 1.0});
  for (auto balance : {TaskBalance::kCap, TaskBalance::kCapMerged})
    for (auto combine : {EncoderGradient::kSum, EncoderGradient::kMean})
      CHECK(lookahead_weights(g, combine, balance) == task_weights(g, combine, balance));
  // The consolidating group is merged: under cap_merged its lookahead sees the capped steps.
  CHECK(lookahead_weights(g, EncoderGradient::kMean, TaskBalance::kCapMerged)[1] < 0.2);
}

TEST_CASE("task balance: a zero or NaN gradient keeps the plain weight and is left out of the cap", "[training][balance]") {
  const auto g = torch::ones({2, 3});
  const auto w = task_weights({g, torch::zeros({2, 3}), torch::full({2, 3}, NAN)}, EncoderGradient::kSum,
                              TaskBalance::kCap);
  CHECK(w == std::vector<double>{1.0, 1.0, 1.0});
}

TEST_CASE("task balance: it changes only the encoder's step, and nothing for one head", "[training][balance]") {
  auto data2 = make_task_data(bright_dark(20), defs({"parity", "reconstruct"}));
  std::vector<int64_t> idx(20);
  std::iota(idx.begin(), idx.end(), 0);
  LocalTrainOptions o;
  o.batch_size = 20;
  o.momentum = 0;
  o.weight_decay = 0;
  auto trained = [&](const std::vector<TaskDef>& tasks, const TaskData& data, TaskBalance b) {
    auto net = seeded_net(tasks, 12);
    o.balance = b;
    train_local(net, data, idx, o, 1);
    return std::make_pair(get_weights(net), weight_names(net));
  };
  const auto [plain, names] = trained(defs({"parity", "reconstruct"}), data2, TaskBalance::kNone);
  const auto capped = trained(defs({"parity", "reconstruct"}), data2, TaskBalance::kCap).first;
  bool encoder_differs = false;
  for (size_t i = 0; i < names.size(); ++i) {
    if (names[i].rfind("encoder.", 0) == 0) encoder_differs = encoder_differs || !torch::equal(plain[i], capped[i]);
    else CHECK(torch::equal(plain[i], capped[i]));  // a head's step is its own gradient either way
  }
  CHECK(encoder_differs);
  // A single head: bit for bit the same.
  auto data1 = make_task_data(bright_dark(20), defs({"reconstruct"}));
  const auto one_plain = trained(defs({"reconstruct"}), data1, TaskBalance::kNone).first;
  const auto one_capped = trained(defs({"reconstruct"}), data1, TaskBalance::kCap).first;
  for (size_t i = 0; i < one_plain.size(); ++i) CHECK(torch::equal(one_plain[i], one_capped[i]));
}

TEST_CASE("task balance cap_equal: capped while merged, every step as long as the shortest in a group born of a split", "[training][balance]") {
  torch::manual_seed(7);
  const auto small = torch::randn({4, 32, 7, 7});
  const auto large = 100 * torch::randn({4, 32, 7, 7});  // a loss whose gradients are 100 times longer
  const std::vector<torch::Tensor> g = {small, large};
  const auto merged = task_weights(g, EncoderGradient::kMean, TaskBalance::kCapEqual);
  CHECK(merged == task_weights(g, EncoderGradient::kMean, TaskBalance::kCap));
  const auto split = task_weights(g, EncoderGradient::kSum, TaskBalance::kCapEqual);
  CHECK(split[0] == 1.0);
  // Each task's term moves the encoder equally far: the two norms agree within 1 %.
  const double a = (small * split[0]).norm().item<double>(), b = (large * split[1]).norm().item<double>();
  CHECK(std::abs(a - b) / a < 0.01);
  CHECK(lookahead_weights(g, EncoderGradient::kSum, TaskBalance::kCapEqual) == split);
  CHECK(parse_task_balance("cap_equal") == TaskBalance::kCapEqual);
  CHECK(std::string(to_string(TaskBalance::kCapEqual)) == "cap_equal");
}

TEST_CASE("task balance by_kind: cap_merged for dense tasks only, cap_equal for label tasks only, cap for any other group", "[training][balance]") {
  const auto dense = defs({"reconstruct", "segment", "edges"});
  const auto mixed = defs({"parity", "reconstruct"});
  const auto labels = defs({"class", "parity"});
  CHECK(balance_for(TaskBalance::kByKind, dense) == TaskBalance::kCapMerged);
  CHECK(balance_for(TaskBalance::kByKind, mixed) == TaskBalance::kCap);
  CHECK(balance_for(TaskBalance::kByKind, labels) == TaskBalance::kCapEqual);
  CHECK(balance_for(TaskBalance::kByKind, defs({"ssl", "ssl"})) == TaskBalance::kCap);
  for (auto b : {TaskBalance::kNone, TaskBalance::kCap, TaskBalance::kCapMerged, TaskBalance::kCapEqual}) {
    CHECK(balance_for(b, dense) == b);
    CHECK(balance_for(b, mixed) == b);
  }
  CHECK(parse_task_balance("by_kind") == TaskBalance::kByKind);
  CHECK(std::string(to_string(TaskBalance::kByKind)) == "by_kind");
  // Unresolved, it is refused rather than read as some other rule.
  const std::vector<torch::Tensor> g = {torch::ones({2, 3}), 100 * torch::ones({2, 3})};
  CHECK_THROWS(task_weights(g, EncoderGradient::kSum, TaskBalance::kByKind));
}

TEST_CASE("task balance by_kind: a merged group of label and dense tasks fits its label heads first, then trains capped with its label steps limited", "[training][balance]") {
  const auto mixed = defs({"class", "parity", "reconstruct"});
  LocalTrainOptions o;
  o.balance = TaskBalance::kByKind;
  o.encoder_gradient = EncoderGradient::kMean;  // merged
  CHECK(probes_label_heads(o, mixed));
  CHECK_FALSE(probes_label_heads(o, defs({"class", "parity"})));        // label tasks only
  CHECK_FALSE(probes_label_heads(o, defs({"reconstruct", "segment"})));  // dense tasks only
  o.encoder_gradient = EncoderGradient::kSum;  // born of a split
  CHECK_FALSE(probes_label_heads(o, mixed));
  o.encoder_gradient = EncoderGradient::kMean;
  o.balance = TaskBalance::kCap;  // only by_kind probes
  CHECK_FALSE(probes_label_heads(o, mixed));

  o.balance = TaskBalance::kByKind;
  o.batch_size = 10;
  o.epochs = 2;
  const auto probe = label_probe_options(o, mixed);
  CHECK(probe.head_only == std::vector<size_t>{0, 1});
  CHECK(probe.epochs == 1);
  CHECK(probe.learning_rate == Approx(o.learning_rate * kLabelProbeLearningRateScale));

  // Bit for bit: the probe (label heads only, the encoder and the dense head untouched), then
  // the capped training of the whole model.
  std::vector<int64_t> idx(20);
  std::iota(idx.begin(), idx.end(), 0);
  const auto data = make_task_data(bright_dark(20), mixed);
  auto net = seeded_net(mixed, 14);
  train_local(net, data, idx, o, 3);
  auto expected = seeded_net(mixed, 14);
  const auto before = get_weights(expected);
  train_local(expected, data, idx, probe, label_probe_seed(3));
  const auto names = weight_names(expected);
  const auto probed = get_weights(expected);
  bool label_heads_moved = false;
  for (size_t i = 0; i < names.size(); ++i) {
    const bool label_head = names[i].rfind("head_class.", 0) == 0 || names[i].rfind("head_parity.", 0) == 0;
    if (label_head) label_heads_moved = label_heads_moved || !torch::equal(before[i], probed[i]);
    else CHECK(torch::equal(before[i], probed[i]));
  }
  CHECK(label_heads_moved);
  // Then the whole model, as `cap` would train it but with the label tasks' steps limited: the
  // same heads' rule, a shorter encoder step (the label gradients here are far over twice the
  // dense one's). One plain SGD step makes the encoder's displacement comparable.
  LocalTrainOptions capped = o;
  capped.balance = TaskBalance::kCap;
  capped.batch_size = 20;
  capped.epochs = 1;
  capped.momentum = 0;
  capped.weight_decay = 0;
  LocalTrainOptions limited = capped;
  limited.balance = TaskBalance::kByKind;
  auto plain_cap = seeded_net(mixed, 14), by_kind = seeded_net(mixed, 14);
  train_local(plain_cap, data, idx, label_probe_options(capped, mixed), label_probe_seed(5));
  train_local(plain_cap, data, idx, capped, 5);
  train_local(by_kind, data, idx, limited, 5);  // the probe, then the limited step
  const auto capped_w = get_weights(plain_cap), limited_w = get_weights(by_kind);
  double capped_move = 0, limited_move = 0;
  for (size_t i = 0; i < names.size(); ++i) {
    if (names[i].rfind("encoder.", 0) != 0) continue;
    capped_move += (capped_w[i] - before[i]).pow(2).sum().item<double>();
    limited_move += (limited_w[i] - before[i]).pow(2).sum().item<double>();
  }
  CHECK(limited_move > 0);
  CHECK(limited_move < 0.5 * capped_move);
  // Trained again, the same: nothing depends on anything but the options and the seed.
  auto again = seeded_net(mixed, 14);
  train_local(again, data, idx, o, 3);
  const auto got = get_weights(net), want = get_weights(again);
  for (size_t i = 0; i < got.size(); ++i) CHECK(torch::equal(got[i], want[i]));
  // Stopped during the probe: nothing trained past it, and the result says so.
  auto stopped_net = seeded_net(mixed, 14);
  const auto r = train_local(stopped_net, data, idx, o, 3, nullptr, [] { return true; });
  CHECK(r.stopped);
  CHECK(r.steps == 0);
}

TEST_CASE("task balance: a label task's term is limited to twice the longest dense one's", "[training][balance]") {
  torch::manual_seed(9);
  const auto tasks = defs({"class", "reconstruct", "segment", "parity"});
  const std::vector<torch::Tensor> g = {100 * torch::randn({4, 32, 7, 7}), torch::randn({4, 32, 7, 7}),
                                        3 * torch::randn({4, 32, 7, 7}), 5 * torch::randn({4, 32, 7, 7})};
  std::vector<double> w = {0.5, 1.0, 1.0, 1.0};
  limit_label_steps(g, tasks, w);
  const double longest_dense = (g[2] * w[2]).norm().item<double>();
  CHECK((g[0] * w[0]).norm().item<double>() == Approx(kLabelStepLimit * longest_dense).epsilon(1e-6));
  CHECK(w[1] == 1.0);  // dense terms are never touched
  CHECK(w[2] == 1.0);
  CHECK(w[3] == 1.0);  // a label term already under the limit stays
  // Without a dense task (or with no dense gradient) nothing changes.
  std::vector<double> labels_only = {1.0, 1.0};
  limit_label_steps({g[0], g[3]}, defs({"class", "parity"}), labels_only);
  CHECK(labels_only == std::vector<double>{1.0, 1.0});
  std::vector<double> zero_dense = {1.0, 1.0};
  limit_label_steps({g[0], torch::zeros({4, 32, 7, 7})}, defs({"class", "reconstruct"}), zero_dense);
  CHECK(zero_dense == std::vector<double>{1.0, 1.0});
}

TEST_CASE("task balance by_kind: a group of label tasks born of a split ramps its encoder step over two rounds", "[training][balance]") {
  const auto labels = defs({"class", "parity"});
  const auto by_kind = TaskBalance::kByKind;
  const auto split = EncoderGradient::kSum;
  CHECK(split_ramp_step(by_kind, split, labels, 0) == Approx(kSplitRampStart));
  CHECK(split_ramp_step(by_kind, split, labels, 1) == Approx(std::sqrt(kSplitRampStart)));
  CHECK(split_ramp_step(by_kind, split, labels, 2) == 1.0);
  CHECK(split_ramp_step(by_kind, split, defs({"class"}), 0) == Approx(kSplitRampStart));  // a label singleton too
  CHECK(split_ramp_step(by_kind, split, defs({"reconstruct", "segment"}), 0) == 1.0);    // dense: never capped while merged
  CHECK(split_ramp_step(by_kind, split, defs({"class", "segment"}), 0) == 1.0);          // mixed: capped as before
  CHECK(split_ramp_step(by_kind, EncoderGradient::kMean, labels, 0) == 1.0);             // merged
  CHECK(split_ramp_step(TaskBalance::kCapEqual, split, labels, 0) == 1.0);               // only by_kind ramps

  // encoder_step scales the encoder's step and nothing else: one plain SGD step with half the
  // step moves every encoder weight exactly half as far, and the heads as with a full step.
  std::vector<int64_t> idx(20);
  std::iota(idx.begin(), idx.end(), 0);
  const auto data = make_task_data(bright_dark(20), labels);
  LocalTrainOptions o;
  o.batch_size = 20;
  o.momentum = 0;
  o.weight_decay = 0;
  o.encoder_gradient = split;
  o.balance = by_kind;
  auto initial = seeded_net(labels, 15);
  const auto start = get_weights(initial);
  const auto names = weight_names(initial);
  auto stepped = [&](double step) {
    auto net = seeded_net(labels, 15);
    o.encoder_step = step;
    train_local(net, data, idx, o, 4);
    return get_weights(net);
  };
  const auto full = stepped(1.0), half = stepped(0.5);
  bool encoder_moved = false;
  for (size_t i = 0; i < names.size(); ++i) {
    if (names[i].rfind("encoder.", 0) == 0) {
      encoder_moved = encoder_moved || !torch::equal(full[i], start[i]);
      CHECK(torch::allclose(half[i] - start[i], 0.5 * (full[i] - start[i]), 1e-4, 1e-7));
    } else {
      CHECK(torch::equal(half[i], full[i]));
    }
  }
  CHECK(encoder_moved);
}

TEST_CASE("task balance by_kind: a dense group born of a split trains summed, a label one equal, a mixed one capped", "[training][balance]") {
  std::vector<int64_t> idx(20);
  std::iota(idx.begin(), idx.end(), 0);
  LocalTrainOptions o;
  o.batch_size = 10;
  o.encoder_gradient = EncoderGradient::kSum;  // a group born of a split
  auto trained = [&](const std::vector<TaskDef>& tasks, TaskBalance b) {
    auto data = make_task_data(bright_dark(20), tasks);
    auto net = seeded_net(tasks, 13);
    o.balance = b;
    train_local(net, data, idx, o, 2);
    return get_weights(net);
  };
  auto same = [](const Weights& a, const Weights& b) {
    for (size_t i = 0; i < a.size(); ++i)
      if (!torch::equal(a[i], b[i])) return false;
    return true;
  };
  const auto dense = defs({"reconstruct", "segment"});
  const auto dense_rule = trained(dense, TaskBalance::kByKind);
  CHECK(same(dense_rule, trained(dense, TaskBalance::kCapMerged)));
  CHECK(same(dense_rule, trained(dense, TaskBalance::kNone)));  // the plain sum
  CHECK_FALSE(same(dense_rule, trained(dense, TaskBalance::kCap)));
  const auto mixed = defs({"parity", "reconstruct"});
  const auto mixed_rule = trained(mixed, TaskBalance::kByKind);
  CHECK(same(mixed_rule, trained(mixed, TaskBalance::kCap)));
  CHECK_FALSE(same(mixed_rule, trained(mixed, TaskBalance::kNone)));
  const auto labels = defs({"class", "parity"});
  const auto label_rule = trained(labels, TaskBalance::kByKind);
  CHECK(same(label_rule, trained(labels, TaskBalance::kCapEqual)));
  CHECK_FALSE(same(label_rule, trained(labels, TaskBalance::kCap)));
}

TEST_CASE("alignment: each task's cosine with the weighted sum of its mates' feature gradients", "[training][balance]") {
  torch::manual_seed(21);
  const auto a = torch::randn({4, 32, 7, 7}), b = torch::randn({4, 32, 7, 7}), c = torch::randn({4, 32, 7, 7});
  // Two tasks pulling the same way, or exactly apart, whatever their lengths and weights.
  const auto same = mates_alignment({a, 3 * a}, {1.0, 0.2});
  CHECK(same[0] == Approx(1.0));
  CHECK(same[1] == Approx(1.0));
  const auto apart = mates_alignment({a, -0.01 * a}, {0.5, 1.0});
  CHECK(apart[0] == Approx(-1.0));
  CHECK(apart[1] == Approx(-1.0));
  // Three: task 0 against 2·b + 0.5·c (its mates as weighted), computed by hand.
  const auto three = mates_alignment({a, b, c}, {1.0, 2.0, 0.5});
  const auto mates = (2 * b + 0.5 * c).flatten();
  const double want = a.flatten().dot(mates).item<double>() / (a.norm().item<double>() * mates.norm().item<double>());
  CHECK(three[0] == Approx(want).epsilon(1e-5));
  for (double x : three) CHECK(std::abs(x) <= 1.0);
  // A zero gradient on either side, or mates of zero weight, give 0.
  const auto zero = mates_alignment({a, torch::zeros_like(a)}, {1.0, 1.0});
  CHECK(zero == std::vector<double>{0.0, 0.0});
  CHECK(mates_alignment({a, b}, {1.0, 0.0})[0] == 0.0);
}

TEST_CASE("training: train_local reports each head's alignment with its mates, none for one head", "[training]") {
  const auto tasks = defs({"parity", "segment"});
  const auto data = make_task_data(bright_dark(64), tasks);
  std::vector<int64_t> idx(64);
  std::iota(idx.begin(), idx.end(), 0);
  LocalTrainOptions o;
  o.batch_size = 16;
  auto net = seeded_net(tasks, 5);
  const auto r = train_local(net, data, idx, o, 1);
  REQUIRE(r.alignment.size() == 2);
  // In a pair each sees the other: the same cosine, a mean over the steps.
  CHECK(r.alignment[0] == Approx(r.alignment[1]));
  CHECK(std::abs(r.alignment[0]) <= 1.0);
  CHECK(r.alignment[0] != 0.0);
  // Deterministic, as the rest of the step.
  auto again = seeded_net(tasks, 5);
  CHECK(train_local(again, data, idx, o, 1).alignment == r.alignment);
  auto single = seeded_net(defs({"parity"}), 5);
  CHECK(train_local(single, make_task_data(bright_dark(64), defs({"parity"})), idx, o, 1).alignment.empty());
}
