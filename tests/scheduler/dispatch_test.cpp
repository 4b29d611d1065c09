// The executor-side placement decision (scheduler/placement/dispatch.h): from claimable groups, free
// devices, the time and the carbon series to a choice, with hand-made inputs.
#include "scheduler/placement/dispatch.h"

#include <catch2/catch.hpp>

#include <algorithm>
#include <fstream>
#include <iterator>
#include <set>
#include <unordered_map>

#include "scheduler/energy/carbon_intensity.h"
#include "tests/support/temp_dir.h"

using namespace mufl;
using namespace mufl::scheduler;

namespace {

constexpr int64_t kJan1 = 1'767'225'600;  // 2026-01-01T00:00:00Z
constexpr int64_t kHour = 3600;

const PowerProfile* profile(const std::string& model) {
  for (const PowerProfile& p : builtin_power_profiles())
    if (p.model == model) return &p;
  FAIL("no profile " << model);
  return nullptr;
}

storage::ClaimableMember member(const std::string& tenant, int64_t rounds_left,
                                std::optional<int64_t> deadline_unix_ms = std::nullopt, int64_t priority = 0) {
  static int n = 0;
  return {"act_" + std::to_string(++n), tenant, priority, deadline_unix_ms, rounds_left};
}

storage::ClaimableGroup group(const std::string& id, int64_t created_s, std::vector<storage::ClaimableMember> members) {
  storage::ClaimableGroup g;
  g.id = id;
  g.created_unix_ms = created_s * 1000;
  g.members = std::move(members);
  g.priority = g.members.empty() ? 0 : g.members.front().priority;
  for (const auto& m : g.members) g.priority = std::max(g.priority, m.priority);
  return g;
}

Dispatcher make(const std::string& policy, const CarbonIntensity* carbon = nullptr, double eta = 0.9) {
  DispatchOptions o;
  o.policy = policy;
  o.carbon = carbon;
  o.eta = eta;
  o.carbon_horizon_hours = 24;
  o.prior_round_seconds = 60;
  auto d = Dispatcher::create(o);
  REQUIRE(d.ok());
  return std::move(*d);
}

DispatchInput input(std::vector<storage::ClaimableGroup> groups, int64_t now_s,
                    std::vector<FreeDevice> devices = {{"cpu:0", profile("cpu")}}) {
  DispatchInput in;
  in.groups = std::move(groups);
  in.devices = std::move(devices);
  in.total_devices = 2;
  in.now_unix_ms = now_s * 1000;
  return in;
}

// 24 hours from 2026-01-01 00:00Z: hours 0 and 1 at 900 g/kWh, the others at 100.
CarbonIntensity test_series(const testing::TempDir& dir) {
  const std::string path = dir.file("carbon.csv");
  std::ofstream out(path);
  out << "timestamp,avg_CI\n";
  for (int h = 0; h < 24; ++h)
    out << "2026-01-01 " << (h < 10 ? "0" : "") << h << ":00:00+00:00," << (h < 2 ? 900 : 100) << "\n";
  out.close();
  auto c = CarbonIntensity::load_csv(path);
  REQUIRE(c.ok());
  return std::move(*c);
}

}  // namespace

TEST_CASE("dispatch: fifo takes the oldest group of the highest priority") {
  const Dispatcher fifo = make("fifo");
  auto in = input({group("grp_old", 100, {member("ten_a", 5, std::nullopt, 0)}),
                   group("grp_late", 300, {member("ten_a", 5, std::nullopt, 5)}),
                   group("grp_high", 200, {member("ten_b", 5, std::nullopt, 5)})},
                  kJan1);
  auto c = fifo.choose(in);
  REQUIRE(c.group_id);
  CHECK(*c.group_id == "grp_high");
  CHECK(c.held == 0);
  CHECK(c.waiting.empty());
  CHECK(c.considered == std::vector<std::string>{"grp_high"});
  // Only the input changes: without the high-priority groups the oldest goes first.
  in.groups.erase(in.groups.begin() + 1, in.groups.end());
  in.groups.push_back(group("grp_newer", 150, {member("ten_b", 5)}));
  CHECK(*fifo.choose(in).group_id == "grp_old");
  // Nothing claimable, or no device: no choice.
  CHECK_FALSE(fifo.choose(input({}, kJan1)).group_id);
}

