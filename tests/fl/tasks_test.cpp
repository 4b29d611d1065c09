#include <catch2/catch.hpp>

#include <cmath>

#include "fl/tasks.h"
// Last: after the torch headers (Catch's CHECK, not glog's).
#include "tests/support/catch_over_torch.h"

using namespace mufl;
using namespace mufl::fl;

namespace {
TaskDef task(const std::string& name) {
  auto t = find_task(name);
  REQUIRE(t.ok());
  return *t;
}
}  // namespace

TEST_CASE("tasks: every catalog task is defined, unknown names are refused", "[tasks]") {
  for (const char* n : {"class", "parity", "magnitude", "reconstruct", "segment", "edges", "distance", "ssl"})
    CHECK(find_task(n).ok());
  CHECK(find_task("poetry").status().is_invalid_argument());
  CHECK(task("class").outputs == 10);
  CHECK(task("segment").metric == "iou");
  CHECK_FALSE(task("distance").higher_is_better);
  CHECK(task("ssl").kind == TaskKind::kSiamese);
  CHECK(task("ssl").metric == "linear_probe_accuracy");
}

TEST_CASE("tasks: label targets come from the label", "[tasks]") {
  auto images = torch::zeros({4, 1, 28, 28});
  auto labels = torch::tensor({0, 3, 5, 8}, torch::kInt64);
  CHECK(torch::equal(make_targets(task("class"), images, labels), labels));
  CHECK(torch::equal(make_targets(task("parity"), images, labels), torch::tensor({0, 1, 1, 0}, torch::kInt64)));
  CHECK(torch::equal(make_targets(task("magnitude"), images, labels), torch::tensor({0, 0, 1, 1}, torch::kInt64)));
}

TEST_CASE("tasks: dense targets — mask, edges and distance on hand-made images", "[tasks]") {
  auto images = torch::zeros({2, 1, 28, 28});
  images[0][0][14][14] = 1.0;  // one bright pixel
  images[0][0][0][0] = 0.4;    // dim: below the mask threshold
  auto labels = torch::zeros({2}, torch::kInt64);

  auto mask = make_targets(task("segment"), images, labels);
  CHECK(mask.sum().item<float>() == 1.0f);
  CHECK(mask[0][0][14][14].item<float>() == 1.0f);

  CHECK(torch::equal(make_targets(task("reconstruct"), images, labels), images));

  auto edges = make_targets(task("edges"), images, labels);
  CHECK(edges[1].abs().max().item<float>() == 0.0f);  // a flat image has no edges
  // Right of the bright pixel the horizontal Sobel response is 2 (centre row weight), scaled by 4·√2.
  CHECK(edges[0][0][14][15].item<float>() == Approx(2.0 / (4.0 * std::sqrt(2.0))));
  CHECK(edges.max().item<float>() <= 1.0f);

  auto dist = make_targets(task("distance"), images, labels);
  const double unit = 1.0 / (28.0 * std::sqrt(2.0));
  CHECK(dist[0][0][14][14].item<float>() == 0.0f);
  CHECK(dist[0][0][14][17].item<float>() == Approx(3 * unit));
  CHECK(dist[0][0][10][11].item<float>() == Approx(5 * unit));  // a 3-4-5 triangle
  CHECK(dist[0][0][0][0].item<float>() == Approx(std::sqrt(14.0 * 14 * 2) * unit));
  CHECK(dist[1].min().item<float>() == 1.0f);  // no foreground at all
}

TEST_CASE("tasks: metrics are exact over batches", "[tasks]") {
  SECTION("accuracy") {
    auto t = task("parity");
    EvalSums sums;
    accumulate(t, torch::tensor({{2.f, 0.f}, {0.f, 2.f}, {2.f, 0.f}}), torch::tensor({0, 1, 1}, torch::kInt64), sums);
    accumulate(t, torch::tensor({{0.f, 2.f}}), torch::tensor({1}, torch::kInt64), sums);
    auto s = finish(sums);
    CHECK(s.metric == Approx(3.0 / 4.0));
    CHECK(s.loss > 0);
  }
  SECTION("iou") {
    auto t = task("segment");
    auto out = torch::full({1, 1, 28, 28}, -5.f);
    auto target = torch::zeros({1, 1, 28, 28});
    out[0][0][0].slice(0, 0, 4).fill_(5.f);     // predict 4 pixels
    target[0][0][0].slice(0, 2, 8).fill_(1.f);  // truth 6 pixels; 2 shared, union 8
    EvalSums sums;
    accumulate(t, out, target, sums);
    CHECK(finish(sums).metric == Approx(2.0 / 8.0));
  }
  SECTION("mse") {
    auto t = task("reconstruct");
    auto out = torch::zeros({2, 1, 28, 28});  // sigmoid(0) = 0.5
    auto target = torch::ones({2, 1, 28, 28});
    EvalSums sums;
    accumulate(t, out, target, sums);
    CHECK(finish(sums).metric == Approx(0.25));
    CHECK(finish(sums).loss == Approx(0.25));
  }
}
