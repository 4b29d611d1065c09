#pragma once
// ReportedMeter: the meter of a device that is measured elsewhere: a Slurm cluster's GPU, whose
// rounds run in a `mufl-worker` job that meters its own GPU (NVML, else the power model of its
// profile) and reports each round's joules (docs/cluster.md). The meter counts those reports:
// a work unit's energy is what the worker reported for it. Between rounds, and before the first
// report, it adds nothing (the node's idle power is the cluster's, not this service's).
//
// Thread safety: all methods may be called from any thread at once.
#include <mutex>
#include <string>

#include "scheduler/energy/energy_meter.h"

namespace mufl::scheduler {

class ReportedMeter final : public EnergyMeter {
 public:
  // `name`: what name() says until the first report ("model": the worker's fallback).
  explicit ReportedMeter(std::string name = "model") : name_(std::move(name)) {}

  std::string name() const override;
  double energy_joules() override;
  // The last report's mean power while the device is busy; 0 when idle.
  double power_watts() override;
  void set_busy(bool busy) override;
  // Adds a report: `joules` (finite, >= 0) over `seconds`, measured by `meter` ("nvml", "rapl",
  // "model"), which name() says from now on.
  Status add_reported(double joules, const std::string& meter, double seconds) override;

 private:
  mutable std::mutex mu_;
  std::string name_;
  double joules_ = 0;
  double last_watts_ = 0;
  bool busy_ = false;
};

}  // namespace mufl::scheduler
