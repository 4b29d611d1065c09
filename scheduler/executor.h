#pragma once
// Executor: trains groups of activities on the devices, one group per device at a time.
//
// Every device has a worker thread. A worker first lets the grouping planner
// (scheduler/grouping.h) put ungrouped queued activities into groups, then claims the next
// group in a transaction and trains it round by round through fl::FlJob: one model with a
// shared encoder and a head per live member. At each round boundary it reconciles the model
// with the membership in the store (a late joiner gets a fresh head, a finished or cancelled
// member's head goes). After every round it writes the group's checkpoint (temp, fsync, rename)
// and records the round, each member's report, the measured affinity and the models of members
// that reached their rounds, in one transaction. A consolidating group that reaches its
// consolidation rounds splits by its mean affinity (scheduler/split.h) into child groups, each
// starting from the merged encoder and its members' heads.
//
// Energy (with an inventory): each round is a work unit. Its device's meter is read at the
// start and end of the round, and the unit, split over the heads that trained
// (scheduler/energy_ledger.h), is recorded in the round's transaction. At each round boundary
// a group whose live members all belong to tenants over their energy budget lets its device go
// (it is claimed again once a budget is raised), as does a group on a draining device.
//
// Placement (scheduler/dispatch.h): a free device asks the dispatcher's policy which claimable
// group it takes (Store::list_claimable_groups, then Store::claim_group of that one); a group
// the policy holds waits with a reason on the PlacementBoard, and the worker waits until the
// hold ends (a timed wait on the injected clock's time), an event, or stop. Under `carbon` a
// running group is asked again at every round boundary and lets its device go when held.
//
// Crash safety: at start(), groups a previous process was training lose their device and are
// claimed again; each resumes from its checkpoint, and per-round randomness makes the result the
// same as an unbroken run. Cancel: cancelling the last live member of a group stops it within
// one batch; another member's head leaves at the next round boundary.
//
// Thread safety: all public methods may be called from any thread.
#include <atomic>
#include <condition_variable>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include "core/clock.h"
#include "core/group.h"
#include "core/random.h"
#include "fl/fl_job.h"
#include "scheduler/carbon_intensity.h"
#include "scheduler/device_inventory.h"
#include "scheduler/devices.h"
#include "scheduler/dispatch.h"
#include "scheduler/grouping.h"
#include "scheduler/split.h"
#include "storage/store.h"

namespace mufl::scheduler {

struct ExecutorOptions {
  std::vector<Device> devices;
  std::string data_dir = "var";  // data sets: <data_dir>/datasets/; files: <data_dir>/{activities,groups}/<id>/
  double client_failure_rate = 0.0;  // simulated client dropouts, for every job
  int max_round_attempts = 3;        // draws of a round before the group fails
  GroupingOptions grouping;
  int affinity_every = 20;           // lookahead every n batches while consolidating
  // LibTorch threads for each worker. Set in the worker thread itself: OpenMP keeps the thread
  // count per thread, and a worker started later does not inherit the main thread's setting
  // (measured: workers ran on 1 thread with --torch-threads 2). 0 leaves LibTorch's default.
  int torch_threads = 0;
  SplitOptions split;
  // The devices' meters and states (drain). With one, every round is metered and recorded in
  // the energy ledger with the round, a draining device lets its group go at the next round
  // boundary, and a drained one claims nothing. nullptr: no metering, no drain. Not owned.
  DeviceInventory* inventory = nullptr;
  // Grid carbon intensity for the ledger's grams CO2e; nullptr: kDefaultCarbonGPerKwh
  // (scheduler/energy_ledger.h). Not owned.
  const CarbonIntensity* carbon = nullptr;
  // Which claimable group a free device takes and whether it runs now or waits
  // (scheduler/dispatch.h). nullptr: fifo. Not owned.
  const Dispatcher* dispatcher = nullptr;
  // Where the waiting reasons go (GET /v1/groups/{id}); nullptr: nowhere. Not owned.
  PlacementBoard* board = nullptr;
  // Power profile of a CUDA device for placement (as MeterOptions::gpu_profile). Default V100.
  std::string gpu_profile = "V100";
};


// What the executor reports as it goes (metrics); every method has a no-op default.
class ExecutorObserver {
 public:
  virtual ~ExecutorObserver() = default;
  virtual void round_finished(const Group&, const std::string& /*device*/, const fl::RoundReport&) {}
  virtual void activity_progress(const std::string& /*activity id*/, int64_t /*rounds done*/, int64_t /*rounds*/) {}
  virtual void activity_ended(const std::string& /*activity id*/, ActivityState /*final state*/) {}
  virtual void groups_formed(int64_t /*merged: groups of 2+*/, int64_t /*joins*/) {}
  virtual void group_split(const Group& /*parent*/, size_t /*children*/) {}
  // A work unit was recorded in the energy ledger (after its transaction committed).
  virtual void energy_recorded(const storage::EnergyUnit& /*unit*/) {}
  // The placement policy decided: `run` (a device claims a group) or `hold` (the deferral
  // rule keeps a group waiting), `n` times.
  virtual void placement_decided(const std::string& /*policy*/, const char* /*decision*/, int64_t /*n*/) {}
};

class Executor {
 public:
  Executor(storage::Store& store, const Clock& clock, ExecutorOptions options, ExecutorObserver* observer = nullptr);
  ~Executor();  // stop()s

