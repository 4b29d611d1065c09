#pragma once
// Executor: trains groups of activities on the devices, one group per device at a time.
//
// Every device has a worker thread. A worker first lets the grouping planner
// (scheduler/grouping/grouping.h) put ungrouped queued activities into groups, then claims the next
// group in a transaction and trains it round by round through fl::FlJob: one model with a
// shared encoder and a head per live member. At each round boundary it reconciles the model
// with the membership in the store (a late joiner gets a fresh head, a finished or cancelled
// member's head goes). After every round it writes the group's checkpoint under a name of its
// own (checkpoint-<round>.pt: temp, fsync, rename) and records the round, each member's report,
// the measured affinity, the models of members that reached their rounds and the checkpoint it
// now trusts, in one transaction; then it prunes checkpoint files older than the previous one.
// A consolidating group that has reached its consolidation rounds splits, before its next
// round, by its mean affinity (scheduler/grouping/split.h) into child groups, each starting from the
// merged encoder and its members' heads. Rounds run through a TrainingBackend
// (scheduler/training_job.h; fl::FlJob in this process by default); files are written through
// an Env (core/env.h).
//
// Energy (with an inventory): each round is a work unit. Its device's meter is read at the
// start and end of the round, and the unit, split over the heads that trained
// (scheduler/energy/energy_ledger.h), is recorded in the round's transaction. At each round boundary
// a group whose live members all belong to tenants over their energy budget lets its device go
// (it is claimed again once a budget is raised), as does a group on a draining device.
//
// Placement (scheduler/placement/dispatch.h): a free device asks the dispatcher's policy which
// claimable group it takes (Store::list_claimable_groups, then Store::claim_group of that one); a
// group the policy holds waits with a reason on the PlacementBoard, and the worker waits until the
// hold ends (a timed wait on the injected clock's time), an event, or stop. Under `carbon` a
// running group is asked again at every round boundary and lets its device go when held.
//
// Federation lanes: a group of activities on a federation trains on its clients' machines. It
// runs on one of `federation_lanes` lanes ("federation:0", ...), a worker of its own that is no
// device: it waits for the clients (and for enough of them to be online) without holding a
// device that a local group could use, then aggregates on this host's CPU. Its work unit in the
// ledger is that server work, metered by the "cpu" power model over the round's time minus the
// wait, with the clients' reported joules beside it (scheduler/energy/energy_ledger.h). With no
// lanes, such groups take devices like any other. Lanes run only beside at least one device
// (a node with none trains nothing), and only device workers plan groups.
//
// Crash safety: at start(), groups a previous process was training lose their device and are
// claimed again; each resumes from the checkpoint the database trusts, and per-round randomness
// makes the result the same as an unbroken run. A checkpoint that is missing or damaged (its
// SHA-256 is not the recorded one) falls back to the one before it, whose next round is redone
// to rebuild it; a group fails only when neither is usable.
//
// Failures: a storage error (busy database, I/O error, full disk: Status::is_transient) on a file
// or a commit releases the group; it waits with reason `storage` (scheduler/placement/waiting.h)
// and is claimed again after a backoff (storage_retry_ms, doubling to storage_retry_max_ms), and
// the round is redone from the last trusted checkpoint. A runtime error of a round (kInternal: a
// LibTorch exception, an out-of-memory) is retried from the checkpoint up to max_round_errors times
// in a row, then fails the group with the message. A failure the same settings meet again (too few
// clients, a NaN loss, a bad configuration) fails the group and its live members at once, with a
// state_reason that says why. Writes that end a group's claim (release, finish) are retried until
// they pass or the executor stops.
//
// Cancel: cancelling the last live member of a group stops it within one batch; another
// member's head leaves at the next round boundary.
//
// Thread safety: all public methods may be called from any thread.
#include <atomic>
#include <condition_variable>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include <nlohmann/json_fwd.hpp>

#include "core/clock.h"
#include "core/env.h"
#include "core/group.h"
#include "core/random.h"
#include "fl/fl_job.h"
#include "scheduler/device_inventory.h"
#include "scheduler/devices.h"
#include "scheduler/energy/carbon_intensity.h"
#include "scheduler/grouping/grouping.h"
#include "scheduler/grouping/merge_guard.h"
#include "scheduler/grouping/split.h"
#include "scheduler/placement/dispatch.h"
#include "scheduler/training_job.h"
#include "storage/store.h"

