#include "scheduler/placement/placement.h"

#include <catch2/catch.hpp>

#include <fstream>

#include "scheduler/energy/carbon_intensity.h"
#include "tests/support/temp_dir.h"

using namespace mufl;
using namespace mufl::scheduler;

namespace {
PowerProfile gpu(const std::string& model, double speed) {
  PowerProfile p;
  p.model = std::string(model);
  p.idle_watts = 20;
  // Energy per unit of work: 100 W·1.5 = 150 at 100 W, 150·1.1 = 165 at 200 W, 200 at 300 W.
  p.points = {{100, 100, 1.5}, {200, 150, 1.1}, {300, 200, 1.0}};
  p.relative_speed = speed;
  return p;
}

Node node(const std::string& name, const PowerProfile* p, int devices) {
  Node n;
  n.name = std::string(name);
  n.profile = p;
  n.devices.assign(static_cast<size_t>(devices), DeviceLoad{});
  n.cpu_milli_free = 8000;
  n.memory_mib_free = 16384;
  return n;
}

WorkUnit unit(double work, int devices = 1, double share = 1) {
  WorkUnit u;
  u.id = std::string("u");
  u.tenant = std::string("t");
  u.work_s = work;
  u.remaining_work_s = work;
  u.devices = devices;
  u.device_share = share;
  u.cpu_milli = 1000;
  u.memory_mib = 1024;
  return u;
}
}  // namespace

TEST_CASE("placement: normalise maps raw scores onto 0..100") {
  std::vector<double> s = {-5, 0, 15};
  normalise_scores(s);
  CHECK(s == std::vector<double>{0, 25, 100});
  std::vector<double> same = {3, 3};
  normalise_scores(same);
  CHECK(same == std::vector<double>{100, 100});
  std::vector<double> none;
  normalise_scores(none);
  CHECK(none.empty());
}

TEST_CASE("placement: ResourceFit refuses with a reason per node") {
  PowerProfile p = gpu("X", 1);
  auto fit = make_resource_fit();
  PlacementState st;
  Node n = node("n", &p, 2);
  CHECK(fit->filter(st, unit(10), n) == nullptr);
  CHECK(std::string(fit->filter(st, unit(10, 3), n)) == "too few idle devices");
  WorkUnit big = unit(10);
  big.cpu_milli = 9000;
  CHECK(std::string(fit->filter(st, big, n)) == "insufficient cpu");
  big = unit(10);
  big.memory_mib = 1e6;
  CHECK(std::string(fit->filter(st, big, n)) == "insufficient memory");
  n.devices[0] = {0.7, 1, 300};
  n.devices[1] = {0.5, 1, 300};
  CHECK(fit->filter(st, unit(10, 1, 0.5), n) == nullptr);  // device 1 has room
  CHECK(std::string(fit->filter(st, unit(10, 1, 0.6), n)) == "no device with a free share");
  CHECK(std::string(fit->filter(st, unit(10), n)) == "no idle device");
  Node cpu_only = node("c", nullptr, 0);
  CHECK(std::string(fit->filter(st, unit(10), cpu_only)) == "no devices");
  CHECK(fit->filter(st, unit(10, 0), cpu_only) == nullptr);  // host-only unit
}

TEST_CASE("placement: fifo takes the first node that fits and says why a unit waits") {
  PowerProfile p = gpu("X", 1);
  std::vector<Node> nodes = {node("a", &p, 1), node("b", &p, 2)};
  auto fifo = make_policy("fifo");
  REQUIRE(fifo.ok());
  Decision d = fifo->place(unit(100), nodes, 0);
  REQUIRE(d.kind == Decision::Kind::kPlace);
  CHECK(d.placement.node == 0);
  CHECK(d.placement.limit_watts == 300);
  CHECK(d.placement.run_s == Approx(100));
  d = fifo->place(unit(100, 2), nodes, 0);
  REQUIRE(d.kind == Decision::Kind::kPlace);
  CHECK(d.placement.node == 1);
  CHECK(d.placement.devices == std::vector<int>{0, 1});
  d = fifo->place(unit(100, 4), nodes, 0);
  REQUIRE(d.kind == Decision::Kind::kWait);
  REQUIRE(d.rejections.size() == 2);
  CHECK(d.rejections[0].node == 0);
  CHECK(d.rejections[0].plugin == "ResourceFit");
  CHECK(d.rejections[0].reason == "too few idle devices");
  CHECK(d.reason.find("2 of 2 nodes refused") != std::string::npos);
}

TEST_CASE("placement: a share packs onto a device in use (best fit) at its limit") {
  PowerProfile p = gpu("X", 1);
  std::vector<Node> nodes = {node("a", &p, 3)};
  nodes[0].devices[0] = {0.3, 1, 200};
  nodes[0].devices[2] = {0.6, 1, 100};
  auto fifo = make_policy("fifo");
  Decision d = fifo->place(unit(100, 1, 0.4), nodes, 0);
  REQUIRE(d.kind == Decision::Kind::kPlace);
  CHECK(d.placement.devices == std::vector<int>{2});  // fullest device that still fits
  CHECK(d.placement.shares_device);
  CHECK(d.placement.limit_watts == 100);
  CHECK(d.placement.run_s == Approx(150));  // stretched by relative_time 1.5
}