TEST_CASE("dispatch: fair prefers the tenant with the smaller dominant share") {
  const Dispatcher fair = make("fair"), fifo = make("fifo");
  auto in = input({group("grp_a", 100, {member("ten_a", 5)}), group("grp_b", 200, {member("ten_b", 5)})}, kJan1);
  in.tenant_devices["ten_a"] = 1;  // ten_a holds one of the two devices
  CHECK(*fifo.choose(in).group_id == "grp_a");
  CHECK(*fair.choose(in).group_id == "grp_b");
  // The shares change, the choice changes.
  in.tenant_devices = {{"ten_b", 1}};
  CHECK(*fair.choose(in).group_id == "grp_a");
  // Equal shares: priority, then age.
  in.tenant_devices = {};
  in.groups.push_back(group("grp_c", 300, {member("ten_c", 5, std::nullopt, 3)}));
  CHECK(*fair.choose(in).group_id == "grp_c");
  // A mixed group counts for the tenant with the most members in it.
  const Dispatcher& d = fair;
  auto mixed = group("grp_m", 100, {member("ten_x", 1), member("ten_y", 1), member("ten_y", 1)});
  CHECK(d.unit_of(mixed, in, *profile("cpu")).tenant == "ten_y");
}

// Six devices and two tenants with always more groups waiting than devices: each free device
// asks `fair`, claims what it chose, and (after the fill) the device that has run longest frees
// up and asks again. Returns the devices each tenant holds, averaged over the churn steps.
std::pair<double, double> contended_shares(double weight_a, double weight_b) {
  const Dispatcher fair = make("fair");
  constexpr int kDevices = 6, kSteps = 60;
  std::vector<storage::ClaimableGroup> waiting;
  int next = 0;
  auto add = [&](const std::string& tenant, double weight) {  // interleaved ages, a first
    auto m = member(tenant, 5);
    m.tenant_weight = weight;
    waiting.push_back(group("grp_" + std::to_string(next), 100 + next, {m}));
    ++next;
  };
  for (int i = 0; i < 2 * kDevices; ++i) {
    add("ten_a", weight_a);
    add("ten_b", weight_b);
  }
  std::vector<std::string> holder(kDevices);  // tenant on each device, "" when free
  std::unordered_map<std::string, double> held;
  double sum_a = 0, sum_b = 0;
  for (int step = 0; step < kDevices + kSteps; ++step) {
    const int dev = step % kDevices;
    if (!holder[static_cast<size_t>(dev)].empty()) held[holder[static_cast<size_t>(dev)]] -= 1;  // its round ended
    DispatchInput in = input(waiting, kJan1, {{"cpu:" + std::to_string(dev), profile("cpu")}});
    in.total_devices = kDevices;
    for (const auto& [t, n] : held)
      if (n > 0) in.tenant_devices[t] = n;
    auto c = fair.choose(in);
    REQUIRE(c.group_id);
    auto it = std::find_if(waiting.begin(), waiting.end(), [&](const auto& g) { return g.id == *c.group_id; });
    REQUIRE(it != waiting.end());
    const std::string tenant = it->members.front().tenant_id;
    const double weight = it->members.front().tenant_weight;
    waiting.erase(it);
    add(tenant, weight);  // the tenant always has more work waiting
    holder[static_cast<size_t>(dev)] = tenant;
    held[tenant] += 1;
    if (step >= kDevices) {
      sum_a += held["ten_a"];
      sum_b += held["ten_b"];
    }
  }
  return {sum_a / kSteps, sum_b / kSteps};
}

