#pragma once
// A one-node Slurm cluster of its own for a test (issue 16: mufld submits mufl-worker jobs with
// sbatch): scripts/slurm-one-node starts munged, slurmctld and slurmd with everything in a fresh
// temporary folder (config, state, logs, munge key and socket, free ports), so that two test
// processes never share a cluster. The node has the machine's CPUs and memory and fake GPUs
// (symlinks to /dev/null that Slurm hands out as GRES, so jobs see CUDA_VISIBLE_DEVICES).
//
// The constructor returns once sinfo reports the node idle and sets SLURM_CONF in this process's
// environment, so Slurm's client commands, and children such as mufld, talk to this cluster;
// the destructor cancels every job, stops the daemons (waiting until they are gone), restores
// SLURM_CONF and removes the folder. Should the test die without its destructor (a crash,
// CTest's timeout), a watcher the script leaves behind stops the cluster once this process is
// gone.
//
// Quirk worth knowing when timing jobs: Slurm 22.05 never starts a batch job at submit; its
// scheduler pass does, within about 1 s, except during the first 3 s after slurmctld's start
// (see scripts/slurm-one-node).
//
// One cluster per process at a time (SLURM_CONF is process-wide). Not thread-safe.
#include <string>
#include <vector>

#include "tests/support/temp_dir.h"

namespace mufl::testing {

struct SlurmRun {
  int exit_code = -1;  // 128+signal when it died of a signal, 124 when it ran past its time
  std::string out;
  std::string err;
};

class SlurmCluster {
 public:
  struct Options {
    int gpus = 2;                  // fake GPUs on the node (0: none)
    std::string gpu_type = "fake";  // their GRES type: the node offers gpu:<type>:<gpus>
  };

  // Whether slurmctld, slurmd, munged, sbatch and sinfo are all on PATH.
  static bool available();
  // Those of them that are not on PATH, space-separated ("" when available()).
  static std::string missing();

  // Runs `script start DIR --gpus N --gpu-type T --watch-pid <this process>` (script:
  // scripts/slurm-one-node) in a fresh temporary DIR. Throws std::runtime_error, with the
  // script's output (it ends with the daemons' log tails), when the cluster does not come up.
  SlurmCluster(const std::string& script, const Options& options);
  explicit SlurmCluster(const std::string& script);  // Options{}: gpu:fake:2
  // `script stop DIR`; then SLURM_CONF is what it was before the constructor.
  ~SlurmCluster();
  SlurmCluster(const SlurmCluster&) = delete;
  SlurmCluster& operator=(const SlurmCluster&) = delete;

  const std::string& dir() const { return dir_.path(); }
  // DIR/env, a file for a shell to source: export SLURM_CONF=DIR/slurm.conf.
  std::string env_file() const { return dir_.file("env"); }
  std::string slurm_conf() const { return dir_.file("slurm.conf"); }
  // What start printed ("slurm-one-node: cluster up in DIR after 0.6 s (ports …)").
  const std::string& start_output() const { return start_output_; }

  // Runs a Slurm client command (argv[0] found on PATH, no shell) with SLURM_CONF set to this
  // cluster; returns its exit code, stdout and stderr. Killed (exit code 124) after
  // `timeout_seconds`.
  SlurmRun run(const std::vector<std::string>& argv, int timeout_seconds = 30) const;

  // The last `lines` lines of slurmctld's, slurmd's and munged's logs, for failure messages.
  std::string log_tail(int lines = 20) const;

 private:
  std::string script_;
  TempDir dir_;
  std::string start_output_;
  bool had_slurm_conf_ = false;
  std::string old_slurm_conf_;
};

}  // namespace mufl::testing
