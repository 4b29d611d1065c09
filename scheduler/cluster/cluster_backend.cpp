#include "scheduler/cluster/cluster_backend.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <optional>
#include <utility>
#include <thread>

#include "core/clock.h"
#include "fl/job_wire.h"
#include "scheduler/cluster/cluster_devices.h"
#include "scheduler/energy/power_profile.h"

namespace mufl::scheduler {
namespace {

using SteadyClock = std::chrono::steady_clock;

// Single quotes for sh: 'it'\''s'.
std::string shell_quote(const std::string& s) {
  std::string out = "'";
  for (char c : s) out += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return out + "'";
}

// A job Slurm lists that may still report: running, or pending for a reason that passes (not
// a node or partition that is down or gone: the job was pinned to its node).
bool still_running(const SlurmJobState& job) {
  if (job.state == "PENDING")
    return job.reason != "ReqNodeNotAvail" && job.reason != "NodeDown" && job.reason != "PartitionDown" &&
           job.reason != "PartitionInactive" && job.reason != "BadConstraints" && job.reason.rfind("ReqNodeNotAvail", 0) != 0;
  return job.state == "RUNNING" || job.state == "CONFIGURING" || job.state == "SUSPENDED" || job.state == "REQUEUED" ||
         job.state == "RESIZING";
}

// What a device's rounds need on mufld's own host: the job's state lives on its CPU.
fl::RuntimeOptions on_this_cpu(fl::RuntimeOptions runtime) {
  runtime.device = "cpu";
  return runtime;
}

// "slurm:NODE:TYPE:I" → "slurm:NODE:TYPE": devices Slurm does not tell apart (it picks the GPU).
std::string node_and_type(const std::string& device) { return device.substr(0, device.rfind(':')); }

class WorkerHandle;

}  // namespace

struct ClusterBackend::Impl {
  Impl(SlurmClient& s, WorkerDesk& d, ClusterBackendOptions o) : slurm(s), desk(d), options(std::move(o)) {}
  SlurmClient& slurm;
  WorkerDesk& desk;
  ClusterBackendOptions options;
  std::mutex mu;
  std::map<std::string, std::string> live;  // worker id → its Slurm job id
  // Adopted workers no job has taken yet: group id → the worker and the device it was on.
  struct Parked {
    std::shared_ptr<WorkerHandle> worker;
    std::string device;
  };
  std::map<std::string, Parked> parked;
  std::condition_variable parked_changed;
  // Every adopted worker no job took, out of the map: they end as the caller drops them, outside
  // the lock (WorkerHandle::end takes it).
  std::map<std::string, Parked> take_all_parked() {
    std::lock_guard lock(mu);
    return std::exchange(parked, {});
  }
  bool stopping = false;

  void record(const storage::WorkerRecord& w) {
    if (!options.store) return;
    if (Status s = options.store->save_worker(w); !s.is_ok())
      spdlog::warn("cluster: worker {} is not recorded ({}): a crash of mufld would cancel its job", w.id, s.message());
  }
  void unrecord(const std::string& id) {
    if (!options.store) return;
    if (Status s = options.store->delete_worker(id); !s.is_ok())
      spdlog::warn("cluster: cannot delete the record of worker {}: {}", id, s.message());
  }
  // The adopted worker of `group_id` when `device` is of its node and GPU type. One of another
  // node or type is let go (closed and cancelled as its handle goes).
  std::shared_ptr<WorkerHandle> take_parked(const std::string& group_id, const std::string& device) {
    Parked p;
    {
      std::lock_guard lock(mu);
      auto it = parked.find(group_id);
      if (it == parked.end()) return nullptr;
      p = std::move(it->second);
      parked.erase(it);
    }
    parked_changed.notify_all();
    if (node_and_type(p.device) == node_and_type(device)) return std::move(p.worker);
    spdlog::info("cluster: group {} went to {}, not to the node of its adopted worker ({}): that job is cancelled",
                 group_id, device, p.device);
    return nullptr;
  }
};

namespace {

// One worker and its Slurm job. Closed and cancelled when the last job holding it goes.
class WorkerHandle {
 public:
  static Result<std::shared_ptr<WorkerHandle>> start(const std::shared_ptr<ClusterBackend::Impl>& impl,
                                                     const Device& device, const std::string& group_id,
                                                     const std::string& script) {
    const auto opened = impl->desk.open(group_id, device.name);
    const ClusterBackendOptions& o = impl->options;
    SlurmJobSpec job;
    job.name = o.job_name_prefix + opened.id;
    job.gres = device.gres + ":1";
    job.node = device.host;
    job.partition = o.partition;
    job.account = o.account;
    // Only what the worker needs: mufld's own environment may hold secrets (MUFL_ADMIN_TOKEN).
    job.extra_args = {"--export=PATH,LD_LIBRARY_PATH,MUFL_SERVER_URL,MUFL_WORKER_ID,MUFL_WORKER_TOKEN"};
    job.extra_args.insert(job.extra_args.end(), o.sbatch_args.begin(), o.sbatch_args.end());
    job.script = script;
    job.env = {"MUFL_SERVER_URL=" + o.worker_url, "MUFL_WORKER_ID=" + opened.id, "MUFL_WORKER_TOKEN=" + opened.token};
    auto submitted = impl->slurm.submit(job);
    if (!submitted.ok()) {
      impl->desk.close(opened.id);
      impl->desk.forget(opened.id);
      const std::string why = "cannot submit the worker job of " + device.name + ": " + submitted.status().message();
      // Refused for good: the group fails with Slurm's words; else the executor backs off.
      if (submitted.status().code() == Status::Code::kFailedPrecondition) return Status::failed_precondition(why);
      return Status::unavailable(why);
    }
    spdlog::info("cluster: group {} on {}: worker {} is Slurm job {}", group_id, device.name, opened.id, *submitted);
    {
      std::lock_guard lock(impl->mu);
      impl->live[opened.id] = *submitted;
    }
    impl->record(
        {opened.id, opened.token_sha256, group_id, device.name, *submitted, SystemClock::instance().now_unix_ms()});
    return std::make_shared<WorkerHandle>(impl, opened.id, *submitted);
  }

