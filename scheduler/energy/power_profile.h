#pragma once
// Power profiles: how much power a device draws and how fast it runs, against its power limit.
//
// A profile is the power model of one device model ("V100", "A40", "cpu"). The live scheduler
// uses it as the last-resort energy meter (a device with neither NVML nor RAPL) and to choose a
// power limit under the `energy` policy; the simulator (mufl-sim) uses it for every simulated GPU.
// The GPU profiles are built from measured data (data/gpu-power/, Zeus NSDI'23: average power and
// time per epoch against the power limit, six workloads per GPU); docs/energy.md states how, and
// which trace GPU model maps to which measured profile.
//
// Thread safety: a PowerProfile is an immutable value once built; the registry returned by
// builtin_power_profiles() is built once and may be read from any thread.
#include <string>
#include <string_view>
#include <vector>

#include "core/result.h"

namespace mufl::scheduler {

// One measured (or modelled) operating point of a busy device at a power limit.
struct PowerLimitPoint {
  double limit_watts = 0;    // the power cap
  double busy_watts = 0;     // average power drawn while busy under that cap
  double relative_time = 1;  // time of a unit of work against the time at the highest limit (>= 1 below it)
};

struct PowerProfile {
  std::string model;        // "V100", "A40", "cpu": what devices and trace rows are matched on
  std::string source;       // where the figures come from, for /v1/devices and docs ("zeus-nsdi23", "spec")
  double idle_watts = 0;    // drawn while the device runs nothing
  // Busy operating points, ascending in limit_watts; at least one. A device whose power limit
  // cannot be set (a CPU slot) has exactly one point, and its limit_watts is its nominal power.
  std::vector<PowerLimitPoint> points;
  // Added for the simulator (issue 5): work done per second at the highest limit, against a
  // V100 at its highest limit (= 1). Measured for the Zeus GPUs, spec-scaled for the others
  // (docs/energy.md). A unit that takes d seconds on a V100 takes d / relative_speed here.
  double relative_speed = 1;

  bool has_power_limits() const { return points.size() > 1; }
  double max_limit_watts() const { return points.back().limit_watts; }
  double min_limit_watts() const { return points.front().limit_watts; }

  // Average power while busy at `limit_watts`, linearly interpolated between points and clamped
  // to the measured range.
  double busy_watts_at(double limit_watts) const;
  // Relative time of a unit of work at `limit_watts` (1 at the highest limit), interpolated and clamped.
  double relative_time_at(double limit_watts) const;
  // Power at a utilisation in [0, 1] (clamped) under `limit_watts`: idle + u · (busy − idle).
  double watts_at(double utilisation, double limit_watts) const;
};

// The profiles mufl ships: the measured GPUs, the trace GPUs mapped onto them, and "cpu".
// Lookup is case-insensitive on `model`.
const std::vector<PowerProfile>& builtin_power_profiles();
// kNotFound when no profile has that model name.
Result<PowerProfile> find_power_profile(std::string_view model);

}  // namespace mufl::scheduler
