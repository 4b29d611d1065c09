#include "tests/support/slurm_cluster.h"

#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <thread>

extern char** environ;

namespace mufl::testing {
namespace {

std::string slurp(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

bool on_path(const std::string& name) {
  const char* path = std::getenv("PATH");
  std::istringstream dirs(path ? path : "/usr/local/bin:/usr/bin:/bin");
  std::string d;
  while (std::getline(dirs, d, ':')) {
    if (d.empty()) d = ".";
    if (access((d + "/" + name).c_str(), X_OK) == 0) return true;
  }
  return false;
}

std::string tail_lines(const std::string& text, int lines) {
  size_t pos = text.size();
  if (pos > 0 && text[pos - 1] == '\n') --pos;
  for (int i = 0; i < lines && pos != std::string::npos && pos > 0; ++i) pos = text.rfind('\n', pos - 1);
  return pos == std::string::npos ? text : text.substr(pos + 1);
}

}  // namespace

SlurmRun run_command(const std::vector<std::string>& argv_in, const std::string& scratch_dir, int timeout_seconds) {
  if (argv_in.empty()) throw std::invalid_argument("run_command: empty argv");
  static std::atomic<int> counter{0};
  const std::string base = scratch_dir + "/run-" + std::to_string(getpid()) + "-" + std::to_string(counter++);
  const std::string out = base + ".out", err = base + ".err";

  std::vector<std::string> strings = argv_in;
  std::vector<char*> argv;
  for (auto& a : strings) argv.push_back(a.data());
  argv.push_back(nullptr);

  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, STDIN_FILENO, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_addopen(&actions, STDOUT_FILENO, out.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
  posix_spawn_file_actions_addopen(&actions, STDERR_FILENO, err.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
  pid_t pid = -1;
  const int rc = posix_spawnp(&pid, strings[0].c_str(), &actions, nullptr, argv.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  if (rc != 0) throw std::runtime_error("cannot start " + strings[0] + ": " + std::strerror(rc));

  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(timeout_seconds);
  int status = 0;
  bool timed_out = false;
  for (;;) {
    const pid_t r = waitpid(pid, &status, WNOHANG);
    if (r == pid) break;
    if (r < 0 && errno != EINTR) throw std::runtime_error("waitpid failed: " + std::string(std::strerror(errno)));
    if (!timed_out && std::chrono::steady_clock::now() > deadline) {
      kill(pid, SIGKILL);
      timed_out = true;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  SlurmRun result;
  result.exit_code = timed_out             ? 124
                     : WIFEXITED(status)   ? WEXITSTATUS(status)
                     : WIFSIGNALED(status) ? 128 + WTERMSIG(status)
                                           : -1;
  result.out = slurp(out);
  result.err = slurp(err);
  unlink(out.c_str());
  unlink(err.c_str());
  return result;
}

bool SlurmCluster::available() { return missing().empty(); }

std::string SlurmCluster::missing() {
  std::string names;
  for (const char* tool : {"slurmctld", "slurmd", "munged", "sbatch", "sinfo"})
    if (!on_path(tool)) names += (names.empty() ? "" : " ") + std::string(tool);
  return names;
}

SlurmCluster::SlurmCluster(const std::string& script) : SlurmCluster(script, Options{}) {}

SlurmCluster::SlurmCluster(const std::string& script, const Options& options) : script_(script) {
  // Start takes about a second; its own waits are bounded (30 s for the node), so 90 s is a
  // limit for a hung command, not a wait.
  SlurmRun r = run_command({script_, "start", dir_.path(), "--gpus", std::to_string(options.gpus), "--gpu-type",
                            options.gpu_type, "--watch-pid", std::to_string(getpid())},
                           dir_.path(), 90);
  start_output_ = r.err + r.out;
  if (r.exit_code != 0) {
    // The script stops what it started when it fails; stop again in case it was killed.
    run_command({script_, "stop", dir_.path()}, dir_.path(), 60);
    throw std::runtime_error(script_ + " start " + dir_.path() + " failed (exit code " + std::to_string(r.exit_code) +
                             "):\n" + start_output_);
  }
  if (const char* old = std::getenv("SLURM_CONF")) {
    had_slurm_conf_ = true;
    old_slurm_conf_ = old;
  }
  setenv("SLURM_CONF", slurm_conf().c_str(), 1);
}

SlurmCluster::~SlurmCluster() {
  try {
    const SlurmRun r = run_command({script_, "stop", dir_.path()}, dir_.path(), 90);
    if (r.exit_code != 0)
      std::fprintf(stderr, "%s stop %s failed:\n%s%s", script_.c_str(), dir_.path().c_str(), r.out.c_str(),
                   r.err.c_str());
  } catch (const std::exception& e) {
    std::fprintf(stderr, "slurm cluster stop failed: %s\n", e.what());
  }
  if (had_slurm_conf_)
    setenv("SLURM_CONF", old_slurm_conf_.c_str(), 1);
  else
    unsetenv("SLURM_CONF");
}

SlurmRun SlurmCluster::run(const std::vector<std::string>& argv, int timeout_seconds) const {
  // SLURM_CONF is already this cluster's (the constructor set it), unless the test changed it.
  setenv("SLURM_CONF", slurm_conf().c_str(), 1);
  return run_command(argv, dir_.path(), timeout_seconds);
}

std::string SlurmCluster::log_tail(int lines) const {
  std::string text;
  for (const char* name : {"slurmctld.log", "slurmd.log", "munged.log"}) {
    const std::string body = slurp(dir_.file(name));
    if (body.empty()) continue;
    text += "--- last lines of " + dir_.file(name) + "\n" + tail_lines(body, lines);
    if (!text.empty() && text.back() != '\n') text += '\n';
  }
  return text;
}

}  // namespace mufl::testing