  WorkerHandle(std::shared_ptr<ClusterBackend::Impl> impl, std::string id, std::string job_id)
      : impl_(std::move(impl)), id_(std::move(id)), job_id_(std::move(job_id)) {}
  ~WorkerHandle() { end(); }

  const std::string& id() const { return id_; }
  const std::string& job_id() const { return job_id_; }
  bool open() const { return impl_->desk.is_open(id_); }

  // Closes the worker and cancels its job (idempotent).
  void end() {
    if (ended_) return;
    ended_ = true;
    impl_->desk.close(id_);
    {
      std::lock_guard lock(impl_->mu);
      impl_->live.erase(id_);
    }
    if (Status s = impl_->slurm.cancel(job_id_); !s.is_ok())
      spdlog::warn("cluster: cannot cancel Slurm job {} of worker {}: {}", job_id_, id_, s.message());
    impl_->unrecord(id_);
  }

  // Whether Slurm still runs (or queues) the job; asked at most every squeue_every_ms. A
  // Slurm that does not answer is taken to mean yes: the round's deadline still holds.
  bool alive() {
    const auto now = SteadyClock::now();
    if (now - checked_ < std::chrono::milliseconds(impl_->options.squeue_every_ms)) return alive_;
    checked_ = now;
    auto jobs = impl_->slurm.jobs(impl_->options.job_name_prefix);
    if (!jobs.ok()) return alive_;
    alive_ = false;
    last_state_ = "gone from squeue";
    for (const SlurmJobState& j : *jobs)
      if (j.id == job_id_) {
        alive_ = still_running(j);
        last_state_ = j.state + (j.state == "PENDING" ? " (" + j.reason + ")" : "");
      }
    return alive_;
  }
  const std::string& last_state() const { return last_state_; }

  // An adopted worker may report a round an earlier mufld posted: its first round's energy is
  // bounded by the time since its job was submitted, not since this process posted the round.
  void adopted(SteadyClock::time_point submitted) { adopted_submitted_ = submitted; }
  std::optional<SteadyClock::time_point> take_adopted_start() { return std::exchange(adopted_submitted_, std::nullopt); }

 private:
  std::shared_ptr<ClusterBackend::Impl> impl_;
  std::optional<SteadyClock::time_point> adopted_submitted_;
  std::string id_, job_id_;
  bool ended_ = false;
  bool alive_ = true;
  std::string last_state_;
  SteadyClock::time_point checked_{};
};

// A group's job on a cluster device: state here, rounds on the worker.
class ClusterJob final : public TrainingJob {
 public:
  ClusterJob(std::shared_ptr<ClusterBackend::Impl> impl, Device device, fl::JobConfig config,
             std::unique_ptr<TrainingJob> local, std::shared_ptr<WorkerHandle> worker, std::string script)
      : impl_(std::move(impl)),
        device_(std::move(device)),
        config_(std::move(config)),
        local_(std::move(local)),
        worker_(std::move(worker)),
        script_(std::move(script)) {}