TEST_CASE("dispatch: fair is weighted: a tenant of weight 2 holds about twice the devices of one of weight 1") {
  const auto [a1, b1] = contended_shares(1, 1);
  CHECK(a1 == Approx(3).margin(0.5));
  CHECK(b1 == Approx(3).margin(0.5));
  const auto [a2, b2] = contended_shares(2, 1);
  CHECK(a2 + b2 == Approx(6));
  CHECK(a2 / b2 == Approx(2).margin(0.25));  // dominant shares 4/6 and 2/6
  // 1 : 5 on six devices: 1 and 5. (1 : 3 settles at 2 and 4, the nearest whole split.)
  const auto [a5, b5] = contended_shares(1, 5);
  CHECK(a5 == Approx(1).margin(0.2));
  CHECK(b5 == Approx(5).margin(0.2));
  // The weight reaches the share through the claimable members: shares ÷ weight decide.
  auto in = input({group("grp_a", 100, {member("ten_a", 5)}), group("grp_b", 200, {member("ten_b", 5)})}, kJan1);
  in.groups[0].members[0].tenant_weight = 4;
  in.tenant_devices = {{"ten_a", 1.5}, {"ten_b", 0.5}};  // 0.75/4 < 0.25/1: ten_a is further below its share
  CHECK(*make("fair").choose(in).group_id == "grp_a");
  in.groups[0].members[0].tenant_weight = 1;
  CHECK(*make("fair").choose(in).group_id == "grp_b");
}

TEST_CASE("dispatch: carbon holds a deferrable unit in a dirty hour and runs it when no slack is left") {
  testing::TempDir dir;
  const CarbonIntensity carbon = test_series(dir);
  const Dispatcher d = make("carbon", &carbon);
  const int64_t now = kJan1 + 30 * 60;  // 00:30Z, 900 g/kWh; 02:00Z is the first clean hour

  // Far deadline, ten rounds left (600 s at the prior): held until the next hour.
  auto far = input({group("grp_far", kJan1, {member("ten_a", 10, (kJan1 + 30 * 24 * kHour) * 1000)})}, now);
  auto c = d.choose(far);
  CHECK_FALSE(c.group_id);
  CHECK(c.held == 1);
  REQUIRE(c.retry_at_ms);
  CHECK(*c.retry_at_ms == (kJan1 + kHour) * 1000);
  REQUIRE(c.waiting.count("grp_far"));
  CHECK(c.waiting["grp_far"].reason == WaitReason::kCarbon);
  CHECK(c.waiting["grp_far"].text.rfind("carbon: 900 g/kWh now", 0) == 0);

  // A deadline that leaves no slack (600 s of work due in 600 s): runs now, dirty hour or not.
  auto near = input({group("grp_near", kJan1, {member("ten_a", 10, (now + 600) * 1000)})}, now);
  c = d.choose(near);
  REQUIRE(c.group_id);
  CHECK(*c.group_id == "grp_near");
  CHECK(c.held == 0);
  CHECK(c.limit_watts == 65);  // a CPU slot's one point

  // The same unit as the far one, in a clean hour: runs.
  far.now_unix_ms = (kJan1 + 2 * kHour + 60) * 1000;
  c = d.choose(far);
  REQUIRE(c.group_id);
  CHECK(*c.group_id == "grp_far");

  // Both waiting at 00:30: the held one steps aside, the urgent one runs.
  auto both = input({group("grp_far", kJan1, {member("ten_a", 10, (kJan1 + 30 * 24 * kHour) * 1000)}),
                     group("grp_near", kJan1 + 1, {member("ten_a", 10, (now + 600) * 1000)})},
                    now);
  c = d.choose(both);
  REQUIRE(c.group_id);
  CHECK(*c.group_id == "grp_near");
  CHECK(c.waiting.count("grp_far"));
  CHECK(c.considered == std::vector<std::string>{"grp_far", "grp_near"});

  // The last round of a job waits for the cleanest start within its slack: 02:00Z.
  auto last = input({group("grp_last", kJan1, {member("ten_a", 1, (kJan1 + 30 * 24 * kHour) * 1000)})}, now);
  c = d.choose(last);
  REQUIRE(c.retry_at_ms);
  CHECK(*c.retry_at_ms == (kJan1 + 2 * kHour) * 1000);
  CHECK(c.waiting["grp_last"].text ==
        "carbon: 900 g/kWh now, 100 g/kWh at 2026-01-01T02:00:00.000Z within slack (must start by "
        "2026-01-30T23:59:00.000Z)");
  // A deadline between now and the clean hour leaves no room to wait for it.
  auto tight = input({group("grp_tight", kJan1, {member("ten_a", 1, (now + 20 * 60) * 1000)})}, now);
  CHECK(d.choose(tight).group_id);
}

