#pragma once
// RAPL: Intel's Running Average Power Limit energy counters, read through the Linux powercap
// sysfs tree (default root /sys/class/powercap). Each CPU package is a top-level domain
// `intel-rapl:N` whose `name` is `package-N`; mufl reads its `energy_uj` (a counter in
// microjoules that wraps at `max_energy_range_uj`) and sums the packages. Sub-domains (core,
// uncore, dram: `intel-rapl:N:M`) and `psys` are left out, so nothing is counted twice.
//
// The packages are shared by every CPU slot, so RaplPackages splits their energy: over each
// interval between two readings, the energy goes to the slots that were busy, in equal parts
// (a slot busy alone gets all of it); when no slot is busy, every slot gets 1/N. So the slots'
// counters add up to the packages' energy, and a work unit is charged for the package while it
// ran, idle cores included. docs/energy.md ("Meters") states this rule.
//
// Wrap-around: a reading below the previous one means the counter wrapped once; the energy is
// max_energy_range_uj − previous + reading. A counter that wraps twice between two readings
// cannot be told from one wrap, so something must read it more often than it wraps (about every
// 20 minutes at 200 W for a 2^32 µJ range): the inventory's sampler does (device_inventory.h).
//
// Thread safety: all methods may be called from any thread.
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "core/clock.h"
#include "core/result.h"
#include "scheduler/energy/energy_meter.h"

namespace mufl::scheduler {

class RaplPackages : public std::enable_shared_from_this<RaplPackages> {
 public:
  // Opens every package domain under `root` for `slots` CPU slots (>= 1). kNotFound when `root`
  // has no package domain (not an Intel CPU, or no powercap); kPermissionDenied when a counter
  // exists but cannot be read (since Linux 5.10 energy_uj is readable by root only, unless an
  // administrator changes its mode); kInvalidArgument for a counter or range that is not a
  // number. Reads each counter once (the zero of every slot's count). `clock` must outlive it.
  static Result<std::shared_ptr<RaplPackages>> open(const std::string& root, int slots, const Clock& clock);

  // The meter of CPU slot `index` (0 <= index < slots); it keeps the packages alive.
  std::unique_ptr<EnergyMeter> slot_meter(int index);

  // Reads the counters and hands the energy since the last reading to the slots.
  void sample();
  // Joules since open(), all packages and slots together.
  double total_joules();
  int slots() const { return static_cast<int>(slot_joules_.size()); }
  // Names of the domains read ("package-0", …), for logs.
  std::vector<std::string> domain_names() const;

  // Used by the slot meters.
  double slot_joules(int index);
  double slot_watts(int index);
  void set_slot_busy(int index, bool busy);

 private:
  struct Domain {
    std::string name;
    std::string energy_path;
    double max_range_uj = 0;
    double last_uj = 0;
  };
  RaplPackages(std::vector<Domain> domains, int slots, const Clock& clock);
  void sample_locked();
  double share_locked(int index) const;

  const Clock& clock_;
  mutable std::mutex mu_;
  std::vector<Domain> domains_;
  std::vector<double> slot_joules_;
  std::vector<bool> busy_;
  double total_joules_ = 0;
  // Power: the packages' energy over the last window of at least kPowerWindowNs.
  int64_t window_start_ns_;
  double window_start_joules_ = 0;
  double watts_ = 0;
};

}  // namespace mufl::scheduler