  Result<fl::RoundReport> run_round(const std::function<bool()>& should_stop) override {
    if (!worker_ || !worker_->open()) {
      // Slurm refused or did not answer: kUnavailable, which the executor waits out with a
      // backoff (the device goes back) instead of counting it as a failed round.
      auto started = WorkerHandle::start(impl_, device_, config_.name, script_);
      if (!started.ok()) return started.status();
      worker_ = *started;
    }
    auto checkpoint = local_->checkpoint();
    if (!checkpoint.ok()) return checkpoint.status();
    const int64_t round = config_.round_offset + local_->rounds_done() + 1;
    const int64_t done_before = local_->rounds_done();
    const auto posted = worker_->take_adopted_start().value_or(SteadyClock::now());
    const auto& limit_of = impl_->options.power_limit;
    impl_->desk.post(worker_->id(), {round, fl::job_config_to_json(config_).dump(),
                                     std::make_shared<const std::string>(std::move(*checkpoint)),
                                     limit_of ? limit_of(device_.name) : std::nullopt});
    bool stopped = false;
    auto result = impl_->desk.wait(
        worker_->id(), SteadyClock::now() + std::chrono::milliseconds(impl_->options.round_timeout_ms), [&] {
          stopped = should_stop && should_stop();
          return stopped || !worker_->alive();
        });
    if (stopped) {
      fl::RoundReport r;
      r.round = round;
      r.stopped = true;
      return r;
    }
    if (!result.ok()) return fail(round, result.status());
    if (Status s = local_->restore(result->checkpoint); !s.is_ok()) return fail(round, s);
    if (local_->rounds_done() != done_before + 1)
      return fail(round, Status::internal("its checkpoint is not one round on from the one it was given"));
    if (impl_->options.on_energy) {
      const auto [joules, seconds] = bounded_energy(*result, SteadyClock::now() - posted);
      impl_->options.on_energy(device_.name, joules, result->meter, seconds);
    }
    return std::move(result->report);
  }

  Result<std::string> checkpoint() const override { return local_->checkpoint(); }
  Status restore(const std::string& bytes) override { return local_->restore(bytes); }
  Result<std::string> export_model(const std::string& head_key) const override {
    return local_->export_model(head_key);
  }
  Result<std::vector<std::string>> export_cluster_models(const std::string& head_key) const override {
    return local_->export_cluster_models(head_key);
  }
  const std::vector<std::string>& heads() const override { return local_->heads(); }
  int64_t rounds_done() const override { return local_->rounds_done(); }
  void set_affinity_every(int n) override {
    config_.affinity_every = n;
    local_->set_affinity_every(n);
  }
  void set_final_heads(const std::vector<std::string>& keys) override {
    config_.final_heads = keys;  // the worker gets it with the round's config
    local_->set_final_heads(keys);
  }

  // A worker's energy report, bounded by what mufld can vouch for: no longer than the round
  // took as mufld saw it, no more than the device's profile draws at full power over that
  // time, with a 25 % margin (a tenant's budget is charged with it).
  std::pair<double, double> bounded_energy(const WorkerResult& r, SteadyClock::duration waited) const {
    const double wall = std::chrono::duration<double>(waited).count();
    const double seconds = std::min(r.seconds, wall);
    auto profile = find_power_profile(power_profile_of(device_, impl_->options.gpu_profile));
    const double most = profile.ok() ? 1.25 * profile->busy_watts_at(profile->max_limit_watts()) * wall : r.joules;
    if (r.joules > most)
      spdlog::warn("cluster: {}: the worker reported {:.0f} J for a round of {:.1f} s; counting {:.0f} J", device_.name,
                   r.joules, wall, most);
    return {std::min(r.joules, most), seconds};
  }

  const TrainingJob& local() const { return *local_; }
  std::shared_ptr<WorkerHandle> worker() const { return worker_; }
  const Device& device() const { return device_; }

 private:
  // A round lost on the worker: the worker goes (a new one is started for the retry).
  Status fail(int64_t round, const Status& why) {
    std::string what = why.message();
    if (worker_ && !worker_->alive())
      what = "the worker's Slurm job " + worker_->job_id() + " ended without a report (" + worker_->last_state() + ")";
    else if (why.code() == Status::Code::kUnavailable)
      what = "no report from worker " + worker_->id() + " within " +
             std::to_string(impl_->options.round_timeout_ms / 1000) + " s";
    if (worker_) worker_->end();
    worker_.reset();
    return Status::internal("round " + std::to_string(round) + " on " + device_.name + ": " + what);
  }

