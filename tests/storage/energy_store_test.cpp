// The energy part of the Store (storage/store.h: the ledger written with a group's round, per-day
// usage, energy budgets and device shares in claims, drained devices), on SqliteStore.
#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include <string>
#include <vector>

#include "tests/storage/store_fixtures.h"
#include "core/clock.h"
#include "storage/sqlite_store.h"
#include "tests/support/temp_dir.h"

using namespace mufl;
using namespace mufl::storage;

namespace {

constexpr int64_t kDay = 86'400'000;
constexpr int64_t kJan1 = 1'767'225'600'000;  // 2026-01-01T00:00:00Z

Group new_group(const std::string& id, const std::vector<std::string>& activities) {
  Group g;
  g.id = id;
  g.phase = GroupPhase::kTraining;
  g.policy = "mufl";
  g.compat_key = "k";
  g.config_json = "{}";
  for (const auto& a : activities) g.members.push_back({a, "", "class", 0, {}, {}});
  return g;
}

struct Fixture {
  ManualClock clock;
  std::unique_ptr<SqliteStore> store;

  explicit Fixture(const std::string& path = ":memory:") : store(open_store(path, clock)) {
    REQUIRE(store->create_tenant(make_tenant("ten_a", "alpha"), "ha").ok());
    REQUIRE(store->create_tenant(make_tenant("ten_b", "beta"), "hb").ok());
  }
  void submit(const std::string& id, const std::string& tenant) {
    REQUIRE(store->submit_activity(queued_activity(id, tenant, 100), 100, std::nullopt).ok());
  }
  void group(const std::string& id, const std::vector<std::string>& members) {
    GroupPlan p;
    p.new_groups = {new_group(id, members)};
    REQUIRE(store->apply_group_plan(p, 3000).ok());
  }
  // Records round `round` of `group_id` with one unit of `joules` over `seconds`, ending at
  // `end_ms`, split evenly over `shares` (activity id, tenant id).
  Status record(const std::string& group_id, int64_t round, double joules, double seconds, int64_t end_ms,
                const std::vector<std::pair<std::string, std::string>>& shares, double client_joules = 0) {
    GroupRoundRecord r;
    r.group_id = group_id;
    r.round = round;
    r.checkpoint = {round, "/ckpt", "sha", 1};
    EnergyUnit u;
    u.group_id = group_id;
    u.round = round;
    u.device = "cpu:0";
    u.meter = "model";
    u.start_unix_ms = end_ms - static_cast<int64_t>(seconds * 1000);
    u.end_unix_ms = end_ms;
    u.seconds = seconds;
    u.joules = joules;
    u.carbon_g_per_kwh = 360;
    u.grams_co2e = joules / 3.6e6 * 360;
    u.client_joules = client_joules;
    u.client_meters = client_joules > 0 ? "model" : "";
    for (const auto& [a, t] : shares) {
      const double f = 1.0 / static_cast<double>(shares.size());
      u.shares.push_back({a, t, f, joules * f, seconds * f, u.grams_co2e * f, client_joules * f});
      r.reports.emplace_back(a, "{}");
    }
    r.energy = u;
    return store->record_group_round(r, end_ms);
  }
  double used(const std::string& tenant) { return store->get_tenant(tenant)->energy_used_joules; }
  // An abandoned unit of round `round` of `group_id`: `joules` split evenly over `shares`.
  EnergyUnit abandoned(const std::string& group_id, int64_t round, double joules, int64_t end_ms,
                       const std::vector<std::pair<std::string, std::string>>& shares, const char* why) {
    EnergyUnit u;
    u.group_id = group_id;
    u.round = round;
    u.device = "cpu:1";
    u.meter = "model";
    u.start_unix_ms = end_ms - 1000;
    u.end_unix_ms = end_ms;
    u.seconds = 1;
    u.joules = joules;
    u.carbon_g_per_kwh = 360;
    u.grams_co2e = joules / 3.6e6 * 360;
    for (const auto& [a, t] : shares) {
      const double f = 1.0 / static_cast<double>(shares.size());
      u.shares.push_back({a, t, f, joules * f, f, u.grams_co2e * f});
    }
    u.abandoned = why;
    return u;
  }
};

}  // namespace

