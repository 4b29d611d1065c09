#include "scheduler/energy/model_meter.h"

#include <catch2/catch.hpp>

using namespace mufl;
using namespace mufl::scheduler;

namespace {

// A GPU-like profile: 50 W idle; busy 100 W at a 150 W cap, 200 W at 300 W.
PowerProfile gpu() {
  PowerProfile p;
  p.model = "test-gpu";
  p.idle_watts = 50;
  p.points = {{150, 100, 1.5}, {300, 200, 1}};
  return p;
}

}  // namespace

TEST_CASE("model meter: integrates idle and busy watts over fake time") {
  ManualClock clock;
  ModelMeter m(gpu(), clock);
  CHECK(m.name() == "model");
  CHECK(m.energy_joules() == 0);
  CHECK(m.power_watts() == Approx(50));
  clock.advance_ms(10'000);                       // 10 s idle at 50 W
  CHECK(m.energy_joules() == Approx(500));
  m.set_busy(true);
  CHECK(m.power_watts() == Approx(200));          // busy at the highest limit
  clock.advance_ms(2'000);                        // 2 s busy at 200 W
  CHECK(m.energy_joules() == Approx(900));
  m.set_busy(true);                               // idempotent
  clock.advance_ms(500);
  m.set_busy(false);
  CHECK(m.energy_joules() == Approx(1000));
  clock.advance_ms(1'000);
  CHECK(m.energy_joules() == Approx(1050));
}

TEST_CASE("model meter: power against the power limit, scale, and a monotonic count") {
  ManualClock clock;
  ModelMeter m(gpu(), clock, 0.5, 150.0);          // half of the device, capped at 150 W
  m.set_busy(true);
  CHECK(m.power_watts() == Approx(50));            // 0.5 × 100 W
  clock.advance_ms(1'000);
  m.set_power_limit(225);                          // between the points: 150 W busy
  CHECK(m.energy_joules() == Approx(50));          // the second so far at the old limit
  clock.advance_ms(1'000);
  CHECK(m.energy_joules() == Approx(50 + 75));
  m.set_power_limit(10'000);                       // clamped to the profile's highest
  CHECK(m.power_watts() == Approx(100));
  double last = m.energy_joules();
  for (int i = 0; i < 5; ++i) {
    clock.advance_ms(100);
    const double now = m.energy_joules();
    CHECK(now >= last);
    last = now;
  }
}

TEST_CASE("model meter: the builtin cpu profile meters a CPU slot") {
  ManualClock clock;
  auto cpu = find_power_profile("cpu");
  REQUIRE(cpu.ok());
  ModelMeter m(*cpu, clock);
  m.set_busy(true);
  clock.advance_ms(1'000);
  CHECK(m.energy_joules() == Approx(cpu->watts_at(1, cpu->max_limit_watts())));
  CHECK(m.energy_joules() > cpu->idle_watts);
}
