#include "scheduler/energy/energy_ledger.h"

#include <catch2/catch.hpp>

using namespace mufl;
using namespace mufl::scheduler;

TEST_CASE("energy ledger: a unit is split evenly over the heads that trained, with carbon") {
  Group g;
  g.id = "grp_1";
  g.members = {{"act_a", "ten_x", "class", 0, {}, {}}, {"act_b", "ten_y", "parity", 0, {}, {}},
               {"act_c", "ten_x", "edges", 0, 2, "split"}};  // act_c left before this round
  UnitMeasurement m{"cpu:0", "model", 1'767'225'600'000, 1'767'225'610'000, 10.0, 7200.0};
  auto u = make_energy_unit(g, 3, {{"act_a", "class"}, {"act_b", "parity"}}, m, CarbonIntensity::constant(500));
  CHECK(u.group_id == "grp_1");
  CHECK(u.round == 3);
  CHECK(u.device == "cpu:0");
  CHECK(u.meter == "model");
  CHECK(u.joules == Approx(7200));
  CHECK(u.carbon_g_per_kwh == Approx(500));
  CHECK(u.grams_co2e == Approx(7200 / 3.6e6 * 500));  // 2 Wh at 500 g/kWh = 1 g
  REQUIRE(u.shares.size() == 2);
  CHECK(u.shares[0].activity_id == "act_a");
  CHECK(u.shares[0].tenant_id == "ten_x");
  CHECK(u.shares[1].tenant_id == "ten_y");
  double joules = 0, seconds = 0, grams = 0, share = 0;
  for (const auto& s : u.shares) {
    CHECK(s.share == Approx(0.5));
    joules += s.joules;
    seconds += s.device_seconds;
    grams += s.grams_co2e;
    share += s.share;
  }
  CHECK(joules == Approx(u.joules));
  CHECK(seconds == Approx(u.seconds));
  CHECK(grams == Approx(u.grams_co2e));
  CHECK(share == Approx(1));
}

TEST_CASE("energy ledger: a federation round's client joules are split by the same shares, with no grams") {
  Group g;
  g.id = "grp_2";
  g.members = {{"act_a", "ten_x", "class", 0, {}, {}}, {"act_b", "ten_y", "parity", 0, {}, {}},
               {"act_c", "ten_y", "edges", 0, {}, {}}};
  UnitMeasurement m{"federation:0", "model", 1'767'225'600'000, 1'767'225'601'000, 0.5, 10.0};
  auto u = make_energy_unit(g, 1, {{"act_a", "class"}, {"act_b", "parity"}, {"act_c", "edges"}}, m,
                            CarbonIntensity::constant(500), {900.0, "model+rapl"});
  CHECK(u.joules == Approx(10));
  CHECK(u.client_joules == Approx(900));
  CHECK(u.client_meters == "model+rapl");
  CHECK(u.grams_co2e == Approx(10 / 3.6e6 * 500));  // the server's joules only
  REQUIRE(u.shares.size() == 3);
  double clients = 0;
  for (const auto& s : u.shares) {
    CHECK(s.client_joules == Approx(300));
    clients += s.client_joules;
  }
  CHECK(clients == Approx(900));
  // Without clients (a device round) there is nothing beside the server's joules.
  auto local = make_energy_unit(g, 2, {{"act_a", "class"}}, m, CarbonIntensity::constant(500));
  CHECK(local.client_joules == 0);
  CHECK(local.client_meters.empty());
  CHECK(local.shares[0].client_joules == 0);
}
