#include "scheduler/energy/nvml_meter.h"

#include <catch2/catch.hpp>

using namespace mufl;
using namespace mufl::scheduler;

namespace {

// One fake GPU behind the NVML function table.
struct FakeGpu {
  unsigned long long energy_mj = 123'456'789;  // since the driver loaded, long before mufld
  unsigned power_mw = 71'500;
  unsigned min_mw = 100'000, max_mw = 300'000, limit_mw = 300'000;
  int energy_rc = NvmlApi::kSuccess;
  int set_rc = NvmlApi::kSuccess;
  int handle = 0;

  std::shared_ptr<const NvmlApi> api() {
    auto a = std::make_shared<NvmlApi>();
    a->device_by_index = [this](unsigned i, NvmlApi::DeviceHandle* d) {
      if (i != 0) return NvmlApi::kErrorInvalidArgument;
      *d = &handle;
      return NvmlApi::kSuccess;
    };
    a->total_energy = [this](NvmlApi::DeviceHandle d, unsigned long long* mj) {
      REQUIRE(d == &handle);
      *mj = energy_mj;
      return energy_rc;
    };
    a->power_usage = [this](NvmlApi::DeviceHandle, unsigned* mw) {
      *mw = power_mw;
      return NvmlApi::kSuccess;
    };
    a->limit_constraints = [this](NvmlApi::DeviceHandle, unsigned* lo, unsigned* hi) {
      *lo = min_mw;
      *hi = max_mw;
      return NvmlApi::kSuccess;
    };
    a->power_limit = [this](NvmlApi::DeviceHandle, unsigned* mw) {
      *mw = limit_mw;
      return NvmlApi::kSuccess;
    };
    a->set_power_limit = [this](NvmlApi::DeviceHandle, unsigned mw) {
      if (set_rc == NvmlApi::kSuccess) limit_mw = mw;
      return set_rc;
    };
    return a;
  }
};

}  // namespace

TEST_CASE("nvml meter: energy since open from the driver's counter, power in watts") {
  FakeGpu gpu;
  auto meter = NvmlMeter::open(gpu.api(), 0);
  REQUIRE(meter.ok());
  CHECK((*meter)->name() == "nvml");
  CHECK((*meter)->energy_joules() == 0);
  CHECK((*meter)->power_watts() == Approx(71.5));
  gpu.energy_mj += 2'500;  // 2.5 J
  CHECK((*meter)->energy_joules() == Approx(2.5));
  gpu.energy_rc = NvmlApi::kErrorNotSupported;  // a failed read keeps the last value
  gpu.energy_mj += 1'000'000;
  CHECK((*meter)->energy_joules() == Approx(2.5));
  gpu.energy_rc = NvmlApi::kSuccess;
  CHECK((*meter)->energy_joules() == Approx(1002.5));
  gpu.energy_mj = 400;  // the driver reloaded: the counter starts again from 0
  CHECK((*meter)->energy_joules() == Approx(1002.9));
}

TEST_CASE("nvml meter: power limits are read and set within the constraints") {
  FakeGpu gpu;
  auto meter = NvmlMeter::open(gpu.api(), 0);
  REQUIRE(meter.ok());
  auto limits = (*meter)->power_limits();
  REQUIRE(limits);
  CHECK(limits->min_watts == Approx(100));
  CHECK(limits->max_watts == Approx(300));
  CHECK(limits->current_watts == Approx(300));
  CHECK((*meter)->set_power_limit(175).is_ok());
  CHECK(gpu.limit_mw == 175'000);
  CHECK((*meter)->set_power_limit(50).code() == Status::Code::kInvalidArgument);
  CHECK((*meter)->set_power_limit(301).code() == Status::Code::kInvalidArgument);
  gpu.set_rc = NvmlApi::kErrorNoPermission;
  CHECK((*meter)->set_power_limit(200).code() == Status::Code::kPermissionDenied);
  gpu.set_rc = NvmlApi::kErrorNotSupported;
  CHECK((*meter)->set_power_limit(200).code() == Status::Code::kFailedPrecondition);
  CHECK(gpu.limit_mw == 175'000);
}

TEST_CASE("nvml meter: no device, or a device without an energy counter, is refused") {
  FakeGpu gpu;
  CHECK(NvmlMeter::open(gpu.api(), 3).status().code() == Status::Code::kNotFound);
  gpu.energy_rc = NvmlApi::kErrorNotSupported;  // older than Volta
  CHECK(NvmlMeter::open(gpu.api(), 0).status().code() == Status::Code::kFailedPrecondition);
}

TEST_CASE("nvml: loading works or says why on a machine without the driver") {
  auto api = NvmlApi::load();
  if (!api.ok()) {
    CHECK(api.status().code() == Status::Code::kUnavailable);
    CHECK(api.status().message().find("NVML") != std::string::npos);
  } else {
    NvmlApi::DeviceHandle d = nullptr;
    INFO("a driver is here: device 0 answers");
    CHECK((*api)->device_by_index(0, &d) == NvmlApi::kSuccess);
  }
}
