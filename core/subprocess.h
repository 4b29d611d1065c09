#pragma once
// run_process: runs a program with arguments (no shell), feeds it stdin, collects its stdout
// and stderr, and waits for it with a time limit. mufld asks Slurm's commands (sinfo, sbatch,
// squeue, scancel) through it: they are short, and their answers fit in memory.
//
// Contract: argv[0] is looked up in PATH when it has no '/'. The child gets this process's
// environment plus `env` (NAME=value entries, which win), stdin from `stdin_data` (then EOF),
// and nothing else open. Outcomes:
//   OK with exit_code: the program ran and ended (exit_code = its status, or 128 + the signal
//     that ended it);
//   kNotFound: the program is not there or cannot be run ("sinfo: not found");
//   kUnavailable: it did not end within `timeout_ms` (it is killed, SIGKILL, and reaped);
//   kInternal: a pipe or spawn failure of this process;
//   kResourceExhausted: it wrote more than `max_output_bytes` to stdout or stderr (killed).
// Thread safety: may be called from any thread.
#include <cstdint>
#include <string>
#include <vector>

#include "core/result.h"

namespace mufl {

struct ProcessOptions {
  int64_t timeout_ms = 30'000;
  std::string stdin_data;
  std::vector<std::string> env;        // "NAME=value", added to (and overriding) ours
  size_t max_output_bytes = 16u << 20;  // per stream
};

struct ProcessOutput {
  int exit_code = 0;
  std::string out;
  std::string err;
};

Result<ProcessOutput> run_process(const std::vector<std::string>& argv, const ProcessOptions& options = {});

}  // namespace mufl
