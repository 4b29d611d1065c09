#pragma once
// DeviceInventory: the devices mufld trains on, each with its energy meter, its state and the
// work unit (group round) it runs. GET /v1/devices and /metrics read it; the executor tells it
// when a device takes a group, starts and ends a round, and lets go; the admin drains a device
// (it finishes the round in progress, then takes no group) and resumes it.
//
//   idle ──claim──▶ busy ──release──▶ idle
//   idle ──drain──▶ drained           busy ──drain──▶ draining ──release──▶ drained
//   drained | draining ──resume──▶ idle | busy
//
// A device of a Slurm cluster (scheduler/cluster/cluster_devices.h) is also `unavailable`
// while Slurm says its node takes no work (set_available): it claims nothing, and shows so
// when idle; the admin's drain is kept beside it. Cluster devices are added while mufld runs,
// as discovery finds them (add_devices); no device is ever removed.
//
// Meters are chosen best first per device by make_metered_devices()
// (scheduler/energy/meters.h): NVML for a CUDA GPU, RAPL for CPU slots, else the power model
// of the device's profile.
//
// Thread safety: all methods may be called from any thread.
#include <condition_variable>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "core/clock.h"
#include "core/result.h"
#include "scheduler/devices.h"
#include "scheduler/energy/energy_meter.h"
#include "scheduler/energy/meters.h"

namespace mufl::scheduler {

// The names are API values (GET /v1/devices) and metric labels: never rename one.
enum class DeviceState { kIdle, kBusy, kDraining, kDrained, kUnavailable };
inline constexpr DeviceState kAllDeviceStates[] = {DeviceState::kIdle, DeviceState::kBusy, DeviceState::kDraining,
                                                   DeviceState::kDrained, DeviceState::kUnavailable};
const char* to_string(DeviceState s);

struct WorkUnitRef {
  std::string group_id;
  int64_t round = 0;  // the lineage round being trained (1-based); 0 between claim and the first round
};

struct DeviceStatus {
  std::string name;        // "cpu:0", "cuda:1"
  std::string kind;        // "cpu" or "cuda"
  std::string host;        // a cluster GPU's node; empty for this host's devices
  std::string gres;        // a cluster GPU's GRES ("gpu:v100"); empty otherwise
  DeviceState state = DeviceState::kIdle;
  std::optional<WorkUnitRef> unit;  // set while busy or draining
  double power_watts = 0;
  double energy_joules = 0;  // since mufld started
  std::string meter;         // "nvml", "rapl", "model"
  std::string profile;       // for the model meter
  std::optional<PowerLimits> power_limits;
};

// One finished work unit, as its device's meter measured it.
struct UnitMeasurement {
  std::string device;
  std::string meter;
  int64_t start_unix_ms = 0;
  int64_t end_unix_ms = 0;
  double seconds = 0;  // monotonic
  double joules = 0;
};

class DeviceInventory {
 public:
  // `drained`: names of devices drained before a restart (kept in the store); unknown names are
  // ignored. `clock` must outlive the inventory.
  DeviceInventory(std::vector<MeteredDevice> devices, const Clock& clock, const std::set<std::string>& drained = {});
  ~DeviceInventory();  // stops the sampler

  // Every device, in the order given and then added.
  std::vector<Device> devices();
  // Adds devices not there yet (by name) at the end, idle (drained when their name is in the
  // `drained` set given at construction); returns those added.
  std::vector<Device> add_devices(std::vector<MeteredDevice> devices);
  // A cluster device's node takes work (true) or not (false). kNotFound for an unknown name.
  Status set_available(const std::string& name, bool available);
  // Every device, in the order given; reads each meter.
  std::vector<DeviceStatus> list();
  // Every device's state, in the same order, without reading a meter.
  std::vector<DeviceState> states();
  // kNotFound for an unknown name.
  Result<DeviceStatus> get(const std::string& name);

  // Admin. drain: an idle device becomes drained; a busy one draining (its round finishes,
  // then the executor lets the group go). resume: drained → idle, draining → busy; then the
  // listener runs (the executor wakes its workers). Both idempotent; kNotFound for an unknown name.
  Result<DeviceStatus> drain(const std::string& name);
  Result<DeviceStatus> resume(const std::string& name);
  // Called after every resume(). Set once, before the executor starts.
  void set_resume_listener(std::function<void()> listener);

  // Executor. may_claim: false while the device is draining, drained or unavailable (or unknown).
  bool may_claim(const std::string& name);
  // Should the device give its group back at this round boundary (it is draining, or its
  // cluster node takes no work)?
  bool should_release(const std::string& name);
  void group_claimed(const std::string& name, const std::string& group_id);
  // Releases the device; a power limit set for the group (set_power_limit_fraction) goes back
  // to what the device had before.
  void group_released(const std::string& name);
  // Sets the device's power limit for the group it has claimed, as placement chose it on the
  // device's power profile: `fraction` = the chosen limit ÷ the profile's highest limit. The
  // device gets that fraction of its own highest limit (NVML reports the device's real range,
  // which need not be the profile's), clamped to its range. kNotFound for an unknown name;
  // kFailedPrecondition when the device's limit cannot be set; NVML's refusal otherwise (e.g.
  // kPermissionDenied when mufld is not root), and then the limit is as it was.
  Status set_power_limit_fraction(const std::string& name, double fraction);
  // A round starts on the device: its meter goes busy and the start is read.
  void unit_started(const std::string& name, const std::string& group_id, int64_t round);
  // The round ended (finished or abandoned): the meter goes idle; what it measured. nullopt
  // when no unit was started on the device.
  std::optional<UnitMeasurement> unit_finished(const std::string& name);

  // Energy the device's worker measured and reported (EnergyMeter::add_reported): a cluster
  // GPU's round. kNotFound for an unknown name; the meter's refusal otherwise.
  Status add_reported_energy(const std::string& name, double joules, const std::string& meter, double seconds);

  // Reads every meter now (so that no counter wraps unseen). start_sampler() does it every
  // `period_ms` on a thread of its own until the inventory is destroyed.
  void sample_all();
  void start_sampler(int64_t period_ms);

 private:
  struct Slot {
    Device device;
    std::unique_ptr<EnergyMeter> meter;
    std::string profile;
    DeviceState state = DeviceState::kIdle;
    bool available = true;  // set_available
    std::string group_id;
    int64_t round = 0;
    bool in_unit = false;
    double unit_start_joules = 0;
    int64_t unit_start_ns = 0;
    int64_t unit_start_ms = 0;
    std::optional<double> restore_limit_watts;  // the limit before set_power_limit_fraction
  };
  Slot* find_locked(const std::string& name);
  DeviceStatus status_locked(Slot& s);

  const Clock& clock_;
  std::set<std::string> drained_at_start_;
  std::mutex mu_;
  std::vector<Slot> slots_;
  std::function<void()> resume_listener_;

  std::mutex sampler_mu_;
  std::condition_variable sampler_cv_;
  bool stopping_ = false;
  std::thread sampler_;
};

}  // namespace mufl::scheduler