TEST_CASE("energy store: a round's unit and its shares are written with the round") {
  Fixture f;
  f.submit("act_1", "ten_a");
  f.submit("act_2", "ten_b");
  f.group("grp_1", {"act_1", "act_2"});
  REQUIRE(f.record("grp_1", 1, 1000, 10, kJan1 + 1000, {{"act_1", "ten_a"}, {"act_2", "ten_b"}}).is_ok());
  REQUIRE(f.record("grp_1", 2, 3000, 20, kJan1 + 2000, {{"act_1", "ten_a"}, {"act_2", "ten_b"}}).is_ok());

  auto units = f.store->list_energy_units("grp_1");
  REQUIRE(units.ok());
  REQUIRE(units->size() == 2);
  CHECK((*units)[0].round == 1);
  CHECK((*units)[1].joules == Approx(3000));
  CHECK((*units)[1].meter == "model");
  CHECK((*units)[1].device == "cpu:0");
  REQUIRE((*units)[1].shares.size() == 2);
  CHECK((*units)[1].shares[1].activity_id == "act_2");
  CHECK((*units)[1].shares[1].tenant_id == "ten_b");
  CHECK((*units)[1].shares[1].joules == Approx(1500));

  auto e = f.store->activity_energy("act_1");
  REQUIRE(e.ok());
  CHECK(e->joules == Approx(2000));
  CHECK(e->device_seconds == Approx(15));
  CHECK(e->grams_co2e == Approx(4000 / 3.6e6 * 360 / 2));
  CHECK(e->units == 2);
  CHECK(f.used("ten_a") == Approx(2000));
  CHECK(f.used("ten_b") == Approx(2000));
  CHECK(f.store->activity_energy("act_none")->joules == 0);  // no share: zero totals

  // The same round again (redone after a crash) keeps the first unit: nothing is counted twice.
  REQUIRE(f.record("grp_1", 2, 9999, 20, kJan1 + 3000, {{"act_1", "ten_a"}, {"act_2", "ten_b"}}).is_ok());
  CHECK(f.store->list_energy_units("grp_1")->size() == 2);
  CHECK(f.used("ten_a") == Approx(2000));

  auto by_tenant = f.store->energy_by_tenant();
  REQUIRE(by_tenant.ok());
  REQUIRE(by_tenant->size() == 2);
  CHECK((*by_tenant)[0].first == "ten_a");
  CHECK((*by_tenant)[0].second.joules == Approx(2000));

  // A failed round transaction writes no unit.
  CHECK(f.record("grp_nope", 1, 5, 1, kJan1, {{"act_1", "ten_a"}}).is_not_found());
  CHECK(f.used("ten_a") == Approx(2000));
}

TEST_CASE("energy store: a federation round's client joules are kept beside the server's, outside budgets") {
  Fixture f;
  f.submit("act_1", "ten_a");
  f.submit("act_2", "ten_b");
  f.group("grp_1", {"act_1", "act_2"});
  REQUIRE(f.record("grp_1", 1, 10, 1, kJan1 + 1000, {{"act_1", "ten_a"}, {"act_2", "ten_b"}}, 800).is_ok());
  REQUIRE(f.record("grp_1", 2, 30, 1, kJan1 + 2000, {{"act_1", "ten_a"}, {"act_2", "ten_b"}}, 400).is_ok());
  auto units = f.store->list_energy_units("grp_1");
  REQUIRE(units.ok());
  REQUIRE(units->size() == 2);
  CHECK((*units)[0].client_joules == Approx(800));
  CHECK((*units)[0].client_meters == "model");
  CHECK((*units)[0].shares[1].client_joules == Approx(400));
  auto e = f.store->activity_energy("act_1");
  REQUIRE(e.ok());
  CHECK(e->joules == Approx(20));
  CHECK(e->client_joules == Approx(600));
  CHECK(f.used("ten_a") == Approx(20));  // budgets count mufld's own joules only
  auto days = f.store->tenant_usage("ten_b", kJan1, kJan1 + kDay);
  REQUIRE(days.ok());
  REQUIRE(days->size() == 1);
  CHECK((*days)[0].totals.client_joules == Approx(600));
  CHECK((*days)[0].totals.joules == Approx(20));
  auto by_tenant = f.store->energy_by_tenant();
  REQUIRE(by_tenant.ok());
  CHECK((*by_tenant)[1].second.client_joules == Approx(600));
}