TEST_CASE("dispatch: without a deadline a unit is deferrable for at most the horizon") {
  testing::TempDir dir;
  const CarbonIntensity carbon = test_series(dir);
  const Dispatcher d = make("carbon", &carbon);
  const int64_t now = kJan1 + 30 * 60;
  auto in = input({group("grp_free", kJan1, {member("ten_a", 10)})}, now);
  CHECK(d.choose(in).held == 1);  // first seen now: 24 h of slack
  in.first_seen_ms["grp_free"] = (now - 24 * kHour) * 1000;  // it has waited the whole horizon
  CHECK(d.choose(in).group_id);
  // Measured rounds replace the prior: 10 rounds of 1 h leave no slack before a deadline 10 h away.
  auto dated = input({group("grp_dated", kJan1, {member("ten_a", 10, (now + 10 * kHour) * 1000)})}, now);
  CHECK(d.choose(dated).held == 1);
  dated.round_seconds["grp_dated"] = kHour;
  CHECK(d.choose(dated).group_id);
  // fifo never holds.
  CHECK(make("fifo").choose(input({group("grp_free", kJan1, {member("ten_a", 10)})}, now)).group_id);
}

TEST_CASE("dispatch: carbon asks again at every round boundary through hold()") {
  testing::TempDir dir;
  const CarbonIntensity carbon = test_series(dir);
  const Dispatcher d = make("carbon", &carbon);
  const auto g = group("grp_run", kJan1, {member("ten_a", 10, (kJan1 + 30 * 24 * kHour) * 1000)});
  DispatchInput ctx;
  ctx.now_unix_ms = (kJan1 + 30 * 60) * 1000;
  auto h = d.hold(g, {"cpu:0", profile("cpu")}, ctx);
  REQUIRE(h);
  CHECK(h->retry_at_ms == (kJan1 + kHour) * 1000);
  CHECK(h->reason.rfind("carbon: ", 0) == 0);
  ctx.now_unix_ms = (kJan1 + 3 * kHour) * 1000;
  CHECK_FALSE(d.hold(g, {"cpu:0", profile("cpu")}, ctx));
  CHECK_FALSE(make("fifo").hold(g, {"cpu:0", profile("cpu")}, ctx));
}

TEST_CASE("dispatch: energy chooses the device and the power limit by Zeus's cost") {
  const auto groups = std::vector<storage::ClaimableGroup>{group("grp_1", 100, {member("ten_a", 5)}),
                                                           group("grp_2", 200, {member("ten_a", 5)})};
  // Identical CPU slots: a tie, so the asking device takes the first group, as under fifo.
  auto slots = input(groups, kJan1, {{"cpu:1", profile("cpu")}, {"cpu:0", profile("cpu")}});
  auto c = make("energy").choose(slots);
  REQUIRE(c.group_id);
  CHECK(*c.group_id == "grp_1");
  CHECK_FALSE(c.left_to_other);

  // A V100 asks while a CPU slot (65 W, the same speed in the profiles) is free: the slot is
  // cheaper, so the V100 leaves both groups to it; fifo would take the first.
  auto mixed = input(groups, kJan1, {{"cuda:0", profile("V100")}, {"cpu:0", profile("cpu")}});
  c = make("energy").choose(mixed);
  CHECK_FALSE(c.group_id);
  CHECK(c.left_to_other);
  CHECK(c.waiting["grp_1"] == WaitNote{WaitReason::kBetterDevice, "energy: left to cpu:0, a better fit"});
  CHECK(*make("fifo").choose(mixed).group_id == "grp_1");

  // The V100 alone: it takes the group, at the limit Zeus's cost picks. η = 1 (energy only):
  // the limit with the least energy per unit of work; η = 0 (time only): the highest limit.
  const PowerProfile& v100 = *profile("V100");
  REQUIRE(v100.has_power_limits());
  auto alone = input(groups, kJan1, {{"cuda:0", &v100}});
  double best = 0, least = 1e300;
  for (const auto& p : v100.points)
    if (p.busy_watts * p.relative_time < least) {
      least = p.busy_watts * p.relative_time;
      best = p.limit_watts;
    }
  c = make("energy", nullptr, 1.0).choose(alone);
  REQUIRE(c.group_id);
  CHECK(c.limit_watts == Approx(best));
  CHECK(best < v100.max_limit_watts());
  c = make("energy", nullptr, 0.0).choose(alone);
  CHECK(c.limit_watts == Approx(v100.max_limit_watts()));
}

