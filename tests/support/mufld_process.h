#pragma once
// Runs the real mufld binary as a child process for end-to-end tests: starts it on port 0,
// waits for its "mufld listening on HOST:PORT" line (no sleeps), and stops or kills it. After a
// stop it can be started again on the same data dir and the same port, so a client that holds
// the address (a browser page, muflctl watch, an SSE client) can reconnect to the new process.
#include <sys/types.h>

#include <cstdint>
#include <string>
#include <vector>

namespace mufl::testing {

class MufldProcess {
 public:
  // Starts `binary` with `--listen 127.0.0.1:0 --data-dir data_dir` plus `extra_args`, with
  // MUFL_ADMIN_TOKEN=admin_token in its environment when that is not empty. Throws
  // std::runtime_error when it exits or prints nothing within 30 s. `extra_env`: NAME=value
  // pairs added to its environment (the test's own MUFL_* variables are never passed on).
  MufldProcess(const std::string& binary, const std::string& data_dir, const std::string& admin_token,
               const std::vector<std::string>& extra_args = {}, const std::vector<std::string>& extra_env = {});
  // Kills the process if it still runs.
  ~MufldProcess();
  MufldProcess(const MufldProcess&) = delete;
  MufldProcess& operator=(const MufldProcess&) = delete;

  // The port of the first start; every later start() listens on it too.
  uint16_t port() const { return port_; }
  // The port of the last start's own /metrics listener (--metrics-listen, its line "mufld
  // metrics listening on HOST:PORT"); 0 when it has none.
  uint16_t metrics_port() const { return metrics_port_; }
  // The running process, or -1 after stop().
  pid_t pid() const { return pid_; }
  bool running() const { return pid_ > 0; }
  // Sends `signal` and waits for the exit. Returns the exit code, or 128+signal when the
  // process died of a signal; -1 when it was not running.
  int stop(int signal);
  // After stop(): starts the same binary again with the same data dir, admin token and
  // arguments, listening on `--listen 127.0.0.1:port()`, and waits for its listening line.
  // It binds at once although the stopped process's connections may be in TIME_WAIT there
  // (mufld's acceptor sets SO_REUSEADDR). Throws std::logic_error when the process still runs,
  // and std::runtime_error as the constructor does (also when another process took the port
  // in between).
  void start();
  // The environment additions of the next start()s (as the constructor's `extra_env`).
  void set_env(std::vector<std::string> extra_env) { extra_env_ = std::move(extra_env); }
  // Waits up to `seconds` for the process to end by itself (it closes its stdout as it dies);
  // its exit as stop() reports it, or -1 when it still runs then.
  int wait_exit(int seconds);

 private:
  // Waits for the exit of the (ending) process; its exit as stop() reports it.
  int reap();
  // Spawns mufld listening on `listen` and returns the port its listening line names.
  uint16_t launch(const std::string& listen);

  std::string binary_, data_dir_, admin_token_;
  std::vector<std::string> extra_args_, extra_env_;
  pid_t pid_ = -1;
  int stdout_fd_ = -1;
  uint16_t port_ = 0;
  uint16_t metrics_port_ = 0;
};

// Runs a command line and returns its exit code; its output (stdout and stderr) in `output`.
int run_command(const std::string& command, std::string& output);

}  // namespace mufl::testing