TEST_CASE("energy store: per-day usage in UTC, only the tenant's shares, in the range") {
  Fixture f;
  f.submit("act_1", "ten_a");
  f.submit("act_2", "ten_b");
  f.group("grp_1", {"act_1", "act_2"});
  const std::vector<std::pair<std::string, std::string>> both = {{"act_1", "ten_a"}, {"act_2", "ten_b"}};
  REQUIRE(f.record("grp_1", 1, 100, 1, kJan1 + 10, both).is_ok());
  REQUIRE(f.record("grp_1", 2, 200, 2, kJan1 + kDay - 1, both).is_ok());  // still Jan 1
  REQUIRE(f.record("grp_1", 3, 400, 4, kJan1 + kDay, both).is_ok());      // Jan 2, midnight
  REQUIRE(f.record("grp_1", 4, 800, 8, kJan1 + 3 * kDay + 5, {{"act_1", "ten_a"}}).is_ok());

  auto days = f.store->tenant_usage("ten_a", kJan1, kJan1 + 10 * kDay);
  REQUIRE(days.ok());
  REQUIRE(days->size() == 3);
  CHECK((*days)[0].day == "2026-01-01");
  CHECK((*days)[0].totals.joules == Approx(150));
  CHECK((*days)[0].totals.device_seconds == Approx(1.5));
  CHECK((*days)[0].totals.units == 2);
  CHECK((*days)[1].day == "2026-01-02");
  CHECK((*days)[1].totals.joules == Approx(200));
  CHECK((*days)[2].day == "2026-01-04");
  CHECK((*days)[2].totals.joules == Approx(800));
  CHECK((*days)[2].totals.grams_co2e == Approx(800 / 3.6e6 * 360));

  auto b = f.store->tenant_usage("ten_b", kJan1, kJan1 + 10 * kDay);
  REQUIRE(b.ok());
  REQUIRE(b->size() == 2);  // no share in round 4
  auto one_day = f.store->tenant_usage("ten_a", kJan1 + kDay, kJan1 + 2 * kDay);
  REQUIRE(one_day.ok());
  REQUIRE(one_day->size() == 1);
  CHECK((*one_day)[0].day == "2026-01-02");
  CHECK(f.store->tenant_usage("ten_a", kJan1 + 20 * kDay, kJan1 + 21 * kDay)->empty());
}

