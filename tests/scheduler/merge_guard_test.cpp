#include "scheduler/grouping/merge_guard.h"

#include <catch2/catch.hpp>

#include <cmath>

using namespace mufl::scheduler;

namespace {

// A loss that falls by `rate` (relative) each round for `rounds` rounds from `start`.
std::vector<double> falling(double start, double rate, int rounds) {
  std::vector<double> l{start};
  for (int r = 0; r < rounds; ++r) l.push_back(l.back() * (1.0 - rate));
  return l;
}

}  // namespace

TEST_CASE("merge guard: a head whose loss stalls while its mates' fall leaves", "[guard]") {
  MergeGuardOptions o;  // window 3, lag 0.25, min progress 0.02
  // Losses 100x apart: progress is relative, so the scale does not decide.
  const std::vector<std::vector<double>> losses = {falling(2.3, 0.10, 5), falling(0.02, 0.001, 5),
                                                   falling(0.7, 0.08, 5)};
  auto v = lagging_head(losses, o);
  REQUIRE(v.has_value());
  CHECK(v->head == 1);
  CHECK(v->progress == Approx(1.0 - std::pow(0.999, 3)));
  CHECK(v->others == Approx(0.5 * ((1.0 - std::pow(0.9, 3)) + (1.0 - std::pow(0.92, 3)))));
  CHECK(v->reason.find("over 3 rounds") != std::string::npos);
}

TEST_CASE("merge guard: a rising loss lags too, and the worst of several leaves first", "[guard]") {
  MergeGuardOptions o;
  const std::vector<std::vector<double>> losses = {falling(1.0, 0.10, 3), {0.5, 0.5, 0.51, 0.52},
                                                   falling(1.0, 0.01, 3), falling(1.0, 0.12, 3)};
  auto v = lagging_head(losses, o);
  REQUIRE(v.has_value());
  CHECK(v->head == 1);
  CHECK(v->progress < 0);
}

TEST_CASE("merge guard: no verdict when everyone plateaus, or with too little history", "[guard]") {
  MergeGuardOptions o;
  // Converged together: the mates improve by less than min_progress (2 % over the window).
  CHECK_FALSE(lagging_head({falling(1.0, 0.005, 4), falling(0.1, 0.0, 4)}, o).has_value());
  // Every head keeps pace.
  CHECK_FALSE(lagging_head({falling(1.0, 0.10, 4), falling(0.1, 0.05, 4)}, o).has_value());
  // Only three losses: a window of 3 needs four.
  CHECK_FALSE(lagging_head({falling(1.0, 0.10, 2), {0.5, 0.5, 0.5}}, o).has_value());
  // One head alone, the guard off, a loss that is not a number.
  CHECK_FALSE(lagging_head({falling(1.0, 0.10, 4)}, o).has_value());
  MergeGuardOptions off;
  off.window = 0;
  CHECK_FALSE(lagging_head({falling(1.0, 0.10, 4), {0.5, 0.5, 0.5, 0.5, 0.5}}, off).has_value());
  CHECK_FALSE(lagging_head({falling(1.0, 0.10, 4), {0.5, NAN, 0.5, 0.5, NAN}}, o).has_value());
}

TEST_CASE("merge guard: the window and the ratio are the options'", "[guard]") {
  // Over the last round only the second head stalls; over five it kept pace.
  const std::vector<std::vector<double>> losses = {falling(1.0, 0.10, 5), {1.0, 0.8, 0.6, 0.5, 0.45, 0.45}};
  MergeGuardOptions one;
  one.window = 1;
  CHECK(lagging_head(losses, one).has_value());
  MergeGuardOptions five;
  five.window = 5;
  CHECK_FALSE(lagging_head(losses, five).has_value());
  MergeGuardOptions strict = one;
  strict.lag_ratio = 0.0;  // only a loss that rises leaves
  CHECK_FALSE(lagging_head(losses, strict).has_value());
}

TEST_CASE("merge guard: a stalled head whose mates pull the same way stays, one they pull against leaves",
          "[guard]") {
  MergeGuardOptions o;
  // The second head has converged: its loss is flat while its mate's still falls.
  const std::vector<std::vector<double>> losses = {falling(1.0, 0.10, 4), falling(0.03, 0.0, 4)};
  // Measured alignment above 0: the mate's steps lower its loss too, so the stall is its own.
  CHECK_FALSE(lagging_head(losses, o, {0.17, 0.17}).has_value());
  // Pulled against (below 0): the merge holds it back; it leaves and the verdict says why.
  auto v = lagging_head(losses, o, {-0.02, -0.02});
  REQUIRE(v.has_value());
  CHECK(v->head == 1);
  REQUIRE(v->alignment.has_value());
  CHECK(*v->alignment == Approx(-0.02));
  CHECK(v->reason.find("alignment -0.020") != std::string::npos);
  // Not measured (a client of an older build): the lag alone decides, as before.
  auto unmeasured = lagging_head(losses, o, {std::nullopt, std::nullopt});
  REQUIRE(unmeasured.has_value());
  CHECK(unmeasured->head == 1);
  CHECK_FALSE(unmeasured->alignment.has_value());
  CHECK(lagging_head(losses, o).has_value());
  // The threshold is the options': at 0.2 an alignment of 0.17 no longer spares it.
  MergeGuardOptions strict = o;
  strict.max_alignment = 0.2;
  CHECK(lagging_head(losses, strict, {0.17, 0.17}).has_value());
}

TEST_CASE("merge guard: a spared head does not hide another that lags against its mates", "[guard]") {
  MergeGuardOptions o;
  // Heads 1 and 2 both stall while head 0 falls; head 1 (the worse lag) is aligned, head 2 is not.
  const std::vector<std::vector<double>> losses = {falling(1.0, 0.10, 4), {0.5, 0.5, 0.51, 0.52, 0.53},
                                                   falling(0.2, 0.005, 4)};
  auto v = lagging_head(losses, o, {0.3, 0.1, -0.05});
  REQUIRE(v.has_value());
  CHECK(v->head == 2);
}
