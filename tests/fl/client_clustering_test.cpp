// The clustering rule (fl/client_clustering.h) on hand-made similarity matrices, and the
// similarities of hand-made updates (fl/strategy.h, update_similarities).
#include <catch2/catch.hpp>

#include <cmath>

#include "fl/client_clustering.h"
#include "fl/strategy.h"
// Last: after the torch headers (Catch's CHECK, not glog's).
#include "tests/support/catch_over_torch.h"

using namespace mufl::fl;

namespace {

using Matrix = std::vector<std::vector<double>>;

// A symmetric matrix from its upper triangle, row by row (diagonal 1).
Matrix symmetric(size_t n, const std::vector<double>& upper) {
  Matrix m(n, std::vector<double>(n, 1.0));
  size_t next = 0;
  for (size_t a = 0; a < n; ++a)
    for (size_t b = a + 1; b < n; ++b) m[a][b] = m[b][a] = upper.at(next++);
  return m;
}

}  // namespace

TEST_CASE("client clustering: two blocks of similar clients become two clusters, numbered by their smallest client") {
  // Clients 1 and 3 point one way, 0, 2 and 4 another.
  const Matrix m = symmetric(5, {/*0:*/ -0.2, 0.9, -0.1, 0.8,
                                 /*1:*/ -0.3, 0.95, -0.2,
                                 /*2:*/ -0.1, 0.85,
                                 /*3:*/ -0.25});
  CHECK(cluster_by_similarity(m, 2) == std::vector<int>{0, 1, 0, 1, 0});
  CHECK(cluster_members({0, 1, 0, 1, 0}) == std::vector<std::vector<int64_t>>{{0, 2, 4}, {1, 3}});
}

TEST_CASE("client clustering: average linkage does not chain clients through one similar pair") {
  // 0-1 and 2-3 are tight pairs; 1 and 2 are fairly similar, but 0 and 3 are opposed. Single
  // linkage would join {0,1} and {2,3} (their best pair has 0.7) before adding the loner 4;
  // average linkage sees {0,1}–{2,3} average (0.7 − 0.9 − 0.9 − 0.9) / 4 = −0.5 and instead
  // joins the loner 4 to {2,3} (average 0.1).
  const Matrix m = symmetric(5, {/*0:*/ 0.95, -0.9, -0.9, 0.0,
                                 /*1:*/ 0.7, -0.9, 0.0,
                                 /*2:*/ 0.95, 0.1,
                                 /*3:*/ 0.1});
  CHECK(cluster_by_similarity(m, 2) == std::vector<int>{0, 0, 1, 1, 1});
}

TEST_CASE("client clustering: ties go to the smallest clients, and k bounds the clusters") {
  const Matrix flat = symmetric(4, {0.5, 0.5, 0.5, 0.5, 0.5, 0.5});
  // Every pair ties: 0+1 first, then {0,1}+2, leaving 3 alone.
  CHECK(cluster_by_similarity(flat, 2) == std::vector<int>{0, 0, 0, 1});
  CHECK(cluster_by_similarity(flat, 3) == std::vector<int>{0, 0, 1, 2});
  CHECK(cluster_by_similarity(flat, 1) == std::vector<int>{0, 0, 0, 0});
  CHECK(cluster_by_similarity(flat, 4) == std::vector<int>{0, 1, 2, 3});
  CHECK(cluster_by_similarity(flat, 16) == std::vector<int>{0, 1, 2, 3});  // more clusters than clients
  CHECK(cluster_by_similarity({}, 3).empty());
}

TEST_CASE("client clustering: the similarities are the cosines of the updates, a zero update is like none") {
  const Weights global = {torch::tensor({1.0F, 1.0F}), torch::tensor({2.0F})};
  auto moved = [&](float a, float b, float c) {
    return Weights{torch::tensor({1.0F + a, 1.0F + b}), torch::tensor({2.0F + c})};
  };
  // Updates (1,0,0), (2,0,0), (0,3,4) and (0,0,0): all tensors as one vector.
  const auto s = update_similarities(global, {moved(1, 0, 0), moved(2, 0, 0), moved(0, 3, 4), moved(0, 0, 0)});
  REQUIRE(s.size() == 4);
  CHECK(s[0][1] == Approx(1.0));  // same direction, another length
  CHECK(s[0][2] == Approx(0.0).margin(1e-12));
  CHECK(s[2][3] == 0.0);  // a model that did not move
  CHECK(s[3][3] == 1.0);
  const auto t = update_similarities(global, {moved(1, 1, 0), moved(0, 1, 1)});
  CHECK(t[0][1] == Approx(0.5));  // (1,1,0)·(0,1,1) / (√2·√2)
  CHECK(t[0][1] == t[1][0]);
  CHECK_THROWS(update_similarities(global, {Weights{torch::tensor({1.0F})}}));
}