TEST_CASE("energy store: budgets and device shares steer claims, and quotas round-trip") {
  Fixture f;
  f.submit("act_a", "ten_a");
  f.submit("act_b", "ten_b");
  f.submit("act_ab1", "ten_a");
  f.submit("act_ab2", "ten_b");
  f.group("grp_a", {"act_a"});
  f.group("grp_b", {"act_b"});
  f.group("grp_ab", {"act_ab1", "act_ab2"});

  Quotas q;
  q.energy_budget_joules = 500;
  auto t = f.store->update_tenant_quotas("ten_a", q, 4000);
  REQUIRE(t.ok());
  CHECK(t->quotas.energy_budget_joules == 500);
  CHECK_FALSE(t->quotas.max_devices);
  CHECK(t->quotas.fair_share_weight == 1);  // the default

  // ten_a uses 600 J of its 500: grp_a pauses; grp_ab still has ten_b's member within budget.
  auto claimed = f.store->claim_next_group("cpu:0", false, 5000);
  REQUIRE(claimed.ok());
  REQUIRE(*claimed);
  CHECK((*claimed)->id == "grp_a");
  REQUIRE(f.record("grp_a", 1, 600, 6, kJan1, {{"act_a", "ten_a"}}).is_ok());
  CHECK(*f.store->group_over_budget("grp_a"));
  CHECK_FALSE(*f.store->group_over_budget("grp_ab"));
  CHECK_FALSE(*f.store->group_over_budget("grp_b"));
  CHECK(f.store->group_over_budget("grp_zzz").status().is_not_found());
  REQUIRE(f.store->release_group("grp_a", 5100).is_ok());
  std::vector<std::string> order;
  for (const char* dev : {"cpu:1", "cpu:2", "cpu:3"}) {
    auto c = f.store->claim_next_group(dev, false, 5200);
    REQUIRE(c.ok());
    if (*c) order.push_back((*c)->id);
  }
  CHECK(order == std::vector<std::string>{"grp_b", "grp_ab"});  // not grp_a
  // Unclaimed: only grp_a, over budget (grp_ab keeps ten_b's member within budget, and has a device).
  auto unclaimed = f.store->list_unclaimed_groups(std::nullopt);
  REQUIRE(unclaimed.ok());
  REQUIRE(unclaimed->size() == 1);
  CHECK(unclaimed->front().id == "grp_a");
  CHECK(unclaimed->front().over_budget);
  CHECK_FALSE(unclaimed->front().at_max_devices);
  CHECK(f.store->list_unclaimed_groups("grp_b")->empty());  // it has a device
  CHECK(f.store->list_unclaimed_groups("grp_zzz")->empty());

  // budget.changed, to ten_a's stream only: used up by that round (at its end), then raised.
  auto budget_events = [&](const std::string& tenant) {
    EventQuery eq{Scope::of(tenant), 0, std::nullopt, std::nullopt, {"budget.changed"}, 100};
    auto es = f.store->list_events(eq);
    REQUIRE(es.ok());
    return *es;
  };
  auto exhausted = budget_events("ten_a");
  REQUIRE(exhausted.size() == 1);
  CHECK(exhausted[0].tenant_id == std::optional<std::string>("ten_a"));
  CHECK(exhausted[0].activity_id.empty());
  CHECK(exhausted[0].time_unix_ms == kJan1);  // the round's end
  CHECK(nlohmann::json::parse(exhausted[0].data_json) ==
        nlohmann::json{{"tenant_id", "ten_a"}, {"state", "exhausted"}, {"energy_used_joules", 600.0},
                       {"energy_budget_joules", 500.0}});
  CHECK(budget_events("ten_b").empty());

  // The budget raised: grp_a is claimable again. Stored, it survives a reopen (see below).
  q.energy_budget_joules = 10'000;
  REQUIRE(f.store->update_tenant_quotas("ten_a", q, 6000).ok());
  auto both = budget_events("ten_a");
  REQUIRE(both.size() == 2);
  CHECK(both[1].time_unix_ms == 6000);
  CHECK(nlohmann::json::parse(both[1].data_json)["state"] == "available");
  REQUIRE(f.store->update_tenant_quotas("ten_a", q, 6050).ok());  // no change across the use: no event
  CHECK(budget_events("ten_a").size() == 2);
  CHECK_FALSE(*f.store->group_over_budget("grp_a"));
  auto again = f.store->claim_next_group("cpu:4", false, 6100);
  REQUIRE(again.ok());
  REQUIRE(*again);
  CHECK((*again)->id == "grp_a");

  // max_devices: ten_b is on two devices (grp_b, grp_ab); with max 2 nothing more of it runs.
  for (const char* g : {"grp_a", "grp_b", "grp_ab"}) REQUIRE(f.store->release_group(g, 7000).is_ok());
  Quotas qb;
  qb.max_devices = 1;
  REQUIRE(f.store->update_tenant_quotas("ten_b", qb, 7000).ok());
  CHECK(f.store->get_tenant("ten_b")->quotas.max_devices == 1);
  order.clear();
  for (const char* dev : {"cpu:0", "cpu:1", "cpu:2"}) {
    auto c = f.store->claim_next_group(dev, false, 7100);
    REQUIRE(c.ok());
    if (*c) order.push_back((*c)->id);
  }
  CHECK(order == std::vector<std::string>{"grp_a", "grp_b"});  // grp_ab waits: ten_b is on 1 device
  auto capped = f.store->list_unclaimed_groups("grp_ab");
  REQUIRE(capped.ok());
  REQUIRE(capped->size() == 1);
  CHECK_FALSE(capped->front().over_budget);
  CHECK(capped->front().at_max_devices);
  // Unlimited again (nullopt).
  REQUIRE(f.store->update_tenant_quotas("ten_b", Quotas{}, 7200).ok());
  CHECK_FALSE(f.store->get_tenant("ten_b")->quotas.max_devices);
  auto last = f.store->claim_next_group("cpu:2", false, 7300);
  REQUIRE(last.ok());
  REQUIRE(*last);
  CHECK((*last)->id == "grp_ab");
}

TEST_CASE("energy store: budgets, weights, used joules and drained devices survive a reopen") {
  mufl::testing::TempDir dir;
  const std::string path = dir.file("mufl.db");
  {
    Fixture f(path);
    f.submit("act_1", "ten_a");
    f.group("grp_1", {"act_1"});
    Quotas q;
    q.energy_budget_joules = 42.5;
    q.max_devices = 3;
    q.fair_share_weight = 2.5;
    REQUIRE(f.store->update_tenant_quotas("ten_a", q, 4000).ok());
    REQUIRE(f.record("grp_1", 1, 12.25, 1, kJan1, {{"act_1", "ten_a"}}).is_ok());
    REQUIRE(f.store->set_device_drained("cpu:1", true, 5000).is_ok());
    REQUIRE(f.store->set_device_drained("cpu:0", true, 5000).is_ok());
    REQUIRE(f.store->set_device_drained("cpu:0", false, 5001).is_ok());
  }
  ManualClock clock;
  auto store = open_store(path, clock);
  auto t = store->get_tenant("ten_a");
  REQUIRE(t.ok());
  CHECK(t->quotas.energy_budget_joules == 42.5);
  CHECK(t->quotas.max_devices == 3);
  CHECK(t->quotas.fair_share_weight == 2.5);
  CHECK(t->energy_used_joules == Approx(12.25));
  // The weight reaches the fair policy through the claimable groups' members.
  auto claimable = store->list_claimable_groups(false);
  REQUIRE(claimable.ok());
  REQUIRE(claimable->size() == 1);
  REQUIRE(claimable->front().members.size() == 1);
  CHECK(claimable->front().members.front().tenant_weight == 2.5);
  CHECK(*store->list_drained_devices() == std::vector<std::string>{"cpu:1"});
  CHECK(store->activity_energy("act_1")->joules == Approx(12.25));
}

