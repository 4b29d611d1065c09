#include "tests/support/mufld_process.h"

#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstring>
#include <stdexcept>

extern char** environ;

namespace mufl::testing {

MufldProcess::MufldProcess(const std::string& binary, const std::string& data_dir, const std::string& admin_token,
                           const std::vector<std::string>& extra_args, const std::vector<std::string>& extra_env)
    : binary_(binary), data_dir_(data_dir), admin_token_(admin_token), extra_args_(extra_args), extra_env_(extra_env) {
  port_ = launch("127.0.0.1:0");
}

void MufldProcess::start() {
  if (running()) throw std::logic_error("MufldProcess::start: mufld still runs (pid " + std::to_string(pid_) + ")");
  const uint16_t got = launch("127.0.0.1:" + std::to_string(port_));
  if (got != port_) {
    stop(SIGKILL);
    throw std::runtime_error("mufld restarted on port " + std::to_string(got) + ", not " + std::to_string(port_));
  }
}

uint16_t MufldProcess::launch(const std::string& listen) {
  std::vector<std::string> args = {binary_, "--listen", listen, "--data-dir", data_dir_};
  args.insert(args.end(), extra_args_.begin(), extra_args_.end());
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);

  std::vector<std::string> env_strings;
  for (char** e = environ; *e; ++e)
    if (std::strncmp(*e, "MUFL_", 5) != 0) env_strings.emplace_back(*e);  // keep the test's own MUFL_* out
  if (!admin_token_.empty()) env_strings.push_back("MUFL_ADMIN_TOKEN=" + admin_token_);
  env_strings.insert(env_strings.end(), extra_env_.begin(), extra_env_.end());
  std::vector<char*> envp;
  for (auto& e : env_strings) envp.push_back(e.data());
  envp.push_back(nullptr);

  int pipe_fds[2];
  if (pipe(pipe_fds) != 0) throw std::runtime_error("pipe failed");
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_adddup2(&actions, pipe_fds[1], STDOUT_FILENO);
  posix_spawn_file_actions_addclose(&actions, pipe_fds[0]);
  int rc = posix_spawn(&pid_, binary_.c_str(), &actions, nullptr, argv.data(), envp.data());
  posix_spawn_file_actions_destroy(&actions);
  close(pipe_fds[1]);
  if (rc != 0) {
    pid_ = -1;
    close(pipe_fds[0]);
    throw std::runtime_error("cannot start " + binary_ + ": " + std::strerror(rc));
  }
  stdout_fd_ = pipe_fds[0];

  // Read stdout until the listening line; poll bounds the wait without sleeping.
  std::string seen;
  const std::string marker = "mufld listening on ";
  auto have_line = [&] {
    size_t at = seen.find(marker);
    return at != std::string::npos && seen.find('\n', at) != std::string::npos;
  };
  while (!have_line()) {
    pollfd p{stdout_fd_, POLLIN, 0};
    if (poll(&p, 1, 30'000) <= 0) break;
    char buf[512];
    ssize_t n = read(stdout_fd_, buf, sizeof buf);
    if (n <= 0) break;
    seen.append(buf, static_cast<size_t>(n));
  }
  size_t at = seen.find(marker);
  size_t colon = at == std::string::npos ? std::string::npos : seen.find(':', at + marker.size());
  if (!have_line() || colon == std::string::npos) {
    stop(SIGKILL);
    throw std::runtime_error("mufld (--listen " + listen + ") did not report its port; it printed: " + seen);
  }
  // The metrics listener's line, when there is one, comes before the main one.
  const std::string metrics_marker = "mufld metrics listening on ";
  const size_t m = seen.find(metrics_marker);
  const size_t m_colon = m == std::string::npos ? std::string::npos : seen.find(':', m + metrics_marker.size());
  metrics_port_ = m_colon == std::string::npos ? 0 : static_cast<uint16_t>(std::stoi(seen.substr(m_colon + 1)));
  return static_cast<uint16_t>(std::stoi(seen.substr(colon + 1)));
}

MufldProcess::~MufldProcess() {
  if (running()) stop(SIGKILL);
}

int MufldProcess::stop(int signal) {
  if (!running()) return -1;
  kill(pid_, signal);
  return reap();
}

int MufldProcess::reap() {
  int status = 0;
  waitpid(pid_, &status, 0);
  pid_ = -1;
  close(stdout_fd_);
  stdout_fd_ = -1;
  if (WIFEXITED(status)) return WEXITSTATUS(status);
  if (WIFSIGNALED(status)) return 128 + WTERMSIG(status);
  return -1;
}

int MufldProcess::wait_exit(int seconds) {
  if (!running()) return -1;
  // Drain stdout until EOF: the pipe closes when the process is gone.
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(seconds);
  while (true) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) return -1;
    pollfd p{stdout_fd_, POLLIN, 0};
    if (poll(&p, 1, static_cast<int>(left.count())) <= 0) return -1;
    char buf[512];
    if (read(stdout_fd_, buf, sizeof buf) <= 0) break;
  }
  return reap();
}

int run_command(const std::string& command, std::string& output) {
  output.clear();
  FILE* p = popen((command + " 2>&1").c_str(), "r");
  if (!p) return -1;
  char buf[4096];
  size_t n;
  while ((n = fread(buf, 1, sizeof buf, p)) > 0) output.append(buf, n);
  int status = pclose(p);
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

}  // namespace mufl::testing