  // Releases groups a previous process left on devices and starts one worker per device.
  Status start();
  // Stops the workers: training in progress stops within one batch and stays recorded, to be
  // resumed by the next start() (the stopped round's energy is in the ledger as abandoned,
  // "shutdown"). Idempotent.
  void stop();

  // Wakes the workers (a new activity is queued).
  void submitted();
  // The activity was cancelled in the store: stop its group now if it was the last live member.
  void cancelled(const std::string& activity_id);

  std::string activity_dir(const std::string& activity_id) const;
  std::string group_dir(const std::string& group_id) const;

 private:
  struct Running {
    std::atomic<bool> stop{false};            // shutdown or the whole group was cancelled
    std::set<std::string> live;               // live members at the start of the round
    std::set<std::string> cancelled;
  };

  void worker(const Device& device);
  // One placement decision for the free `device`: the group it claimed (nullopt: none);
  // `retry_at` gets when a hold ends, `again` is set when the claim lost a race (ask again now).
  Result<std::optional<Group>> claim_for(const Device& device, bool exclusive, std::optional<int64_t>& retry_at,
                                         bool& again);
  FreeDevice free_device(const Device& device) const;
  // The context shared by every decision: devices held per tenant, measured round times.
  Status fill_context(DispatchInput& in);
  // Under a deferral policy, at a round boundary: the reason the group's next round is held.
  std::optional<Dispatcher::Hold> hold_at_boundary(const Group& group, const Device& device);
  // Runs the planner and applies its plan; returns when to plan again without an event.
  std::optional<int64_t> plan();
  void train(Group group, const Device& device);
  // A round that ran but whose result is thrown away (`why`: shutdown, cancelled, failed): its
  // measured energy still goes to the ledger, to the heads that trained in it.
  void record_abandoned(const Group& group, int64_t round, const std::vector<GroupHead>& heads,
                        const std::optional<UnitMeasurement>& measured, const char* why);
  // The intensity a unit is charged at: --carbon-file, else the constant default.
  const CarbonIntensity& carbon() const;
  void wake_all();

  storage::Store& store_;
  const Clock& clock_;
  ExecutorOptions options_;
  ExecutorObserver* observer_;
  ExecutorObserver no_observer_;
  SecureRandom& rng_ = SecureRandom::instance();

  std::mutex plan_mu_;  // one planner at a time
  std::mutex mu_;
  std::condition_variable wake_;
  bool stopping_ = false;
  uint64_t submissions_ = 0;  // bumped on every event a worker may wait for
  std::map<std::string, std::shared_ptr<Running>> running_;  // group id → its state
  // Placement inputs kept in memory (guarded by mu_): the measured seconds per round of each
  // group's lineage (children start from their parent's) and when a group was first seen
  // waiting. A restart starts them afresh (the prior, then the next round's measurement).
  std::unordered_map<std::string, double> round_seconds_;
  std::unordered_map<std::string, int64_t> first_seen_ms_;
  std::unique_ptr<Dispatcher> own_dispatcher_;  // fifo, when options_.dispatcher is nullptr
  const Dispatcher* dispatcher_ = nullptr;
  std::vector<std::thread> workers_;
};

}  // namespace mufl::scheduler
