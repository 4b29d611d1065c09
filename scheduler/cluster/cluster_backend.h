#pragma once
// ClusterBackend: where a cluster device's rounds run (scheduler/training_job.h's seam): in a
// `mufl-worker` job on the device's Slurm node (docs/cluster.md).
//
// A job of this backend keeps the group's state in an fl::FlJob in this process (the local
// backend's job, on the CPU), which never trains: it makes the checkpoint each round starts
// from, and takes back the checkpoint the worker returns. So checkpoints, exports, splits and
// crash recovery work as for a local group, and a round trained by a worker gives the same
// weights as the same round trained here (every random choice comes from the job's seed).
//
// The worker: the first round of a job opens one (WorkerDesk) and submits its Slurm job
// (`sbatch --gres=gpu:TYPE:1 --nodelist=NODE`, the script `exec mufl-worker …`); later rounds,
// and jobs derived from this one on the same device (a member joins or leaves at a round
// boundary), keep it. It is closed (410 to its poll) and cancelled (scancel) when no job holds
// it any more (the group ended, split: its children are claimed afresh, was cancelled, was
// released at a boundary, or mufld stops), or when a round fails on it.
//
// A round also fails with kUnavailable when Slurm refuses or does not answer sbatch; the
// executor then lets the device go and claims the group again after a backoff, without
// counting a failed round.
//
// A round fails with kInternal ("the worker job … ended without a report", "no report within
// …"), which the executor retries from the checkpoint (ExecutorOptions::max_round_errors), when
// the worker's Slurm job leaves squeue before reporting (scancel, node failure, kill -9) or the
// round's deadline passes. should_stop (shutdown, cancel) gives a stopped report at once.
//
// Thread safety: for_device() and shutdown() from any thread; each job as TrainingJob says.
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "scheduler/cluster/slurm_client.h"
#include "scheduler/cluster/worker_desk.h"
#include "scheduler/devices.h"
#include "scheduler/training_job.h"
#include "storage/worker_store.h"

namespace mufl::scheduler {

struct ClusterBackendOptions {
  std::string worker_url;                 // MUFL_SERVER_URL of the workers (--worker-url)
  std::string partition;                  // --slurm-partition
  std::string account;                    // --slurm-account
  std::vector<std::string> sbatch_args;   // --slurm-sbatch-arg
  // The job script's command line: the program (on the nodes' PATH, or a full path) and its
  // arguments, e.g. {"/opt/mufl/mufl-worker", "--data-dir", "/shared/mufl"}.
  std::vector<std::string> worker_command = {"mufl-worker"};
  std::string job_name_prefix = "mufl-";  // squeue finds mufld's jobs by it
  // The power profile of a GPU whose GRES type names none (--gpu-power-profile): the worker
  // meters with it when its GPU has no NVML (`--power-profile` on its command line).
  std::string gpu_profile = "V100";
  int64_t round_timeout_ms = 3'600'000;   // a round not reported within this is taken back
  int64_t squeue_every_ms = 5'000;        // how often a waiting round asks whether its job lives
  // Called with each reported round's energy (device, joules, meter, seconds) before the round
  // returns: the device's meter (scheduler/energy/reported_meter.h) adds it.
  std::function<void(const std::string& device, double joules, const std::string& meter, double seconds)> on_energy;
  // The power limit placement set on a device for its group (ReportedMeter), in watts, sent with
  // each round for the worker to apply; nullopt (or no function): the GPU's highest.
  std::function<std::optional<double>(const std::string& device)> power_limit;
  // Where open workers are recorded (id, token SHA-256, group, device, Slurm job), so that a
  // mufld restarted after a crash adopts those Slurm still runs; null keeps them in memory only.
  storage::WorkerStore* store = nullptr;
  // How long an adopted worker waits for its group to be claimed again by a device of its node
  // and GPU type before it is closed and its job cancelled.
  int64_t adopt_grace_ms = 60'000;
};

class ClusterBackend {
 public:
  // `slurm` and `desk` must outlive the backend and its jobs.
  ClusterBackend(SlurmClient& slurm, WorkerDesk& desk, ClusterBackendOptions options);
  ~ClusterBackend();

  // The backend of one cluster device (Device::on_cluster), made on the first ask and kept.
  TrainingBackend* for_device(const Device& device);
  // Cancels every worker job still open (mufld stops). Jobs made later still work.
  void shutdown();
  // At start, before the executor and the server's first request: reconciles the workers an
  // earlier mufld recorded (options.store) with the worker jobs Slurm lists (named with the
  // prefix). A recorded worker whose job Slurm still runs is adopted: its token authenticates
  // again, and the first job of its group on a device of the same node and GPU type takes it
  // (no new Slurm job; at most the round in flight is trained again). Every other worker job is
  // cancelled, and every record without a live job deleted. An adopted worker no job takes
  // within adopt_grace_ms is closed and cancelled. Slurm's error when it cannot list the jobs
  // (then nothing is adopted, cancelled or deleted).
  struct Reconciled {
    int adopted = 0;    // live workers kept
    int cancelled = 0;  // jobs cancelled: not recorded, or recorded but no longer running
    int forgotten = 0;  // records deleted whose job Slurm no longer lists
  };
  Result<Reconciled> reconcile_workers();

  // The batch script of a worker on `device`: `exec` of the worker command, quoted, with
  // `--power-profile` of the device's GRES type (scheduler/cluster/cluster_devices.h).
  std::string job_script(const Device& device) const;

  struct Impl;

 private:
  bool is_ours(const std::string& slurm_job_id) const;
  bool adopt(const storage::WorkerRecord& record);
  void start_sweeper();
  void stop_sweeper();

  std::shared_ptr<Impl> impl_;
  std::mutex mu_;
  std::map<std::string, std::unique_ptr<TrainingBackend>> backends_;
  std::thread sweeper_;  // reconcile_workers' grace for adopted workers
};

}  // namespace mufl::scheduler