TEST_CASE("placement: energy picks a lower limit when eta is 1 and the highest when eta is 0") {
  PowerProfile p = gpu("X", 1);
  std::vector<Node> nodes = {node("a", &p, 1)};
  PolicyOptions o;
  o.eta = 1;
  auto e1 = make_policy("energy", o);
  REQUIRE(e1.ok());
  Decision d = e1->place(unit(100), nodes, 0);
  REQUIRE(d.kind == Decision::Kind::kPlace);
  CHECK(d.placement.limit_watts == 100);  // 150 J per s of work, the least
  CHECK(d.placement.run_s == Approx(150));
  o.eta = 0;
  auto e0 = make_policy("energy", o);
  d = e0->place(unit(100), nodes, 0);
  REQUIRE(d.kind == Decision::Kind::kPlace);
  CHECK(d.placement.limit_watts == 300);  // fastest
  // eta 1 but a deadline that only the 200 W limit meets (110 s).
  WorkUnit tight = unit(100);
  tight.deadline_s = 120;
  d = e1->place(tight, nodes, 0);
  REQUIRE(d.kind == Decision::Kind::kPlace);
  CHECK(d.placement.limit_watts == 200);
  // A deadline nothing meets: DeadlineFit is soft, so the unit still runs (cheapest).
  tight.deadline_s = 50;
  d = e1->place(tight, nodes, 0);
  REQUIRE(d.kind == Decision::Kind::kPlace);
}

TEST_CASE("placement: energy chooses the more efficient device, and fifo's device when told") {
  PowerProfile slow = gpu("slow", 0.5);   // twice the energy per unit of work
  PowerProfile fast = gpu("fast", 1.0);
  std::vector<Node> nodes = {node("s", &slow, 1), node("f", &fast, 1)};
  PolicyOptions o;
  o.eta = 1;
  Decision d = make_policy("energy", o)->place(unit(100), nodes, 0);
  REQUIRE(d.kind == Decision::Kind::kPlace);
  CHECK(d.placement.node == 1);
  o.energy_device_choice = false;
  d = make_policy("energy", o)->place(unit(100), nodes, 0);
  REQUIRE(d.kind == Decision::Kind::kPlace);
  CHECK(d.placement.node == 0);           // fifo's first fit
  CHECK(d.placement.limit_watts == 100);  // the limit is still chosen
}

TEST_CASE("placement: carbon holds a deferrable unit in a dirty hour and runs it without slack") {
  // Hour 0: 500 g/kWh, hour 1: 100, hour 2: 300, then repeating.
  testing::TempDir dir;
  const std::string path = dir.file("ci.csv");
  std::ofstream(path) << "timestamp,avg_CI\n2022-01-01 00:00:00+00:00,500\n"
                         "2022-01-01 01:00:00+00:00,100\n2022-01-01 02:00:00+00:00,300\n";
  auto ci = CarbonIntensity::load_csv(path);
  REQUIRE(ci.ok());
  PowerProfile p = gpu("X", 1);
  std::vector<Node> nodes = {node("a", &p, 1)};
  PolicyOptions o;
  o.carbon = &*ci;
  o.carbon_origin_unix_s = ci->first_hour();  // time 0 = the file's first hour
  auto carbon = make_policy("carbon", o);
  REQUIRE(carbon.ok());

  WorkUnit u = unit(600);  // ten minutes of work
  u.deadline_s = 3 * 3600;
  Decision d = carbon->place(u, nodes, 0);
  REQUIRE(d.kind == Decision::Kind::kDefer);
  CHECK(d.retry_at_s == 3600);  // the clean hour
  d = carbon->place(u, nodes, 3600);
  CHECK(d.kind == Decision::Kind::kPlace);  // now it is the cleanest start

  u.deadline_s = 600;  // no slack: runs now, in the dirty hour
  d = carbon->place(u, nodes, 0);
  CHECK(d.kind == Decision::Kind::kPlace);
  u.deadline_s = 3 * 3600;
  u.deferrable = false;  // never held
  CHECK(carbon->place(u, nodes, 0).kind == Decision::Kind::kPlace);

  // A unit with more of its job after it keeps pace: it runs when this hour is among the
  // cleanest f = remaining / (remaining + slack) of the hours ahead.
  WorkUnit paced = unit(3600);
  paced.remaining_work_s = 2 * 3600;
  paced.deadline_s = 2 * 3600 + 4 * 3600;  // slack 4 h, f = 1/3; hours 500,100,300,500: 500 waits
  d = carbon->place(paced, nodes, 0);
  REQUIRE(d.kind == Decision::Kind::kDefer);
  CHECK(d.retry_at_s == 3600);
  CHECK(carbon->place(paced, nodes, 3600).kind == Decision::Kind::kPlace);  // 100: among the cleanest
  paced.deadline_s = 2 * 3600 + 1800;  // slack 30 min: no hour to skip
  CHECK(carbon->place(paced, nodes, 0).kind == Decision::Kind::kPlace);
}

