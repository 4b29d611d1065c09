#include <catch2/catch.hpp>

#include "fl/simsiam.h"
// Last: after the torch headers (Catch's CHECK, not glog's).
#include "tests/support/catch_over_torch.h"

using namespace mufl::fl;

TEST_CASE("simsiam: the loss is -1 when each prediction equals the other view's projection", "[simsiam]") {
  const auto z1 = torch::tensor({{1.0f, 2.0f, -1.0f}, {0.5f, 0.0f, 3.0f}});
  const auto z2 = torch::tensor({{-2.0f, 1.0f, 0.5f}, {1.0f, 1.0f, 1.0f}});
  CHECK(simsiam_loss(z2.clone(), z1, z1.clone(), z2).item<double>() == Approx(-1.0));
  // Only the direction counts: a longer prediction changes nothing.
  CHECK(simsiam_loss(3 * z2, z1, 0.5 * z1, z2).item<double>() == Approx(-1.0));
  // Opposite directions give +1.
  CHECK(simsiam_loss(-z2, z1, -z1, z2).item<double>() == Approx(1.0));
}

TEST_CASE("simsiam: the loss is 0 when predictions are orthogonal to the projections", "[simsiam]") {
  const auto z1 = torch::tensor({{1.0f, 0.0f}, {0.0f, 2.0f}});
  const auto z2 = torch::tensor({{0.0f, 1.0f}, {3.0f, 0.0f}});
  const auto p1 = torch::tensor({{1.0f, 0.0f}, {0.0f, 1.0f}});  // ⊥ z2 row by row
  const auto p2 = torch::tensor({{0.0f, 5.0f}, {1.0f, 0.0f}});  // ⊥ z1 row by row
  CHECK(simsiam_loss(p1, z1, p2, z2).item<double>() == Approx(0.0).margin(1e-7));
}

TEST_CASE("simsiam: the stop-gradient lets no gradient into the projections through their own term", "[simsiam]") {
  auto z1 = torch::randn({4, 6}).requires_grad_(true);
  auto z2 = torch::randn({4, 6}).requires_grad_(true);
  auto p1 = torch::randn({4, 6}).requires_grad_(true);
  auto p2 = torch::randn({4, 6}).requires_grad_(true);
  simsiam_loss(p1, z1, p2, z2).backward();
  CHECK_FALSE(z1.grad().defined());
  CHECK_FALSE(z2.grad().defined());
  REQUIRE(p1.grad().defined());
  REQUIRE(p2.grad().defined());
  CHECK(p1.grad().abs().sum().item<double>() > 0);
  CHECK(p2.grad().abs().sum().item<double>() > 0);
}

TEST_CASE("simsiam: the head outputs z then p, and its loss on paired rows matches the four-tensor form", "[simsiam]") {
  torch::manual_seed(3);
  SimSiamHead head(20, 8, 4);
  const auto features = torch::randn({6, 20});  // 3 images, two views each
  const auto out = head->forward(features);
  REQUIRE(out.sizes() == torch::IntArrayRef({6, 16}));
  const auto z = out.slice(1, 0, 8), p = out.slice(1, 8, 16);
  const double expected = simsiam_loss(p.slice(0, 0, 3), z.slice(0, 0, 3), p.slice(0, 3, 6), z.slice(0, 3, 6)).item<double>();
  CHECK(simsiam_loss(out).item<double>() == Approx(expected));
  // The projection ends standardised over the batch: each dimension has mean 0 over the rows.
  CHECK(z.mean(0).abs().max().item<double>() < 1e-5);
  CHECK(z.var(0, /*unbiased=*/false).sub(1).abs().max().item<double>() < 1e-2);
  // No running statistics: the head is its parameters alone.
  CHECK(head->buffers().empty());
}