TEST_CASE("energy store: an abandoned round's energy is in the ledger, flagged, and the tenant's") {
  Fixture f;
  f.submit("act_1", "ten_a");
  f.submit("act_2", "ten_b");
  f.group("grp_1", {"act_1", "act_2"});
  const std::vector<std::pair<std::string, std::string>> both = {{"act_1", "ten_a"}, {"act_2", "ten_b"}};
  REQUIRE(f.record("grp_1", 1, 1000, 10, kJan1 + 1000, both).is_ok());
  // Round 2 stopped by a shutdown, then again by a second one; after the restart it is recorded.
  REQUIRE(f.store->record_abandoned_unit(f.abandoned("grp_1", 2, 400, kJan1 + 2000, both, "shutdown")).is_ok());
  REQUIRE(f.store->record_abandoned_unit(f.abandoned("grp_1", 2, 200, kJan1 + 3000, both, "shutdown")).is_ok());
  REQUIRE(f.record("grp_1", 2, 3000, 20, kJan1 + 4000, both).is_ok());
  // Round 3: act_1 alone, cancelled mid-round.
  REQUIRE(f.store->record_abandoned_unit(f.abandoned("grp_1", 3, 60, kJan1 + 5000, {{"act_1", "ten_a"}}, "cancelled"))
              .is_ok());

  auto units = f.store->list_energy_units("grp_1");
  REQUIRE(units.ok());
  REQUIRE(units->size() == 5);
  std::vector<std::pair<int64_t, std::string>> seen;
  for (const auto& u : *units) seen.emplace_back(u.round, u.abandoned);
  CHECK(seen == std::vector<std::pair<int64_t, std::string>>{
                    {1, ""}, {2, "shutdown"}, {2, "shutdown"}, {2, ""}, {3, "cancelled"}});
  CHECK((*units)[3].joules == 3000);
  REQUIRE((*units)[4].shares.size() == 1);
  CHECK((*units)[4].shares[0].activity_id == "act_1");

  // The joules were spent: they count for the tenants (their budgets too), with the units.
  CHECK(f.used("ten_a") == Approx(500 + 200 + 100 + 1500 + 60));
  CHECK(f.used("ten_b") == Approx(500 + 200 + 100 + 1500));
  auto a1 = f.store->activity_energy("act_1");
  REQUIRE(a1.ok());
  CHECK(a1->joules == Approx(2360));
  CHECK(a1->units == 5);
  CHECK(a1->abandoned_units == 3);
  auto a2 = f.store->activity_energy("act_2");
  CHECK(a2->units == 4);
  CHECK(a2->abandoned_units == 2);
  auto days = f.store->tenant_usage("ten_a", kJan1, kJan1 + kDay);
  REQUIRE(days.ok());
  REQUIRE(days->size() == 1);
  CHECK((*days)[0].totals.joules == Approx(2360));
  CHECK((*days)[0].totals.abandoned_units == 3);
  auto by_tenant = f.store->energy_by_tenant();
  REQUIRE(by_tenant.ok());
  REQUIRE(by_tenant->size() == 2);
  CHECK((*by_tenant)[1].second.abandoned_units == 2);

  // A reason is required; a bad one changes nothing.
  const double before = f.used("ten_a");
  CHECK(f.store->record_abandoned_unit(f.abandoned("grp_1", 4, 5, kJan1, {{"act_1", "ten_a"}}, ""))
            .is_invalid_argument());
  CHECK(f.store->record_abandoned_unit(f.abandoned("grp_1", 4, 5, kJan1, {{"act_1", "ten_a"}}, "bored"))
            .is_invalid_argument());
  CHECK(f.used("ten_a") == before);
  CHECK(f.store->list_energy_units("grp_1")->size() == 5);
}