TEST_CASE("placement: carbon measures slack at the pace of the device it chose, not the reference's") {
  // Hour 0: 500 g/kWh, hour 1: 100, hour 2: 300, then repeating.
  testing::TempDir dir;
  const std::string path = dir.file("ci.csv");
  std::ofstream(path) << "timestamp,avg_CI\n2022-01-01 00:00:00+00:00,500\n"
                         "2022-01-01 01:00:00+00:00,100\n2022-01-01 02:00:00+00:00,300\n";
  auto ci = CarbonIntensity::load_csv(path);
  REQUIRE(ci.ok());
  PolicyOptions o;
  o.carbon = &*ci;
  o.carbon_origin_unix_s = ci->first_hour();
  auto carbon = make_policy("carbon", o);
  REQUIRE(carbon.ok());
  PowerProfile reference = gpu("ref", 1), fast = gpu("fast", 4), slow = gpu("slow", 0.25);

  // Three hours of reference work due in three hours: no slack on a reference device, so it
  // runs now. On a GPU four times as fast it needs 3 h / 4 x 1.5 (its most frugal limit, the
  // one CarbonCost picks) = 4050 s: 6750 s of slack, enough to wait for the clean hour.
  WorkUnit u = unit(3 * 3600);
  u.deadline_s = 3 * 3600;
  CHECK(carbon->place(u, {node("r", &reference, 1)}, 0).kind == Decision::Kind::kPlace);
  Decision d = carbon->place(u, {node("f", &fast, 1)}, 0);
  REQUIRE(d.kind == Decision::Kind::kDefer);
  CHECK(d.retry_at_s == 3600);
  d = carbon->place(u, {node("f", &fast, 1)}, 3600);
  REQUIRE(d.kind == Decision::Kind::kPlace);
  CHECK(3600 + d.placement.run_s <= static_cast<double>(u.deadline_s));  // held, and still in time

  // One hour of reference work due in three: 2 h of slack at the reference pace, so a
  // reference GPU waits for the clean hour. A GPU at a quarter of the speed has none (4 h at
  // best): it runs now rather than add an hour to a deadline it misses anyway.
  WorkUnit v = unit(3600);
  v.deadline_s = 3 * 3600;
  d = carbon->place(v, {node("r", &reference, 1)}, 0);
  REQUIRE(d.kind == Decision::Kind::kDefer);
  CHECK(d.retry_at_s == 3600);
  d = carbon->place(v, {node("s", &slow, 1)}, 0);
  CHECK(d.kind == Decision::Kind::kPlace);

  // Nothing fits: the unit waits with the nodes' reasons rather than being deferred.
  WorkUnit big = unit(3600, /*devices=*/2);
  big.deadline_s = 10 * 3600;
  d = carbon->place(big, {node("f", &fast, 1)}, 0);
  CHECK(d.kind == Decision::Kind::kWait);
  CHECK(d.rejections.size() == 1);
}

TEST_CASE("placement: fair orders by dominant share, fifo by ready time") {
  WorkUnit a = unit(10), b = unit(10), c = unit(10);
  a.tenant = std::string("heavy");
  a.ready_s = 1;
  b.tenant = std::string("light");
  b.ready_s = 2;
  c.tenant = std::string("heavy");
  c.ready_s = 0;
  std::unordered_map<std::string, double> share = {{"heavy", 0.5}, {"light", 0.1}};
  std::vector<const WorkUnit*> v = {&a, &b, &c};
  make_policy("fair")->order().sort(v, share);
  CHECK(v == std::vector<const WorkUnit*>{&b, &c, &a});
  make_policy("fifo")->order().sort(v, share);
  CHECK(v == std::vector<const WorkUnit*>{&c, &a, &b});
}

TEST_CASE("placement: make_policy refuses unknown names and bad options") {
  for (const std::string& n : policy_names()) {
    PolicyOptions o;
    CarbonIntensity c = CarbonIntensity::constant(100);
    o.carbon = &c;
    auto p = make_policy(n, o);
    REQUIRE(p.ok());
    CHECK(p->name() == n);
  }
  auto bad = make_policy("random");
  REQUIRE_FALSE(bad.ok());
  CHECK(bad.status().is_invalid_argument());
  CHECK(bad.status().message().find("random") != std::string::npos);
  PolicyOptions o;
  o.eta = 1.5;
  CHECK(make_policy("energy", o).status().is_invalid_argument());
  CHECK(make_policy("carbon").status().is_invalid_argument());  // no intensity series
}
