#include "core/subprocess.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <map>

extern char** environ;

namespace mufl {
namespace {

// A pipe whose ends close themselves.
struct Pipe {
  int fd[2] = {-1, -1};
  bool open() { return ::pipe2(fd, O_CLOEXEC) == 0; }
  void close_end(int i) {
    if (fd[i] >= 0) ::close(fd[i]);
    fd[i] = -1;
  }
  ~Pipe() {
    close_end(0);
    close_end(1);
  }
};

// Ours with `extra` on top (same name: extra wins).
std::vector<std::string> child_environment(const std::vector<std::string>& extra) {
  std::map<std::string, std::string> by_name;
  auto add = [&by_name](const std::string& entry) { by_name[entry.substr(0, entry.find('='))] = entry; };
  for (char** e = environ; e && *e; ++e) add(*e);
  for (const auto& e : extra) add(e);
  std::vector<std::string> out;
  for (auto& [name, entry] : by_name) out.push_back(std::move(entry));
  return out;
}

std::vector<char*> c_strings(std::vector<std::string>& strings) {
  std::vector<char*> out;
  for (auto& s : strings) out.push_back(s.data());
  out.push_back(nullptr);
  return out;
}

int64_t now_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

int wait_exit_code(pid_t pid) {
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  if (WIFEXITED(status)) return WEXITSTATUS(status);
  if (WIFSIGNALED(status)) return 128 + WTERMSIG(status);
  return -1;
}

// Feeds stdin and drains stdout/stderr until both close or the deadline; what went wrong, if anything.
Status pump(Pipe& in, Pipe& out, Pipe& err, const ProcessOptions& o, ProcessOutput& result) {
  const int64_t deadline = now_ms() + o.timeout_ms;
  size_t written = 0;
  if (o.stdin_data.empty()) in.close_end(1);
  char buf[8192];
  while (out.fd[0] >= 0 || err.fd[0] >= 0) {
    pollfd fds[3];
    int n = 0;
    for (int fd : {out.fd[0], err.fd[0]})
      if (fd >= 0) fds[n++] = {fd, POLLIN, 0};
    if (in.fd[1] >= 0) fds[n++] = {in.fd[1], POLLOUT, 0};
    const int64_t left = deadline - now_ms();
    if (left <= 0) return Status::unavailable("did not end within " + std::to_string(o.timeout_ms) + " ms");
    const int ready = ::poll(fds, static_cast<nfds_t>(n), static_cast<int>(std::min<int64_t>(left, 1000)));
    if (ready < 0 && errno != EINTR) return Status::internal(std::string("poll: ") + std::strerror(errno));
    for (int i = 0; i < n && ready > 0; ++i) {
      if (fds[i].revents == 0) continue;
      if (fds[i].fd == in.fd[1]) {
        const ssize_t w = ::write(in.fd[1], o.stdin_data.data() + written, o.stdin_data.size() - written);
        if (w > 0) written += static_cast<size_t>(w);
        if (w < 0 || written == o.stdin_data.size()) in.close_end(1);
        continue;
      }
      Pipe& p = fds[i].fd == out.fd[0] ? out : err;
      std::string& sink = &p == &out ? result.out : result.err;
      const ssize_t r = ::read(p.fd[0], buf, sizeof buf);
      if (r <= 0) {
        if (r < 0 && (errno == EINTR || errno == EAGAIN)) continue;
        p.close_end(0);
        continue;
      }
      sink.append(buf, static_cast<size_t>(r));
      if (sink.size() > o.max_output_bytes)
        return Status::resource_exhausted("wrote more than " + std::to_string(o.max_output_bytes) + " bytes");
    }
  }
  return Status::ok();
}

}  // namespace

Result<ProcessOutput> run_process(const std::vector<std::string>& argv, const ProcessOptions& options) {
  if (argv.empty() || argv[0].empty()) return Status::invalid_argument("run_process: no program");
  Pipe in, out, err;
  if (!in.open() || !out.open() || !err.open())
    return Status::internal(std::string("run_process: pipe: ") + std::strerror(errno));
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_adddup2(&actions, in.fd[0], STDIN_FILENO);
  posix_spawn_file_actions_adddup2(&actions, out.fd[1], STDOUT_FILENO);
  posix_spawn_file_actions_adddup2(&actions, err.fd[1], STDERR_FILENO);
  // Nothing else: mufld's sockets (Asio opens them without O_CLOEXEC) stay out of the child.
  posix_spawn_file_actions_addclosefrom_np(&actions, 3);
  std::vector<std::string> args = argv, env = child_environment(options.env);
  auto c_args = c_strings(args), c_env = c_strings(env);
  pid_t pid = 0;
  const int rc = ::posix_spawnp(&pid, argv[0].c_str(), &actions, nullptr, c_args.data(), c_env.data());
  posix_spawn_file_actions_destroy(&actions);
  if (rc == ENOENT || rc == EACCES || rc == ENOEXEC) return Status::not_found(argv[0] + ": not found");
  if (rc != 0) return Status::internal(argv[0] + ": spawn: " + std::strerror(rc));
  in.close_end(0);
  out.close_end(1);
  err.close_end(1);
  // A write to a child that closed its stdin must not kill us.
  ::signal(SIGPIPE, SIG_IGN);
  ProcessOutput result;
  Status pumped = pump(in, out, err, options, result);
  if (!pumped.is_ok()) ::kill(pid, SIGKILL);
  result.exit_code = wait_exit_code(pid);
  if (!pumped.is_ok()) {
    const std::string why = argv[0] + ": " + pumped.message();
    if (pumped.code() == Status::Code::kUnavailable) return Status::unavailable(why);
    if (pumped.code() == Status::Code::kResourceExhausted) return Status::resource_exhausted(why);
    return Status::internal(why);
  }
  // posix_spawnp reports a missing program as exit 127 on glibc (the child failed to exec).
  if (result.exit_code == 127 && result.out.empty() && result.err.empty())
    return Status::not_found(argv[0] + ": not found");
  return result;
}

}  // namespace mufl