TEST_CASE("dispatch: a group whose clients keep state on this host never goes to a cluster GPU") {
  auto fedema = member("ten_a", 5);
  fedema.keeps_client_state = true;
  const auto groups = std::vector<storage::ClaimableGroup>{group("grp_ema", 100, {member("ten_b", 5), fedema}),
                                                           group("grp_avg", 200, {member("ten_a", 5)})};
  const FreeDevice cluster_gpu{"slurm:node1:v100:0", profile("V100"), /*remote=*/true};
  const FreeDevice cpu{"cpu:0", profile("cpu")};
  REQUIRE(make("fifo").unit_of(groups[0], input(groups, kJan1), *cpu.profile).host_local);
  CHECK_FALSE(make("fifo").unit_of(groups[1], input(groups, kJan1), *cpu.profile).host_local);
  for (const std::string policy : {"fifo", "fair", "energy"}) {
    INFO(policy);
    // The cluster GPU asks alone: it passes over the older FedEMA group and takes the other.
    auto c = make(policy).choose(input(groups, kJan1, {cluster_gpu}));
    REQUIRE(c.group_id);
    CHECK(*c.group_id == "grp_avg");
    REQUIRE(c.waiting.count("grp_ema"));
    CHECK(c.waiting["grp_ema"].reason == WaitReason::kNoFit);
    CHECK_THAT(c.waiting["grp_ema"].text, Catch::Contains("keeps client state on the service's host"));
    // A host device asks: it takes the FedEMA group.
    c = make(policy).choose(input(groups, kJan1, {cpu, cluster_gpu}));
    REQUIRE(c.group_id);
    CHECK(*c.group_id == "grp_ema");
  }
  // Under energy a cheaper remote CPU slot takes a plain group from the host V100 that asks,
  // but not the FedEMA group: the V100 keeps that one.
  const FreeDevice host_v100{"cuda:0", profile("V100")};
  const FreeDevice remote_cpu{"slurm:node1:cpu:0", profile("cpu"), /*remote=*/true};
  auto c = make("energy").choose(input({groups[1]}, kJan1, {host_v100, remote_cpu}));
  CHECK_FALSE(c.group_id);
  CHECK(c.left_to_other);
  c = make("energy").choose(input({groups[0]}, kJan1, {host_v100, remote_cpu}));
  REQUIRE(c.group_id);
  CHECK(*c.group_id == "grp_ema");
  CHECK_FALSE(c.left_to_other);
}

TEST_CASE("dispatch: bad options are refused") {
  DispatchOptions o;
  o.policy = "greedy";
  CHECK(Dispatcher::create(o).status().is_invalid_argument());
  o.policy = "carbon";  // without an intensity
  CHECK(Dispatcher::create(o).status().is_invalid_argument());
  o.policy = "energy";
  o.eta = 2;
  CHECK(Dispatcher::create(o).status().is_invalid_argument());
  o.eta = 0.5;
  o.carbon_horizon_hours = 0;
  CHECK(Dispatcher::create(o).status().is_invalid_argument());
  o.carbon_horizon_hours = 24;
  o.prior_round_seconds = 0;
  CHECK(Dispatcher::create(o).status().is_invalid_argument());
  o.prior_round_seconds = 1;
  CHECK(Dispatcher::create(o).ok());
}

