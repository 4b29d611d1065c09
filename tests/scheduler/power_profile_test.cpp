#include "scheduler/energy/power_profile.h"

#include <catch2/catch.hpp>

using namespace mufl;
using namespace mufl::scheduler;

namespace {
PowerProfile hand_made() {
  PowerProfile p;
  p.model = std::string("hand-made");
  p.idle_watts = 20;
  p.points = {{100, 80, 1.5}, {200, 140, 1.1}, {300, 180, 1.0}};
  return p;
}
}  // namespace

TEST_CASE("power_profile: linear interpolation between points, clamped outside") {
  PowerProfile p = hand_made();
  CHECK(p.has_power_limits());
  CHECK(p.min_limit_watts() == 100);
  CHECK(p.max_limit_watts() == 300);
  CHECK(p.busy_watts_at(100) == Approx(80));
  CHECK(p.busy_watts_at(150) == Approx(110));  // halfway 80..140
  CHECK(p.busy_watts_at(275) == Approx(170));  // 140 + 0.75·40
  CHECK(p.busy_watts_at(50) == Approx(80));    // clamped low
  CHECK(p.busy_watts_at(400) == Approx(180));  // clamped high
  CHECK(p.relative_time_at(150) == Approx(1.3));
  CHECK(p.relative_time_at(250) == Approx(1.05));
  CHECK(p.relative_time_at(0) == Approx(1.5));
  CHECK(p.relative_time_at(1000) == Approx(1.0));
}

TEST_CASE("power_profile: watts at a utilisation, clamped to [0, 1]") {
  PowerProfile p = hand_made();
  CHECK(p.watts_at(0, 300) == Approx(20));
  CHECK(p.watts_at(1, 300) == Approx(180));
  CHECK(p.watts_at(0.5, 200) == Approx(80));  // 20 + 0.5·120
  CHECK(p.watts_at(-1, 200) == Approx(20));
  CHECK(p.watts_at(3, 200) == Approx(140));
}

TEST_CASE("power_profile: a single-point profile has no power limits") {
  auto cpu = find_power_profile("cpu");
  REQUIRE(cpu.ok());
  CHECK_FALSE(cpu->has_power_limits());
  CHECK(cpu->busy_watts_at(10) == Approx(65));
  CHECK(cpu->busy_watts_at(1000) == Approx(65));
  CHECK(cpu->relative_time_at(1) == Approx(1));
  CHECK(cpu->idle_watts == Approx(10));
}

TEST_CASE("power_profile: built-in GPUs come from the measured Zeus table") {
  auto v100 = find_power_profile("V100");
  REQUIRE(v100.ok());
  CHECK(v100->source == "zeus-nsdi23");
  CHECK(v100->min_limit_watts() == 100);
  CHECK(v100->max_limit_watts() == 250);
  CHECK(v100->points.size() == 7);
  CHECK(v100->relative_time_at(250) == Approx(1.0));
  CHECK(v100->relative_speed == Approx(1.0));
  // Mean energy of a unit at 150 W against 250 W, measured over 68 Zeus configurations: 0.842.
  CHECK(v100->busy_watts_at(150) * v100->relative_time_at(150) / v100->busy_watts_at(250) ==
        Approx(0.842).margin(0.002));
  auto p100 = find_power_profile("p100");  // case-insensitive
  REQUIRE(p100.ok());
  CHECK(p100->model == "P100");
  CHECK(p100->max_limit_watts() == 250);
  CHECK(p100->relative_speed == Approx(0.4695).margin(1e-4));
  for (const PowerProfile& p : builtin_power_profiles()) {
    INFO(p.model);
    REQUIRE(!p.points.empty());
    CHECK(p.idle_watts > 0);
    CHECK(p.relative_speed > 0);
    CHECK(p.points.back().relative_time == Approx(1.0));
    for (size_t i = 0; i < p.points.size(); ++i) {
      CHECK(p.points[i].busy_watts > p.idle_watts);
      if (i > 0) CHECK(p.points[i].limit_watts > p.points[i - 1].limit_watts);
    }
  }
}

TEST_CASE("power_profile: every trace GPU model has a profile") {
  for (const char* m : {"T4", "P100", "V100M16", "V100M32", "A10", "G2", "G3", "A40", "RTX6000", "cpu"}) {
    INFO(m);
    CHECK(find_power_profile(m).ok());
  }
  auto g2 = find_power_profile("G2");
  REQUIRE(g2.ok());
  CHECK(g2->source == "zeus-nsdi23:V100");
  CHECK(g2->busy_watts_at(200) == Approx(find_power_profile("V100")->busy_watts_at(200)));
  auto t4 = find_power_profile("T4");
  REQUIRE(t4.ok());
  CHECK(t4->max_limit_watts() == Approx(70));
  CHECK(t4->min_limit_watts() >= 60);
  CHECK(t4->relative_speed < 0.5);
  auto a10 = find_power_profile("A10");
  REQUIRE(a10.ok());
  CHECK(a10->max_limit_watts() == Approx(150));
  CHECK(a10->min_limit_watts() == Approx(100));
}

TEST_CASE("power_profile: an unknown model is NotFound") {
  auto r = find_power_profile("H100");
  REQUIRE_FALSE(r.ok());
  CHECK(r.status().is_not_found());
  CHECK(r.status().message().find("H100") != std::string::npos);
}
