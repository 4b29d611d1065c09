#include <catch2/catch.hpp>

#include "fl/linear_probe.h"
#include "fl/datasets.h"
#include "fl/tasks.h"
// Last: after the torch headers (Catch's CHECK, not glog's).
#include "tests/support/catch_over_torch.h"

using namespace mufl::fl;

namespace {
// Three classes in 5 dimensions: class c sits around 4·e_c, with unit noise and two features
// that carry nothing (one of them constant).
void separable(int64_t n, uint64_t seed, torch::Tensor& x, torch::Tensor& y) {
  torch::manual_seed(seed);
  y = torch::arange(n, torch::kInt64).remainder(3);
  x = torch::randn({n, 5}) * 0.5;
  x.slice(1, 0, 3).add_(4.0 * torch::one_hot(y, 3).to(torch::kFloat32));
  x.select(1, 4).fill_(7.0);
}
}  // namespace

TEST_CASE("linear probe: separable hand-made features are classified almost perfectly", "[linear_probe]") {
  torch::Tensor x, y, tx, ty;
  separable(300, 1, x, y);
  separable(300, 2, tx, ty);
  RidgeFit fit(3);
  fit.add(x.slice(0, 0, 100), y.slice(0, 0, 100));  // in batches, as the probe streams them
  fit.add(x.slice(0, 100, 300), y.slice(0, 100, 300));
  CHECK(fit.samples() == 300);
  const LinearProbe probe = fit.solve(1e-2);
  const double accuracy = probe.predict(tx).eq(ty).to(torch::kFloat64).mean().item<double>();
  CHECK(accuracy > 0.98);
  // The constant feature gets no weight.
  CHECK(probe.weight[4].abs().max().item<double>() < 1e-6);
  // One batch or two give the same probe (up to float64 rounding).
  RidgeFit once(3);
  once.add(x, y);
  CHECK(torch::allclose(once.solve(1e-2).weight, probe.weight, 1e-4, 1e-5));
}

TEST_CASE("linear probe: labels the features do not carry stay near chance", "[linear_probe]") {
  torch::Tensor x, y, tx, ty;
  separable(600, 3, x, y);
  separable(600, 4, tx, ty);
  torch::manual_seed(5);
  const auto shuffled = y.index_select(0, torch::randperm(600));  // labels unrelated to x
  RidgeFit fit(3);
  fit.add(x, shuffled);
  const double accuracy = fit.solve(1e-2).predict(tx).eq(ty).to(torch::kFloat64).mean().item<double>();
  CHECK(accuracy < 0.5);  // chance is 1/3
}

TEST_CASE("linear probe: max_test_samples scores exactly the first samples of the test set", "[linear_probe]") {
  auto data = load_dataset("var", "synthetic");
  REQUIRE(data.ok());
  torch::manual_seed(8);
  MultiTaskNet net(std::vector<TaskDef>{*find_task("ssl")});
  const auto& tr = data->train;
  const auto& te = data->test;
  ProbeOptions quick;
  quick.max_train_samples = 500;
  quick.max_test_samples = 300;
  const double first = linear_probe_accuracy(net, tr.images, tr.labels, te.images, te.labels, 10, quick);
  ProbeOptions all_of = quick;
  all_of.max_test_samples = 0;
  const double sliced = linear_probe_accuracy(net, tr.images, tr.labels, te.images.slice(0, 0, 300),
                                              te.labels.slice(0, 0, 300), 10, all_of);
  CHECK(first == sliced);
  CHECK(first * 300 == Approx(std::round(first * 300)));  // a count out of 300
  CHECK(te.images.size(0) > 300);
}
