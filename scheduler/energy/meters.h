#pragma once
// Which energy meter each device gets, best first: NVML for a CUDA GPU, Intel RAPL for CPU
// slots, else the power model of the device's profile (docs/energy.md, "Meters"). mufld meters
// its training devices with it (scheduler/device_inventory.h) and mufl-client its own device
// (edge/agent.h), so a client's joules are measured as the server's are.
//
// Thread safety: make_metered_devices is a pure function of its inputs and the machine.
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "core/clock.h"
#include "core/result.h"
#include "scheduler/devices.h"
#include "scheduler/energy/energy_meter.h"
#include "scheduler/energy/nvml_meter.h"

namespace mufl::scheduler {

struct MeteredDevice {
  Device device;
  std::unique_ptr<EnergyMeter> meter;
  std::string profile;  // the power profile's model when the meter is "model"; empty otherwise
};

struct MeterOptions {
  // "auto": best first (NVML, RAPL, model); "model": the power model for every device (for
  // tests and machines whose counters should not be trusted).
  std::string mode = "auto";
  std::string rapl_root = "/sys/class/powercap";
  // How NVML is loaded; tests pass a fake. Default NvmlApi::load.
  std::function<Result<std::shared_ptr<const NvmlApi>>()> load_nvml;
  // Profile of a GPU that NVML does not meter (scheduler/energy/power_profile.h). Default "V100".
  std::string gpu_profile = "V100";
  // Profile of one CPU slot: every slot draws the profile's power on its own. Default "cpu".
  std::string cpu_profile = "cpu";
};

// A meter for every device, best first. kInvalidArgument for an unknown mode or a profile that
// does not exist. `clock` must outlive the meters. Logs which meter each device got and why a
// better one was not available.
Result<std::vector<MeteredDevice>> make_metered_devices(const std::vector<Device>& devices, const MeterOptions& options,
                                                        const Clock& clock);

}  // namespace mufl::scheduler