namespace mufl::scheduler {

struct ExecutorOptions {
  std::vector<Device> devices;
  std::string data_dir = "var";  // data sets: <data_dir>/datasets/; files: <data_dir>/{activities,groups}/<id>/
  double client_failure_rate = 0.0;  // simulated client dropouts, for every job
  int max_round_attempts = 3;        // draws of a round before the group fails
  int max_round_errors = 3;          // runtime errors of one round in a row before the group fails; >= 1
  // Backoff of a group released after a storage error: the first retry after storage_retry_ms,
  // doubling with each further failure up to storage_retry_max_ms.
  int64_t storage_retry_ms = 1000;
  int64_t storage_retry_max_ms = 60'000;
  // Where files are written; nullptr: Env::posix(). Not owned.
  Env* env = nullptr;
  // Where rounds run; nullptr: local_training(). Not owned.
  TrainingBackend* backend = nullptr;
  // Where the rounds of a cluster device's groups run (Device::on_cluster: a `mufl-worker`
  // job, scheduler/cluster/); the backend returned is not owned and lives as long as the
  // executor. Unset, or nullptr for a device: that device claims nothing.
  std::function<TrainingBackend*(const Device&)> cluster_backend;
  // The clients of each federation, for groups of activities on one (fl::RuntimeOptions);
  // unset: such groups fail with the reason.
  std::function<std::shared_ptr<fl::ClientPool>(const std::string& federation)> client_pools;
  GroupingOptions grouping;
  int affinity_every = 20;           // lookahead every n batches while consolidating
  // Groups on federations that run at once, on lanes of their own (see "Federation lanes").
  int federation_lanes = 0;
  // How a multi-head group balances its tasks' encoder gradients (fl/task_balance.h; --task-balance).
  fl::TaskBalance task_balance = fl::TaskBalance::kByKind;
  // At a member's last round in a group of two or more heads, fit its head to the final
  // encoder (fl/head_calibration.h; --head-calibration). Simulated clients only.
  bool head_calibration = true;
  // Calibrate on every client instead of the round's (--head-calibration-clients all).
  bool calibrate_every_client = false;
  // LibTorch threads for each worker. Set in the worker thread itself: OpenMP keeps the thread
  // count per thread, and a worker started later does not inherit the main thread's setting
  // (measured: workers ran on 1 thread with --torch-threads 2). 0 leaves LibTorch's default.
  int torch_threads = 0;
  SplitOptions split;
  // The merge guard (scheduler/grouping/merge_guard.h; --merge-guard-window, 0 off).
  MergeGuardOptions guard;
  // The devices' meters and states (drain). With one, every round is metered and recorded in
  // the energy ledger with the round, a draining device lets its group go at the next round
  // boundary, and a drained one claims nothing. nullptr: no metering, no drain. Not owned.
  DeviceInventory* inventory = nullptr;
  // Grid carbon intensity for the ledger's grams CO2e; nullptr: kDefaultCarbonGPerKwh
  // (scheduler/energy/energy_ledger.h). Not owned.
  const CarbonIntensity* carbon = nullptr;
  // Which claimable group a free device takes and whether it runs now or waits
  // (scheduler/placement/dispatch.h). nullptr: fifo. Not owned.
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
  // Devices found while running (a cluster's GPUs, scheduler/cluster/cluster_watch.h): each gets
  // a worker, as those of ExecutorOptions::devices did at start(). Names already known are
  // skipped. Before start() they are kept for it.
  void add_devices(const std::vector<Device>& devices);
  // The activity was cancelled in the store: stop its group now if it was the last live member.
  void cancelled(const std::string& activity_id);

  std::string activity_dir(const std::string& activity_id) const;
  std::string group_dir(const std::string& group_id) const;
  // The file of the group's checkpoint after `round`: <group_dir>/checkpoint-<round>.pt.
  std::string checkpoint_path(const std::string& group_id, int64_t round) const;

