#pragma once
// Runs the real mufld binary as a child process for end-to-end tests: starts it on port 0,
// waits for its "mufld listening on HOST:PORT" line (no sleeps), and stops or kills it.
#include <sys/types.h>

#include <cstdint>
#include <string>
#include <vector>

namespace mufl::testing {

class MufldProcess {
 public:
  // Starts `binary` with `--listen 127.0.0.1:0 --data-dir data_dir` plus `extra_args`, with
  // MUFL_ADMIN_TOKEN=admin_token in its environment when that is not empty. Throws
  // std::runtime_error when it exits or prints nothing within 30 s.
  MufldProcess(const std::string& binary, const std::string& data_dir, const std::string& admin_token,
               const std::vector<std::string>& extra_args = {});
  // Kills the process if it still runs.
  ~MufldProcess();
  MufldProcess(const MufldProcess&) = delete;
  MufldProcess& operator=(const MufldProcess&) = delete;

  uint16_t port() const { return port_; }
  pid_t pid() const { return pid_; }
  // Sends `signal` and waits for the exit. Returns the exit code, or 128+signal when the
  // process died of a signal.
  int stop(int signal);

 private:
  pid_t pid_ = -1;
  int stdout_fd_ = -1;
  uint16_t port_ = 0;
};

// Runs a command line and returns its exit code; its output (stdout and stderr) in `output`.
int run_command(const std::string& command, std::string& output);

}  // namespace mufl::testing
