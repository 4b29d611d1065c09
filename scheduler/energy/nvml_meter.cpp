#include "scheduler/energy/nvml_meter.h"

#include <dlfcn.h>

namespace mufl::scheduler {
namespace {

template <typename Fn>
Fn* symbol(void* lib, const char* name, std::string& missing) {
  void* p = ::dlsym(lib, name);
  if (!p) missing += (missing.empty() ? "" : ", ") + std::string(name);
  return reinterpret_cast<Fn*>(p);
}

}  // namespace

Result<std::shared_ptr<const NvmlApi>> NvmlApi::load() {
  // RTLD_NOW: every symbol resolves here or the load fails, never later in the middle of a round.
  void* lib = ::dlopen("libnvidia-ml.so.1", RTLD_NOW | RTLD_LOCAL);
  if (!lib) {
    const char* why = ::dlerror();
    return Status::unavailable(std::string("NVML is not available: ") + (why ? why : "dlopen failed"));
  }
  using Handle = DeviceHandle;
  std::string missing;
  auto init = symbol<int()>(lib, "nvmlInit_v2", missing);
  auto by_index = symbol<int(unsigned, Handle*)>(lib, "nvmlDeviceGetHandleByIndex_v2", missing);
  auto energy = symbol<int(Handle, unsigned long long*)>(lib, "nvmlDeviceGetTotalEnergyConsumption", missing);
  auto power = symbol<int(Handle, unsigned*)>(lib, "nvmlDeviceGetPowerUsage", missing);
  auto constraints = symbol<int(Handle, unsigned*, unsigned*)>(lib, "nvmlDeviceGetPowerManagementLimitConstraints",
                                                               missing);
  auto limit = symbol<int(Handle, unsigned*)>(lib, "nvmlDeviceGetPowerManagementLimit", missing);
  auto set_limit = symbol<int(Handle, unsigned)>(lib, "nvmlDeviceSetPowerManagementLimit", missing);
  if (!missing.empty()) {
    ::dlclose(lib);
    return Status::unavailable("libnvidia-ml.so.1 lacks " + missing);
  }
  if (int rc = init(); rc != kSuccess) {
    ::dlclose(lib);
    return Status::unavailable("nvmlInit_v2 failed with NVML error " + std::to_string(rc));
  }
  auto api = std::make_shared<NvmlApi>();
  api->device_by_index = by_index;
  api->total_energy = energy;
  api->power_usage = power;
  api->limit_constraints = constraints;
  api->power_limit = limit;
  api->set_power_limit = set_limit;
  return std::shared_ptr<const NvmlApi>(std::move(api));
}

Result<std::unique_ptr<NvmlMeter>> NvmlMeter::open(std::shared_ptr<const NvmlApi> api, unsigned index) {
  NvmlApi::DeviceHandle device = nullptr;
  if (int rc = api->device_by_index(index, &device); rc != NvmlApi::kSuccess)
    return Status::not_found("NVML has no device " + std::to_string(index) + " (NVML error " + std::to_string(rc) + ")");
  unsigned long long mj = 0;
  if (int rc = api->total_energy(device, &mj); rc != NvmlApi::kSuccess)
    return Status::failed_precondition("NVML device " + std::to_string(index) + " has no energy counter (NVML error " +
                                       std::to_string(rc) + ")");
  unsigned mw = 0;
  if (int rc = api->power_usage(device, &mw); rc != NvmlApi::kSuccess)
    return Status::failed_precondition("NVML device " + std::to_string(index) + " reports no power (NVML error " +
                                       std::to_string(rc) + ")");
  auto meter = std::unique_ptr<NvmlMeter>(new NvmlMeter(std::move(api), device, index, mj));
  meter->watts_ = mw / 1000.0;
  return meter;
}

NvmlMeter::NvmlMeter(std::shared_ptr<const NvmlApi> api, NvmlApi::DeviceHandle device, unsigned index,
                     unsigned long long start_mj)
    : api_(std::move(api)), device_(device), index_(index), last_mj_(start_mj) {}

double NvmlMeter::energy_joules() {
  std::lock_guard lock(mu_);
  unsigned long long mj = 0;
  if (api_->total_energy(device_, &mj) != NvmlApi::kSuccess) return joules_;
  // Below the last reading: the driver reloaded and the counter started again from 0.
  joules_ += static_cast<double>(mj >= last_mj_ ? mj - last_mj_ : mj) / 1000.0;
  last_mj_ = mj;
  return joules_;
}

double NvmlMeter::power_watts() {
  std::lock_guard lock(mu_);
  unsigned mw = 0;
  if (api_->power_usage(device_, &mw) == NvmlApi::kSuccess) watts_ = mw / 1000.0;
  return watts_;
}

std::optional<PowerLimits> NvmlMeter::power_limits() {
  unsigned min_mw = 0, max_mw = 0, now_mw = 0;
  if (api_->limit_constraints(device_, &min_mw, &max_mw) != NvmlApi::kSuccess) return std::nullopt;
  if (api_->power_limit(device_, &now_mw) != NvmlApi::kSuccess) return std::nullopt;
  return PowerLimits{min_mw / 1000.0, max_mw / 1000.0, now_mw / 1000.0};
}

Status NvmlMeter::set_power_limit(double watts) {
  unsigned min_mw = 0, max_mw = 0;
  if (int rc = api_->limit_constraints(device_, &min_mw, &max_mw); rc != NvmlApi::kSuccess)
    return Status::failed_precondition("NVML device " + std::to_string(index_) +
                                       " has no settable power limit (NVML error " + std::to_string(rc) + ")");
  const double mw = watts * 1000.0;
  if (!(mw >= min_mw && mw <= max_mw))
    return Status::invalid_argument("a power limit of " + std::to_string(watts) + " W is outside " +
                                    std::to_string(min_mw / 1000.0) + "–" + std::to_string(max_mw / 1000.0) + " W");
  const int rc = api_->set_power_limit(device_, static_cast<unsigned>(mw + 0.5));
  if (rc == NvmlApi::kErrorNoPermission)
    return Status::permission_denied("setting a GPU power limit needs root (NVML_ERROR_NO_PERMISSION)");
  if (rc != NvmlApi::kSuccess)
    return Status::failed_precondition("nvmlDeviceSetPowerManagementLimit failed with NVML error " + std::to_string(rc));
  return Status::ok();
}

}  // namespace mufl::scheduler
