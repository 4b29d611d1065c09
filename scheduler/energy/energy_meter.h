#pragma once
// EnergyMeter: how mufl reads the energy one device used. Every device has one meter, chosen best
// first when mufld starts (scheduler/device_inventory.h): NVML for a CUDA GPU
// (scheduler/energy/nvml_meter.h), Intel RAPL for CPU slots (scheduler/energy/rapl_meter.h), else a
// power model from the device's profile (scheduler/energy/model_meter.h). docs/energy.md ("Meters")
// states what each measures and how a CPU slot gets its share of a package.
//
// Thread safety: every implementation may be called from any thread at once (the worker that
// trains on the device, HTTP handlers that show it, the metrics scrape).
#include <optional>
#include <string>

#include "core/status.h"

namespace mufl::scheduler {

// The power limits of a device whose limit can be set (NVML); watts.
struct PowerLimits {
  double min_watts = 0;
  double max_watts = 0;
  double current_watts = 0;
};

class EnergyMeter {
 public:
  virtual ~EnergyMeter() = default;

  // "nvml", "rapl" or "model": the source of the readings (a bounded metric label).
  virtual std::string name() const = 0;
  // Joules this device used since the meter was created: monotonic, never decreases, whatever
  // the hardware counter does (wrap-around, a failed read). Reads the hardware (a file read or
  // an NVML call); does not block otherwise.
  virtual double energy_joules() = 0;
  // The device's power now (or over the last sampling interval), in watts; 0 before the
  // meter has two readings to go on.
  virtual double power_watts() = 0;
  // The executor says when the device starts and stops running a work unit. Meters that
  // measure ignore it; the model meter integrates busy watts while busy, and the RAPL meter
  // uses it to split a package's energy between CPU slots. Idempotent.
  virtual void set_busy(bool /*busy*/) {}
  // The device's power limits when they can be read (NVML, or a power model whose profile has
  // several limits); nullopt otherwise.
  virtual std::optional<PowerLimits> power_limits() { return std::nullopt; }
  // Sets the power limit, within power_limits(). kFailedPrecondition for a device whose limit
  // cannot be set (the default); the meters that can say why else they failed.
  virtual Status set_power_limit(double /*watts*/) {
    return Status::failed_precondition("this device's power limit cannot be set");
  }
  // Energy measured elsewhere and reported here (a cluster GPU's worker: ReportedMeter,
  // scheduler/energy/reported_meter.h). kFailedPrecondition for a meter that measures itself.
  virtual Status add_reported(double /*joules*/, const std::string& /*meter*/, double /*seconds*/) {
    return Status::failed_precondition("this meter measures its device; it takes no reports");
  }
};

}  // namespace mufl::scheduler