  // OK, or the storage error that stopped the last group and has not been followed by a
  // successful round since (kInsufficientStorage for a full disk): what /readyz reports.
  Status storage_health() const;

 private:
  struct Running {
    std::atomic<bool> stop{false};            // shutdown or the whole group was cancelled
    std::set<std::string> live;               // live members at the start of the round
    std::set<std::string> cancelled;
  };

  void worker(const Device& device);
  // A federation lane ("federation:N"), not a device of the inventory.
  static bool is_lane(const Device& device);
  // The inventory that meters `device`; nullptr for a lane (or without an inventory).
  DeviceInventory* inventory_for(const Device& device) const { return is_lane(device) ? nullptr : options_.inventory; }
  // The server's part of a federation round on a lane: the "cpu" power model's busy watts over
  // the round's time less its wait for clients.
  UnitMeasurement lane_measurement(const Device& lane, const fl::RoundReport& report, int64_t start_ms) const;
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
  // How training a claimed group ended, and so what becomes of it (conclude()).
  struct Outcome {
    enum class Kind {
      kStopped,  // shutdown, cancel, drain, budget or a hold: the device goes back
      kDone,     // no live member left
      kGone,     // split, or no longer live: nothing to do
      kStorage,  // a transient storage error: released, retried after a backoff
      kFailed,   // fails the group and its live members with `reason`
    };
    Kind kind = Kind::kStopped;
    std::string reason;
    Status::Code code = Status::Code::kOk;  // kStorage: kUnavailable or kInsufficientStorage
    static Outcome stopped() { return {Kind::kStopped, "", Status::Code::kOk}; }
    static Outcome done() { return {Kind::kDone, "", Status::Code::kOk}; }
    static Outcome gone() { return {Kind::kGone, "", Status::Code::kOk}; }
    static Outcome storage(std::string why, Status::Code code) { return {Kind::kStorage, std::move(why), code}; }
    static Outcome failed(std::string why) { return {Kind::kFailed, std::move(why), Status::Code::kOk}; }
  };
  // One claimed group as it trains.
  struct GroupRun {
    Group group;  // as of the last recorded round (round, heads, checkpoint) and membership
    const Device& device;
    fl::RuntimeOptions runtime;
    std::shared_ptr<Running> run;
    std::unique_ptr<TrainingJob> job;
    std::optional<UnitMeasurement> measured;  // the last round's energy
    TrainingBackend* backend = nullptr;       // where its rounds run (backend_for(device))
  };
  // A store or file error: storage (transient) or failed, the reason prefixed with `what`.
  static Outcome from_store(const Status& s, const std::string& what);

  void train(Group group, const Device& device);
  Outcome train_rounds(GroupRun& g);
  // At a round boundary: stopped when the device drains, the tenants are over budget or the
  // policy holds the group; nullopt to go on.
  std::optional<Outcome> pause_at_boundary(GroupRun& g, bool just_claimed);
  // The heads whose members end with the next round (fl::JobConfig::final_heads). Read from the
  // store, so a redone round sees the same.
  std::vector<std::string> finishing_heads(const std::vector<GroupHead>& heads);
  // Runs the next round, metered; an abandoned or failed round's energy goes to the ledger.
  Result<fl::RoundReport> run_one_round(GroupRun& g, const std::vector<GroupHead>& heads);
  // Writes the model files of member `key`, which finishes with its round `own_round`: its model
  // and, with client clustering, every cluster's, into `record`; nullopt when they are written.
  std::optional<Outcome> write_models(GroupRun& g, const std::string& key, int64_t own_round,
                                      storage::GroupRoundRecord& record);
  // Writes the round's files and records it; nullopt when it is recorded.
  std::optional<Outcome> commit_round(GroupRun& g, const std::vector<GroupHead>& heads,
                                      const fl::RoundReport& report);
  void announce_round(const GroupRun& g, const fl::RoundReport& report, const storage::GroupRoundRecord& record,
                      const std::vector<std::pair<std::string, int64_t>>& progress);
  // Ends consolidation: splits into children (kGone) or keeps the group whole (nullopt).
  std::optional<Outcome> split_now(GroupRun& g);
  // The merge guard at a round boundary: splits a lagging member off alone (kGone) or nullopt.
  std::optional<Outcome> guard_now(GroupRun& g, const std::vector<GroupHead>& heads);
  // Splits the group into children, one per part (indices into `staying`), recording `split`
  // (its "groups" already named) with the children's ids added. kGone, or why not.
  Outcome split_into(GroupRun& g, const std::vector<GroupHead>& staying, const std::vector<std::vector<int>>& parts,
                     nlohmann::json split);
  void conclude(GroupRun& g, const Outcome& outcome);
  // Runs `write` until it succeeds, fails for good, or the executor stops (transient errors
  // are retried with the storage backoff).
  Status persist(const std::function<Status()>& write);
  fl::JobConfig job_config(const Group& g, const std::vector<GroupHead>& heads, int64_t round_offset) const;

