#include "tests/support/prometheus_process.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cctype>
#include <chrono>
#include <cmath>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <thread>
#include <vector>

namespace mufl::testing {
namespace {

using Clock = std::chrono::steady_clock;

// A loopback port nothing listens on now (the kernel's pick for port 0).
uint16_t free_port() {
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) throw std::runtime_error("socket failed");
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = 0;
  socklen_t len = sizeof addr;
  if (bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 ||
      getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
    close(fd);
    throw std::runtime_error("cannot pick a free port");
  }
  close(fd);
  return ntohs(addr.sin_port);
}

// True once the child has exited (and is reaped).
bool exited(pid_t pid) {
  int status = 0;
  return waitpid(pid, &status, WNOHANG) == pid;
}

}  // namespace

PrometheusProcess::PrometheusProcess(const std::string& binary, const std::string& config, const std::string& work_dir,
                                     const std::vector<std::string>& extra_args, int ready_seconds) {
  log_path_ = work_dir + "/prometheus.log";
  for (int attempt = 0; attempt < 3; ++attempt)
    if (start(binary, config, work_dir, extra_args, ready_seconds)) return;
  throw std::runtime_error("prometheus did not become ready; its log ends:\n" + log_tail());
}

bool PrometheusProcess::start(const std::string& binary, const std::string& config, const std::string& work_dir,
                              const std::vector<std::string>& extra_args, int ready_seconds) {
  port_ = free_port();
  std::vector<std::string> args = {binary,
                                   "--config.file=" + config,
                                   "--storage.tsdb.path=" + work_dir + "/tsdb",
                                   "--web.listen-address=127.0.0.1:" + std::to_string(port_),
                                   "--log.level=info"};
  args.insert(args.end(), extra_args.begin(), extra_args.end());
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  const int log_fd = open(log_path_.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  if (log_fd < 0) throw std::runtime_error("cannot open " + log_path_);

  const pid_t parent = getpid();
  pid_ = fork();
  if (pid_ < 0) {
    close(log_fd);
    throw std::runtime_error("fork failed");
  }
  if (pid_ == 0) {
    // Child: only async-signal-safe calls until exec. Die with the test process, whatever ends it.
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != parent) _exit(127);
    dup2(log_fd, STDOUT_FILENO);
    dup2(log_fd, STDERR_FILENO);
    execv(binary.c_str(), argv.data());
    _exit(127);
  }
  close(log_fd);

  client_ = std::make_unique<HttpClient>("127.0.0.1", port_);
  const auto deadline = Clock::now() + std::chrono::seconds(ready_seconds);
  while (Clock::now() < deadline) {
    if (exited(pid_)) {  // e.g. the port was taken after all: the caller tries another
      pid_ = -1;
      return false;
    }
    try {
      if (client_->get("/-/ready").status == 200) return true;
    } catch (const std::exception&) {
      // not listening yet
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  stop();
  throw std::runtime_error("prometheus not ready within " + std::to_string(ready_seconds) + " s; its log ends:\n" +
                           log_tail());
}

PrometheusProcess::~PrometheusProcess() { stop(); }

void PrometheusProcess::stop() {
  if (pid_ <= 0) return;
  kill(pid_, SIGTERM);
  const auto deadline = Clock::now() + std::chrono::seconds(10);
  while (!exited(pid_)) {
    if (Clock::now() >= deadline) {
      kill(pid_, SIGKILL);
      int status = 0;
      waitpid(pid_, &status, 0);
      break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  pid_ = -1;
}

std::string PrometheusProcess::log_tail() const {
  std::ifstream in(log_path_);
  std::stringstream ss;
  ss << in.rdbuf();
  const std::string log = ss.str();
  return log.size() > 4096 ? log.substr(log.size() - 4096) : log;
}

nlohmann::json PrometheusProcess::query(const std::string& promql) {
  auto r = client_->get("/api/v1/query?query=" + url_encode(promql));
  auto j = nlohmann::json::parse(r.body, nullptr, /*allow_exceptions=*/false);
  if (r.status != 200 || j.is_discarded() || j.value("status", "") != "success" || !j["data"]["result"].is_array())
    throw std::runtime_error("query " + promql + " failed (" + std::to_string(r.status) + "): " + r.body);
  return j["data"]["result"];
}

nlohmann::json PrometheusProcess::query_range(const std::string& promql, double start, double end, double step) {
  std::ostringstream target;
  target.precision(15);
  target << "/api/v1/query_range?query=" << url_encode(promql) << "&start=" << start << "&end=" << end
         << "&step=" << step;
  auto r = client_->get(target.str());
  auto j = nlohmann::json::parse(r.body, nullptr, /*allow_exceptions=*/false);
  if (r.status != 200 || j.is_discarded() || j.value("status", "") != "success" || !j["data"]["result"].is_array())
    throw std::runtime_error("range query " + promql + " failed (" + std::to_string(r.status) + "): " + r.body);
  return j["data"]["result"];
}

nlohmann::json PrometheusProcess::wait_for(const std::string& promql,
                                           const std::function<bool(const nlohmann::json&)>& done, bool& ok,
                                           int seconds) {
  const auto deadline = Clock::now() + std::chrono::seconds(seconds);
  for (;;) {
    nlohmann::json result = query(promql);
    ok = done(result);
    if (ok || Clock::now() >= deadline) return result;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
}

std::string url_encode(const std::string& s) {
  static const char kHex[] = "0123456789ABCDEF";
  std::string out;
  for (unsigned char c : s) {
    if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~') {
      out += static_cast<char>(c);
    } else {
      out += '%';
      out += kHex[c >> 4];
      out += kHex[c & 15];
    }
  }
  return out;
}

double single_value(const nlohmann::json& result) {
  if (!result.is_array() || result.size() != 1) return std::nan("");
  return std::stod(result[0]["value"][1].get<std::string>());
}

}  // namespace mufl::testing
