#pragma once
// ModelMeter: the last-resort energy meter, for a device that neither NVML nor RAPL measures.
// It integrates the power its PowerProfile (scheduler/energy/power_profile.h) gives for the device's
// state over time: busy watts at the power limit while the executor runs a work unit on it,
// idle watts otherwise. Time comes from the injected Clock (monotonic_ns), so tests run on fake
// time.
//
// Thread safety: as EnergyMeter.
#include <mutex>
#include <optional>

#include "core/clock.h"
#include "scheduler/energy/energy_meter.h"
#include "scheduler/energy/power_profile.h"

namespace mufl::scheduler {

class ModelMeter final : public EnergyMeter {
 public:
  // `scale`: the share of the profiled device this device stands for, in (0, 1]; a CPU slot of
  // a machine cut into N slots models 1/N of the "cpu" profile (idle and busy watts alike).
  // `limit_watts`: the power limit the busy watts are read at; default the profile's highest.
  // `clock` must outlive the meter. The meter starts idle at 0 J.
  ModelMeter(PowerProfile profile, const Clock& clock, double scale = 1.0,
             std::optional<double> limit_watts = std::nullopt);

  std::string name() const override { return "model"; }
  double energy_joules() override;
  // The model's power in the current state (known at once: no sampling needed).
  double power_watts() override;
  void set_busy(bool busy) override;

  // The profile's limits and the one in force, when the profile has more than one point.
  std::optional<PowerLimits> power_limits() override;
  // Changes the power limit the busy watts are read at (clamped by the profile). Energy up to
  // now is integrated at the old limit first. Always ok.
  Status set_power_limit(double watts) override;
  const PowerProfile& profile() const { return profile_; }

 private:
  double watts_locked() const;
  void advance_locked();

  const PowerProfile profile_;
  const Clock& clock_;
  const double scale_;
  mutable std::mutex mu_;
  double limit_watts_;
  bool busy_ = false;
  int64_t last_ns_;
  double joules_ = 0;
};

}  // namespace mufl::scheduler