  std::shared_ptr<ClusterBackend::Impl> impl_;
  Device device_;
  fl::JobConfig config_;
  std::unique_ptr<TrainingJob> local_;
  std::shared_ptr<WorkerHandle> worker_;
  std::string script_;
};

class DeviceBackend final : public TrainingBackend {
 public:
  // FedEMA keeps its clients' models on mufld's disk, committed by mufld's checkpoints
  // (fl/client_states.h); a worker on another node has neither, so it is not trained there yet.
  // Placement keeps such groups off cluster GPUs (the HostLocal filter): this is the backstop.
  // (Client clustering trains there: its clusters travel in the checkpoint, both ways, and the
  // round report carries each cluster's.)
  static Status trainable_here(const fl::JobConfig& config) {
    if (config.local_update == "fedavg") return Status::ok();
    return Status::invalid_argument(
        "bad job configuration",
        {{"local_update", "\"" + config.local_update + "\" is not trained by cluster workers yet"}});
  }

  DeviceBackend(std::shared_ptr<ClusterBackend::Impl> impl, Device device, std::string script)
      : impl_(std::move(impl)), device_(std::move(device)), script_(std::move(script)) {}

  Result<std::unique_ptr<TrainingJob>> create(const fl::JobConfig& config, const fl::RuntimeOptions& runtime) override {
    if (Status s = trainable_here(config); !s.is_ok()) return s;
    auto local = local_training().create(config, on_this_cpu(runtime));
    if (!local.ok()) return local.status();
    // A group resumed after a restart of mufld takes back its worker, where Slurm still runs it.
    auto worker = impl_->take_parked(config.name, device_.name);
    if (worker) spdlog::info("cluster: group {} on {} goes on with its adopted worker {} (Slurm job {})", config.name,
                             device_.name, worker->id(), worker->job_id());
    return std::unique_ptr<TrainingJob>(
        std::make_unique<ClusterJob>(impl_, device_, config, std::move(*local), std::move(worker), script_));
  }

  Result<std::unique_ptr<TrainingJob>> derive(const TrainingJob& source, const fl::JobConfig& config,
                                              const fl::RuntimeOptions& runtime) override {
    const auto* cluster = dynamic_cast<const ClusterJob*>(&source);
    if (!cluster) return Status::internal("derive: the source job is not a cluster job");
    if (Status s = trainable_here(config); !s.is_ok()) return s;
    auto local = local_training().derive(cluster->local(), config, on_this_cpu(runtime));
    if (!local.ok()) return local.status();
    // The worker stays with the group's lineage while it stays on this device.
    auto worker = cluster->device().name == device_.name ? cluster->worker() : nullptr;
    return std::unique_ptr<TrainingJob>(
        std::make_unique<ClusterJob>(impl_, device_, config, std::move(*local), std::move(worker), script_));
  }