  // The job at the group's recorded round, from its newest usable checkpoint (see "Crash
  // safety"); nullptr when it has none yet. Transient errors come back as they are.
  Result<std::unique_ptr<TrainingJob>> load_job(GroupRun& g);
  Result<std::unique_ptr<TrainingJob>> open_checkpoint(GroupRun& g, const storage::GroupCheckpoint& cp);
  // From the job of checkpoint `from`, redoes the round of `newest` and trusts its new file.
  Result<std::unique_ptr<TrainingJob>> redo_newest(GroupRun& g, std::unique_ptr<TrainingJob> job,
                                                   const storage::GroupCheckpoint& from,
                                                   const storage::GroupCheckpoint& newest);
  // Removes the group's checkpoint files (and temp files) other than `keep`.
  void prune_checkpoints(const std::string& group_id, const std::set<std::string>& keep);
  // Removes the files of the group's clients' kept states (FedEMA, <group_dir>/clients): once the
  // group is done, failed or split, no checkpoint of it will be resumed. Failures are logged.
  void drop_client_states(const std::string& group_id);

  // Storage backoff (guarded by mu_): the group waits `storage` until its retry time.
  void back_off(const std::string& group_id, const std::string& reason, Status::Code code);
  void storage_recovered(const std::string& group_id);
  int64_t storage_delay_ms(int failures) const;
  // Removes groups in backoff from `groups`; `retry_at` gets the earliest retry time.
  void skip_backed_off(std::vector<storage::ClaimableGroup>& groups, std::optional<int64_t>& retry_at);

  Env& env() const { return options_.env ? *options_.env : Env::posix(); }
  // The device's backend: the cluster's for a cluster device (nullptr when there is none), else
  // options_.backend or local_training().
  TrainingBackend* backend_for(const Device& device) const;
  // Every device, those added while running included (a copy: the list grows).
  std::vector<Device> all_devices() const;
  int64_t now_ms() const { return clock_.now_unix_ms(); }

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
  mutable std::mutex mu_;
  std::condition_variable wake_;
  bool stopping_ = false;
  uint64_t submissions_ = 0;  // bumped on every event a worker may wait for
  std::map<std::string, std::shared_ptr<Running>> running_;  // group id → its state
  // Placement inputs kept in memory (guarded by mu_): the measured seconds per round of each
  // group's lineage (children start from their parent's) and when a group was first seen
  // waiting. A restart starts them afresh (the prior, then the next round's measurement).
  std::unordered_map<std::string, double> round_seconds_;
  std::unordered_map<std::string, int64_t> first_seen_ms_;
  struct Backoff {
    int failures = 0;
    int64_t retry_at_ms = 0;
    std::string reason;
  };
  std::unordered_map<std::string, Backoff> backoff_;  // group id → its storage backoff
  std::string storage_trouble_;  // the last storage error not followed by a recorded round
  Status::Code storage_trouble_code_ = Status::Code::kOk;
  std::unique_ptr<Dispatcher> own_dispatcher_;  // fifo, when options_.dispatcher is nullptr
  const Dispatcher* dispatcher_ = nullptr;
  std::vector<Device> devices_;  // options_.devices, then add_devices() (guarded by mu_)
  bool started_ = false;         // guarded by mu_
  std::vector<std::thread> workers_;
};

}  // namespace mufl::scheduler
