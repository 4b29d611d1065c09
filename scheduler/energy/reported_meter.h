#pragma once
// ReportedMeter: the meter of a device that is measured elsewhere: a Slurm cluster's GPU, whose
// rounds run in a `mufl-worker` job that meters its own GPU (NVML, else the power model of its
// profile) and reports each round's joules (docs/cluster.md). The meter counts those reports:
// a work unit's energy is what the worker reported for it. Between rounds, and before the first
// report, it adds nothing (the node's idle power is the cluster's, not this service's).
//
// Its power limit is the one the worker is asked to apply: placement sets it for a group (the
// energy and carbon policies choose one on the GPU's profile), the cluster backend sends it with
// each round, and the worker sets it on its GPU (NVML) or in its power model.
//
// Thread safety: all methods may be called from any thread at once.
#include <mutex>
#include <optional>
#include <string>

#include "scheduler/energy/energy_meter.h"
#include "scheduler/energy/power_profile.h"

namespace mufl::scheduler {

class ReportedMeter final : public EnergyMeter {
 public:
  // `name`: what name() says until the first report ("model": the worker's fallback).
  // `profile`: the GPU's power profile; with several operating points its limit can be set,
  // from the profile's lowest to its highest (the default).
  explicit ReportedMeter(std::string name = "model", std::optional<PowerProfile> profile = std::nullopt);

  std::string name() const override;
  double energy_joules() override;
  // The last report's mean power while the device is busy; 0 when idle.
  double power_watts() override;
  void set_busy(bool busy) override;
  // Adds a report: `joules` (finite, >= 0) over `seconds`, measured by `meter` ("nvml", "rapl",
  // "model"), which name() says from now on.
  Status add_reported(double joules, const std::string& meter, double seconds) override;
  std::optional<PowerLimits> power_limits() override;
  // Clamps `watts` into the profile's range; kFailedPrecondition without a profile of limits.
  Status set_power_limit(double watts) override;

 private:
  mutable std::mutex mu_;
  std::string name_;
  double joules_ = 0;
  double last_watts_ = 0;
  bool busy_ = false;
  std::optional<PowerProfile> profile_;
  double limit_watts_ = 0;
};

}  // namespace mufl::scheduler