 private:
  std::shared_ptr<ClusterBackend::Impl> impl_;
  Device device_;
  std::string script_;
};

}  // namespace

ClusterBackend::ClusterBackend(SlurmClient& slurm, WorkerDesk& desk, ClusterBackendOptions options)
    : impl_(std::make_shared<Impl>(slurm, desk, std::move(options))) {}

ClusterBackend::~ClusterBackend() {
  stop_sweeper();
  // The parked workers hold the Impl: let them go, or neither is ever freed (nor its job cancelled).
  impl_->take_all_parked();
}

void ClusterBackend::stop_sweeper() {
  {
    std::lock_guard lock(impl_->mu);
    impl_->stopping = true;
  }
  impl_->parked_changed.notify_all();
  if (sweeper_.joinable()) sweeper_.join();
}

TrainingBackend* ClusterBackend::for_device(const Device& device) {
  if (!device.on_cluster()) return nullptr;
  std::lock_guard lock(mu_);
  auto& backend = backends_[device.name];
  if (!backend) backend = std::make_unique<DeviceBackend>(impl_, device, job_script(device));
  return backend.get();
}

void ClusterBackend::shutdown() {
  stop_sweeper();  // it let the adopted workers no job took go: they are ended here
  impl_->take_all_parked();
  std::map<std::string, std::string> live;
  {
    std::lock_guard lock(impl_->mu);
    live.swap(impl_->live);
  }
  for (const auto& [worker, job] : live) {
    impl_->desk.close(worker);
    if (Status s = impl_->slurm.cancel(job); !s.is_ok())
      spdlog::warn("cluster: cannot cancel Slurm job {} of worker {}: {}", job, worker, s.message());
    impl_->unrecord(worker);
  }
}

Result<ClusterBackend::Reconciled> ClusterBackend::reconcile_workers() {
  auto jobs = impl_->slurm.jobs(impl_->options.job_name_prefix + "wrk_");
  if (!jobs.ok()) return jobs.status();
  std::vector<storage::WorkerRecord> records;
  if (impl_->options.store) {
    auto listed = impl_->options.store->list_workers();
    if (!listed.ok()) return listed.status();
    records = std::move(*listed);
  }
  Reconciled out;
  std::map<std::string, const storage::WorkerRecord*> by_job;  // Slurm job id → its record
  for (const auto& r : records) by_job[r.slurm_job_id] = &r;
  std::map<std::string, bool> listed;  // worker id → Slurm still lists its job
  for (const SlurmJobState& j : *jobs) {
    if (is_ours(j.id)) continue;
    auto it = by_job.find(j.id);
    const storage::WorkerRecord* r = it == by_job.end() ? nullptr : it->second;
    if (r) listed[r->id] = true;
    if (r && j.name == impl_->options.job_name_prefix + r->id && still_running(j) && adopt(*r)) {
      ++out.adopted;
      continue;
    }
    if (Status s = impl_->slurm.cancel(j.id); !s.is_ok()) {
      spdlog::warn("cluster: cannot cancel Slurm job {} ({}) left by an earlier mufld: {}", j.id, j.name, s.message());
      continue;
    }
    spdlog::info("cluster: cancelled Slurm job {} ({}, {}) left by an earlier mufld", j.id, j.name, j.state);
    ++out.cancelled;
    if (r) impl_->unrecord(r->id);
  }
  for (const auto& r : records)
    if (!listed.count(r.id)) {
      impl_->unrecord(r.id);
      ++out.forgotten;
    }
  if (out.adopted > 0) start_sweeper();
  return out;
}

bool ClusterBackend::is_ours(const std::string& job_id) const {
  std::lock_guard lock(impl_->mu);
  for (const auto& [worker, job] : impl_->live)
    if (job == job_id) return true;
  return false;
}

bool ClusterBackend::adopt(const storage::WorkerRecord& r) {
  if (Status s = impl_->desk.adopt(r.id, r.token_sha256, r.group_id, r.device); !s.is_ok()) {
    spdlog::warn("cluster: cannot adopt worker {}: {}", r.id, s.message());
    return false;
  }
  auto handle = std::make_shared<WorkerHandle>(impl_, r.id, r.slurm_job_id);
  // Its round in flight started after its job was submitted, and within the round's deadline.
  const int64_t since_ms = std::clamp<int64_t>(SystemClock::instance().now_unix_ms() - r.created_unix_ms, 0,
                                               impl_->options.round_timeout_ms);
  handle->adopted(SteadyClock::now() - std::chrono::milliseconds(since_ms));
  Impl::Parked displaced;  // a second live worker of the group (an older one not yet ended): it goes
  {
    std::lock_guard lock(impl_->mu);
    impl_->live[r.id] = r.slurm_job_id;
    displaced = std::exchange(impl_->parked[r.group_id], Impl::Parked{std::move(handle), r.device});
  }
  displaced.worker.reset();  // ends it outside the lock (WorkerHandle::end takes it)
  spdlog::info("cluster: adopted worker {} (Slurm job {}) of group {} on {}", r.id, r.slurm_job_id, r.group_id,
               r.device);
  return true;
}

// Lets go, after adopt_grace_ms, of the adopted workers no job took (their groups went
// elsewhere, ended while mufld was down, or wait for a device).
void ClusterBackend::start_sweeper() {
  if (sweeper_.joinable()) return;
  const auto deadline = SteadyClock::now() + std::chrono::milliseconds(impl_->options.adopt_grace_ms);
  sweeper_ = std::thread([impl = impl_, deadline] {
    std::map<std::string, Impl::Parked> left;
    {
      std::unique_lock lock(impl->mu);
      impl->parked_changed.wait_until(lock, deadline, [&] { return impl->stopping || impl->parked.empty(); });
      if (impl->stopping) return;
      left.swap(impl->parked);
    }
    for (const auto& [group, p] : left)
      spdlog::info("cluster: no device took group {} within {} ms: its adopted worker is cancelled", group,
                   impl->options.adopt_grace_ms);
  });
}

std::string ClusterBackend::job_script(const Device& device) const {
  std::string script = "#!/bin/sh\n# mufld's worker job (docs/cluster.md)\nexec";
  for (const std::string& arg : impl_->options.worker_command) script += " " + shell_quote(arg);
  for (const std::string& arg : {std::string("--power-profile"), power_profile_of(device, impl_->options.gpu_profile)})
    script += " " + shell_quote(arg);
  return script + "\n";
}

}  // namespace mufl::scheduler
