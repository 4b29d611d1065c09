#include "scheduler/device_inventory.h"

#include <catch2/catch.hpp>
#include <filesystem>
#include <fstream>

#include "scheduler/energy/model_meter.h"
#include "tests/support/temp_dir.h"

using namespace mufl;
using namespace mufl::scheduler;
using mufl::testing::TempDir;

namespace {

std::vector<MeteredDevice> model_devices(const Clock& clock, int n) {
  std::vector<MeteredDevice> out;
  for (int i = 0; i < n; ++i) {
    MeteredDevice m;
    m.device = {"cpu:" + std::to_string(i), "cpu"};
    m.meter = std::make_unique<ModelMeter>(*find_power_profile("cpu"), clock);
    m.profile = "cpu";
    out.push_back(std::move(m));
  }
  return out;
}

}  // namespace

TEST_CASE("inventory: a work unit is measured by its device's meter") {
  ManualClock clock;
  DeviceInventory inv(model_devices(clock, 2), clock);
  const auto cpu = *find_power_profile("cpu");
  auto before = inv.list();
  REQUIRE(before.size() == 2);
  CHECK(before[0].name == "cpu:0");
  CHECK(before[0].kind == "cpu");
  CHECK(before[0].state == DeviceState::kIdle);
  CHECK(before[0].meter == "model");
  CHECK(before[0].profile == "cpu");
  CHECK_FALSE(before[0].unit);

  CHECK_FALSE(inv.unit_finished("cpu:0"));  // nothing started
  inv.group_claimed("cpu:0", "grp_a");
  inv.unit_started("cpu:0", "grp_a", 3);
  auto busy = *inv.get("cpu:0");
  CHECK(busy.state == DeviceState::kBusy);
  REQUIRE(busy.unit);
  CHECK(busy.unit->group_id == "grp_a");
  CHECK(busy.unit->round == 3);
  CHECK(busy.power_watts == Approx(cpu.watts_at(1, cpu.max_limit_watts())));
  clock.advance_ms(4'000);
  auto m = inv.unit_finished("cpu:0");
  REQUIRE(m);
  CHECK(m->device == "cpu:0");
  CHECK(m->meter == "model");
  CHECK(m->seconds == Approx(4));
  CHECK(m->joules == Approx(4 * cpu.watts_at(1, cpu.max_limit_watts())));
  CHECK(m->end_unix_ms - m->start_unix_ms == 4'000);
  CHECK(inv.get("cpu:0")->power_watts == Approx(cpu.idle_watts));
  // The other slot idled all along.
  CHECK(inv.get("cpu:1")->energy_joules == Approx(4 * cpu.idle_watts));
  inv.group_released("cpu:0");
  CHECK(inv.get("cpu:0")->state == DeviceState::kIdle);
  CHECK_FALSE(inv.get("cpu:0")->unit);
  CHECK(inv.get("cpu:9").status().is_not_found());
}

TEST_CASE("inventory: drain and resume, idle and busy") {
  ManualClock clock;
  DeviceInventory inv(model_devices(clock, 2), clock, {"cpu:1", "cpu:7"});
  int resumed = 0;
  inv.set_resume_listener([&] { ++resumed; });
  CHECK(inv.get("cpu:1")->state == DeviceState::kDrained);  // drained before the restart
  CHECK_FALSE(inv.may_claim("cpu:1"));

  // Idle → drained at once; resume → idle.
  CHECK(inv.drain("cpu:1")->state == DeviceState::kDrained);  // idempotent
  CHECK(inv.resume("cpu:1")->state == DeviceState::kIdle);
  CHECK(inv.may_claim("cpu:1"));
  CHECK(resumed == 1);

  // Busy → draining: the round finishes, the executor lets the group go → drained.
  inv.group_claimed("cpu:0", "grp_a");
  inv.unit_started("cpu:0", "grp_a", 1);
  CHECK(inv.drain("cpu:0")->state == DeviceState::kDraining);
  CHECK(inv.get("cpu:0")->unit->group_id == "grp_a");
  CHECK_FALSE(inv.may_claim("cpu:0"));
  CHECK(inv.should_release("cpu:0"));
  CHECK(inv.unit_finished("cpu:0"));
  inv.group_released("cpu:0");
  CHECK(inv.get("cpu:0")->state == DeviceState::kDrained);
  CHECK_FALSE(inv.should_release("cpu:0"));
  CHECK(inv.resume("cpu:0")->state == DeviceState::kIdle);

  // Draining, then resumed before the round ended: it keeps its group.
  inv.group_claimed("cpu:0", "grp_b");
  inv.drain("cpu:0");
  CHECK(inv.resume("cpu:0")->state == DeviceState::kBusy);
  CHECK_FALSE(inv.should_release("cpu:0"));
  CHECK(inv.resume("cpu:0")->state == DeviceState::kBusy);  // idempotent
  CHECK(inv.drain("cpu:5").status().is_not_found());
  CHECK(inv.resume("cpu:5").status().is_not_found());
}

TEST_CASE("inventory: meters best first — NVML for GPUs, RAPL for CPU slots, else the model") {
  ManualClock clock;
  const std::vector<Device> devices = {{"cuda:0", "cuda:0"}, {"cpu:0", "cpu"}, {"cpu:1", "cpu"}};
  TempDir sysfs;
  std::filesystem::create_directories(sysfs.file("intel-rapl:0"));
  std::ofstream(sysfs.file("intel-rapl:0/name")) << "package-0\n";
  std::ofstream(sysfs.file("intel-rapl:0/energy_uj")) << "1000\n";
  std::ofstream(sysfs.file("intel-rapl:0/max_energy_range_uj")) << "262143328850\n";
  int gpu = 0;
  auto fake_nvml = [&]() -> Result<std::shared_ptr<const NvmlApi>> {
    auto a = std::make_shared<NvmlApi>();
    a->device_by_index = [&](unsigned, NvmlApi::DeviceHandle* d) { *d = &gpu; return 0; };
    a->total_energy = [](NvmlApi::DeviceHandle, unsigned long long* mj) { *mj = 5; return 0; };
    a->power_usage = [](NvmlApi::DeviceHandle, unsigned* mw) { *mw = 60'000; return 0; };
    a->limit_constraints = [](NvmlApi::DeviceHandle, unsigned*, unsigned*) { return 3; };
    a->power_limit = [](NvmlApi::DeviceHandle, unsigned*) { return 3; };
    a->set_power_limit = [](NvmlApi::DeviceHandle, unsigned) { return 3; };
    return std::shared_ptr<const NvmlApi>(a);
  };
  auto no_nvml = []() -> Result<std::shared_ptr<const NvmlApi>> { return Status::unavailable("no driver"); };

  MeterOptions best;
  best.rapl_root = sysfs.path();
  best.load_nvml = fake_nvml;
  auto got = make_metered_devices(devices, best, clock);
  REQUIRE(got.ok());
  CHECK((*got)[0].meter->name() == "nvml");
  CHECK((*got)[1].meter->name() == "rapl");
  CHECK((*got)[2].meter->name() == "rapl");
  CHECK((*got)[0].profile.empty());

  MeterOptions bare;  // no driver, no RAPL
  bare.rapl_root = sysfs.file("nothing");
  bare.load_nvml = no_nvml;
  got = make_metered_devices(devices, bare, clock);
  REQUIRE(got.ok());
  for (const auto& m : *got) CHECK(m.meter->name() == "model");
  CHECK((*got)[0].profile == "V100");
  CHECK((*got)[1].profile == "cpu");

  MeterOptions model = best;  // --energy-meter model: the model even where counters exist
  model.mode = "model";
  got = make_metered_devices(devices, model, clock);
  REQUIRE(got.ok());
  for (const auto& m : *got) CHECK(m.meter->name() == "model");

  MeterOptions bad = bare;
  bad.mode = "guess";
  CHECK(make_metered_devices(devices, bad, clock).status().is_invalid_argument());
  bad = bare;
  bad.gpu_profile = "no-such-gpu";
  CHECK(make_metered_devices(devices, bad, clock).status().is_invalid_argument());
}

TEST_CASE("inventory: a power limit chosen on the profile is set as a share of the device's range, then restored") {
  ManualClock clock;
  int gpu = 0;
  unsigned limit_mw = 700'000;  // an NVML GPU whose range (200–700 W) is not its profile's
  int set_rc = 0;
  auto api = std::make_shared<NvmlApi>();
  api->device_by_index = [&](unsigned, NvmlApi::DeviceHandle* d) { *d = &gpu; return 0; };
  api->total_energy = [](NvmlApi::DeviceHandle, unsigned long long* mj) { *mj = 0; return 0; };
  api->power_usage = [](NvmlApi::DeviceHandle, unsigned* mw) { *mw = 100'000; return 0; };
  api->limit_constraints = [](NvmlApi::DeviceHandle, unsigned* lo, unsigned* hi) {
    *lo = 200'000;
    *hi = 700'000;
    return 0;
  };
  api->power_limit = [&](NvmlApi::DeviceHandle, unsigned* mw) { *mw = limit_mw; return 0; };
  api->set_power_limit = [&](NvmlApi::DeviceHandle, unsigned mw) {
    if (set_rc == 0) limit_mw = mw;
    return set_rc;
  };
  std::vector<MeteredDevice> devices;
  MeteredDevice nvml;
  nvml.device = {"cuda:0", "cuda:0"};
  auto opened = NvmlMeter::open(api, 0);
  REQUIRE(opened.ok());
  nvml.meter = std::move(*opened);
  devices.push_back(std::move(nvml));
  MeteredDevice modelled;  // a GPU without NVML: the V100 profile's own range (100–250 W)
  modelled.device = {"cuda:1", "cuda:1"};
  modelled.meter = std::make_unique<ModelMeter>(*find_power_profile("V100"), clock);
  modelled.profile = "V100";
  devices.push_back(std::move(modelled));
  devices.push_back(std::move(model_devices(clock, 1)[0]));
  DeviceInventory inv(std::move(devices), clock);

  inv.group_claimed("cuda:0", "grp_a");
  REQUIRE(inv.set_power_limit_fraction("cuda:0", 0.6).is_ok());
  CHECK(limit_mw == 420'000);  // 0.6 × 700 W
  CHECK(inv.get("cuda:0")->power_limits->current_watts == Approx(420));
  REQUIRE(inv.set_power_limit_fraction("cuda:0", 0.1).is_ok());
  CHECK(limit_mw == 200'000);  // clamped to the device's lowest
  inv.group_released("cuda:0");
  CHECK(limit_mw == 700'000);  // the limit from before the group

  set_rc = 4;  // NVML_ERROR_NO_PERMISSION: not root
  inv.group_claimed("cuda:0", "grp_b");
  CHECK(inv.set_power_limit_fraction("cuda:0", 0.5).code() == Status::Code::kPermissionDenied);
  CHECK(limit_mw == 700'000);
  inv.group_released("cuda:0");
  CHECK(limit_mw == 700'000);

  inv.group_claimed("cuda:1", "grp_c");
  REQUIRE(inv.set_power_limit_fraction("cuda:1", 0.6).is_ok());
  CHECK(inv.get("cuda:1")->power_limits->current_watts == Approx(150));  // 0.6 × 250 W
  inv.group_released("cuda:1");
  CHECK(inv.get("cuda:1")->power_limits->current_watts == Approx(250));

  // A CPU slot's profile has one point: no limit to set.
  CHECK(inv.set_power_limit_fraction("cpu:0", 0.5).code() == Status::Code::kFailedPrecondition);
  CHECK(inv.set_power_limit_fraction("cpu:9", 0.5).is_not_found());
}
