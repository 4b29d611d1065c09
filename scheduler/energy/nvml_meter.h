#pragma once
// NVML: NVIDIA's management library, the best meter for a CUDA GPU. mufld loads
// libnvidia-ml.so.1 with dlopen at start-up instead of linking it, so the same binary starts
// and trains on a machine without an NVIDIA driver (it then meters GPUs, if any, with the
// power model). Read: nvmlDeviceGetTotalEnergyConsumption (mJ since the driver loaded; Volta
// and newer), nvmlDeviceGetPowerUsage (mW), nvmlDeviceGetPowerManagementLimitConstraints and
// nvmlDeviceGetPowerManagementLimit (mW); set: nvmlDeviceSetPowerManagementLimit (mW; needs
// root). The NVML index of `cuda:I` is I: run mufld with CUDA_DEVICE_ORDER=PCI_BUS_ID so that
// CUDA numbers the GPUs as NVML does.
//
// NvmlApi is the seam: tests fill in its function table with a fake device.
//
// Thread safety: NvmlApi is immutable once loaded and NVML itself is thread-safe; a NvmlMeter
// may be called from any thread.
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>

#include "core/result.h"
#include "scheduler/energy/energy_meter.h"

namespace mufl::scheduler {

// The NVML functions mufl uses. Each returns an nvmlReturn_t: 0 is NVML_SUCCESS.
struct NvmlApi {
  using DeviceHandle = void*;  // nvmlDevice_t
  static constexpr int kSuccess = 0;
  static constexpr int kErrorInvalidArgument = 2;
  static constexpr int kErrorNotSupported = 3;
  static constexpr int kErrorNoPermission = 4;

  std::function<int(unsigned index, DeviceHandle*)> device_by_index;         // nvmlDeviceGetHandleByIndex_v2
  std::function<int(DeviceHandle, unsigned long long* mj)> total_energy;     // nvmlDeviceGetTotalEnergyConsumption
  std::function<int(DeviceHandle, unsigned* mw)> power_usage;                // nvmlDeviceGetPowerUsage
  std::function<int(DeviceHandle, unsigned* min_mw, unsigned* max_mw)> limit_constraints;
  std::function<int(DeviceHandle, unsigned* mw)> power_limit;                // nvmlDeviceGetPowerManagementLimit
  std::function<int(DeviceHandle, unsigned mw)> set_power_limit;             // nvmlDeviceSetPowerManagementLimit

  // dlopen("libnvidia-ml.so.1"), dlsym of every function above and nvmlInit_v2, then
  // nvmlInit_v2(). kUnavailable, saying why, when the library is missing (no driver), lacks a
  // function, or does not initialise. The library stays loaded for the life of the process.
  static Result<std::shared_ptr<const NvmlApi>> load();
};

class NvmlMeter final : public EnergyMeter {
 public:
  // The meter of NVML device `index`. kNotFound when NVML has no such device;
  // kFailedPrecondition when the device has no energy counter (older than Volta) or no power
  // reading. Reads the counter once: the zero of energy_joules().
  static Result<std::unique_ptr<NvmlMeter>> open(std::shared_ptr<const NvmlApi> api, unsigned index);

  std::string name() const override { return "nvml"; }
  // The counter's joules since open(). A counter that goes back (the driver reloaded) restarts
  // from its new value; a failed read returns the last good value.
  double energy_joules() override;
  // nvmlDeviceGetPowerUsage; the last good value when a read fails.
  double power_watts() override;
  std::optional<PowerLimits> power_limits() override;
  // Sets the power limit. kInvalidArgument outside the device's constraints;
  // kPermissionDenied when NVML says mufld may not (not root); kFailedPrecondition otherwise.
  Status set_power_limit(double watts) override;

 private:
  NvmlMeter(std::shared_ptr<const NvmlApi> api, NvmlApi::DeviceHandle device, unsigned index,
            unsigned long long start_mj);

  std::shared_ptr<const NvmlApi> api_;
  NvmlApi::DeviceHandle device_;
  unsigned index_;
  std::mutex mu_;
  unsigned long long last_mj_;
  double joules_ = 0;
  double watts_ = 0;
};

}  // namespace mufl::scheduler
