#pragma once
// SlurmClient: what mufld asks of a Slurm cluster (issue 16): its nodes and GPUs, to submit a
// `mufl-worker` job, to cancel one, and which of mufld's jobs Slurm still knows. SlurmCli
// asks through Slurm's own commands (sinfo, sbatch, squeue, scancel), not slurmrestd: the
// commands are on every node that can submit work, need no token or extra daemon, and read
// the same slurm.conf (SLURM_CONF) as a person at the same shell would; slurmrestd is an
// optional daemon that most sites do not run. Tests use a fake of this interface.
//
// Contract: every method returns a Status for a command that fails (kUnavailable when Slurm
// cannot be reached or a command times out, kFailedPrecondition when sbatch refuses the job
// for good (a GRES, partition, account or node the cluster does not have), kNotFound when the
// command is not installed, kInvalidArgument when its answer cannot be parsed); none throws.
// Thread safety: SlurmCli's methods may be called from any thread.
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "core/result.h"
#include "scheduler/cluster/slurm_inventory.h"

namespace mufl::scheduler {

// One `mufl-worker` job as mufld submits it.
struct SlurmJobSpec {
  std::string name;                      // --job-name: "mufl-<worker id>", how squeue finds it
  std::string gres;                      // --gres: "gpu:v100:1"
  std::string node;                      // --nodelist: the node placement chose; empty: Slurm picks
  std::string partition;                 // --partition; empty: the cluster's default
  std::string account;                   // --account; empty: the user's default
  std::vector<std::string> extra_args;   // more sbatch arguments, as the operator gave them
  std::string script;                    // the batch script, given on stdin
  std::vector<std::string> env;          // "NAME=value" for the job (sbatch exports our environment)
};

// One job of squeue's answer.
struct SlurmJobState {
  std::string id;
  std::string name;
  std::string state;   // as Slurm says it: "PENDING", "RUNNING", "COMPLETING", …
  std::string node;    // where it runs; empty while pending
  std::string reason;  // why it waits ("Resources", "Priority"), "None" when running
  bool operator==(const SlurmJobState&) const = default;
};

class SlurmClient {
 public:
  virtual ~SlurmClient() = default;
  virtual Result<std::vector<SlurmNode>> nodes() = 0;
  // The job id Slurm gave the job.
  virtual Result<std::string> submit(const SlurmJobSpec& job) = 0;
  // OK also for a job that already ended (scancel says nothing then).
  virtual Status cancel(const std::string& job_id) = 0;
  // This user's jobs that Slurm still lists (squeue --me) whose names start with `name_prefix`.
  virtual Result<std::vector<SlurmJobState>> jobs(const std::string& name_prefix) = 0;
};

struct SlurmCliOptions {
  int64_t timeout_ms = 30'000;  // per command
  std::string partition;        // sinfo lists this partition only; empty: all
};

std::unique_ptr<SlurmClient> make_slurm_cli(SlurmCliOptions options);

// The argument list of `sbatch` for `job` (the script goes on stdin). Pure, for tests.
std::vector<std::string> sbatch_arguments(const SlurmJobSpec& job);

// squeue's answer in kSqueueFormat → jobs, keeping those whose names start with `name_prefix`.
// kInvalidArgument naming the line for one with another number of fields.
// The name last: it is the only field a user chooses, so it may hold '|'.
inline constexpr const char* kSqueueFormat = "%i|%T|%N|%r|%j";
Result<std::vector<SlurmJobState>> parse_squeue(std::string_view text, const std::string& name_prefix);

}  // namespace mufl::scheduler