TEST_CASE("dispatch: the board keeps one note per waiting group") {
  PlacementBoard b;
  const WaitNote carbon{WaitReason::kCarbon, "carbon: 900 g/kWh now"};
  const WaitNote left{WaitReason::kBetterDevice, "energy: left to cpu:0, a better fit"};
  b.update({"grp_1", "grp_2"}, {{"grp_1", carbon}, {"grp_2", left}});
  CHECK(b.note("grp_1") == carbon);
  b.update({"grp_1"}, {});  // looked at again, no longer waits
  CHECK_FALSE(b.note("grp_1"));
  CHECK(b.note("grp_2") == left);
  b.set("grp_3", {WaitReason::kCarbon, "carbon: x"});
  CHECK(b.note("grp_3")->text == "carbon: x");
  b.clear("grp_3");
  b.clear("grp_2");
  CHECK_FALSE(b.note("grp_2"));
  CHECK_FALSE(b.note("grp_3"));
}

TEST_CASE("waiting: the store's blocks come first, then the policy's note, then the devices") {
  const WaitNote carbon{WaitReason::kCarbon, "carbon: 900 g/kWh now"};
  DeviceAvailability two_busy{2, 0, 2, false};
  DeviceAvailability one_free{2, 1, 1, false};
  storage::UnclaimedGroup g{"grp_1", false, false};

  // Over budget and at max_devices both: budget wins, whatever the policy said.
  storage::UnclaimedGroup blocked{"grp_1", true, true};
  CHECK(wait_reason(blocked, carbon, one_free).reason == WaitReason::kBudget);
  blocked.over_budget = false;
  CHECK(wait_reason(blocked, carbon, one_free).reason == WaitReason::kMaxDevices);
  // Claimable: the policy's note as it is.
  CHECK(wait_reason(g, carbon, two_busy) == carbon);
  // No note: the devices say why.
  const WaitNote busy = wait_reason(g, std::nullopt, two_busy);
  CHECK(busy.reason == WaitReason::kNoFreeDevice);
  CHECK(busy.text == "all 2 devices are busy, draining or drained (2 training)");
  CHECK(wait_reason(g, std::nullopt, DeviceAvailability{}).text == "mufld trains on no device (--devices none)");
  CHECK(wait_reason(g, std::nullopt, one_free).reason == WaitReason::kPending);
  // Sequential grouping: a free device does not help while another group trains.
  DeviceAvailability sequential{2, 1, 1, true};
  CHECK(wait_reason(g, std::nullopt, sequential).reason == WaitReason::kNoFreeDevice);
  sequential.busy = 0;
  sequential.free = 2;
  CHECK(wait_reason(g, std::nullopt, sequential).reason == WaitReason::kPending);
}

TEST_CASE("waiting: every reason has a distinct name and is counted, zeros included") {
  std::set<std::string> names;
  for (WaitReason r : kAllWaitReasons) names.insert(to_string(r));
  CHECK(names == std::set<std::string>{"budget", "max_devices", "storage", "carbon", "better_device",
                                       "no_fit", "no_free_device", "pending"});
  const auto counts = count_by_reason({{"grp_1", {WaitReason::kCarbon, "a"}},
                                       {"grp_2", {WaitReason::kCarbon, "b"}},
                                       {"grp_3", {WaitReason::kBudget, "c"}}});
  CHECK(counts.size() == std::size(kAllWaitReasons));
  CHECK(counts.at(WaitReason::kCarbon) == 2);
  CHECK(counts.at(WaitReason::kBudget) == 1);
  CHECK(counts.at(WaitReason::kPending) == 0);
}
