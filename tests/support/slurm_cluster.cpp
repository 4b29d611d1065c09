#include "tests/support/slurm_cluster.h"

#include <stdlib.h>
#include <unistd.h>

#include <cstdio>
#include <sstream>
#include <stdexcept>

#include "core/file_io.h"
#include "core/subprocess.h"

namespace mufl::testing {
namespace {

// The file's bytes; "" when it cannot be read (a log not written yet).
std::string slurp(const std::string& path) {
  auto bytes = read_file(path);
  return bytes.ok() ? *bytes : std::string();
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

// core/subprocess.h's runner; a command past its time reads as exit code 124, as timeout(1) says.
SlurmRun run_command(const std::vector<std::string>& argv, int timeout_seconds) {
  ProcessOptions o;
  o.timeout_ms = int64_t{timeout_seconds} * 1000;
  auto r = run_process(argv, o);
  if (!r.ok() && r.status().code() == Status::Code::kUnavailable) return SlurmRun{124, "", r.status().message()};
  if (!r.ok()) throw std::runtime_error("cannot run " + argv.at(0) + ": " + r.status().message());
  return SlurmRun{r->exit_code, std::move(r->out), std::move(r->err)};
}

}  // namespace

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
                           90);
  start_output_ = r.err + r.out;
  if (r.exit_code != 0) {
    // The script stops what it started when it fails; stop again in case it was killed.
    run_command({script_, "stop", dir_.path()}, 60);
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
    const SlurmRun r = run_command({script_, "stop", dir_.path()}, 90);
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
  return run_command(argv, timeout_seconds);
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
