#include "tests/support/chromium.h"

#include <signal.h>
#include <spawn.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <fcntl.h>
#include <unistd.h>

#include <boost/asio/connect.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/websocket.hpp>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <thread>

extern char** environ;

namespace mufl::testing {
namespace asio = boost::asio;
namespace beast = boost::beast;
using nlohmann::json;
using Clock = std::chrono::steady_clock;

struct Chromium::Connection {
  asio::io_context ioc;
  beast::websocket::stream<asio::ip::tcp::socket> ws{ioc};

  // Reads one message, or throws when `deadline` passes first (the socket is closed then).
  json read(Clock::time_point deadline) {
    beast::flat_buffer buffer;
    bool done = false, expired = false;
    beast::error_code ec;
    ws.async_read(buffer, [&](beast::error_code e, std::size_t) {
      ec = e;
      done = true;
    });
    asio::steady_timer timer(ioc);
    timer.expires_at(deadline);
    timer.async_wait([&](beast::error_code e) {
      if (e) return;
      expired = true;
      beast::error_code ignored;
      ws.next_layer().close(ignored);  // aborts the read
    });
    ioc.restart();
    while (!done && ioc.run_one() > 0) {
    }
    timer.cancel();
    ioc.restart();
    ioc.poll();  // lets the cancelled timer's handler run before its captures go away
    if (expired) throw std::runtime_error("chromium: no answer from the DevTools protocol in time");
    if (ec) throw std::runtime_error("chromium: DevTools connection failed: " + ec.message());
    return json::parse(beast::buffers_to_string(buffer.data()));
  }
};

std::string Chromium::find_binary() {
  if (const char* env = std::getenv("MUFL_CHROMIUM"); env && *env) return env;
  const char* path = std::getenv("PATH");
  std::stringstream dirs(path ? path : "/usr/bin:/bin");
  std::string dir;
  std::vector<std::string> all;
  while (std::getline(dirs, dir, ':')) all.push_back(dir);
  for (const char* name : {"chromium", "chromium-browser", "google-chrome"})
    for (const auto& d : all) {
      const std::string candidate = d + "/" + name;
      if (access(candidate.c_str(), X_OK) == 0) return candidate;
    }
  return "";
}

std::string js_string(const std::string& s) { return json(s).dump(); }

Chromium::Chromium(const std::string& binary) : conn_(std::make_unique<Connection>()) {
  const char* base = std::getenv("TMPDIR");
  std::string pattern = std::string(base && *base ? base : "/tmp") + "/mufl-chromium-XXXXXX";
  if (!mkdtemp(pattern.data())) throw std::runtime_error("chromium: cannot make a profile directory from " + pattern);
  profile_dir_ = pattern;
  try {
    start_process(binary);

    // The browser writes "PORT\n/devtools/browser/ID" once it listens; poll for it with a deadline.
    const std::string port_file = profile_dir_ + "/DevToolsActivePort";
    const auto deadline = Clock::now() + std::chrono::seconds(30);
    std::string port, path;
    while (Clock::now() < deadline) {
      std::ifstream in(port_file);
      if (in && std::getline(in, port) && std::getline(in, path) && !path.empty()) break;
      int status = 0;
      if (waitpid(pid_, &status, WNOHANG) == pid_) {
        pid_ = -1;
        throw std::runtime_error("chromium exited at start-up: " + log_tail());
      }
      port.clear();
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    if (port.empty()) throw std::runtime_error("chromium wrote no DevToolsActivePort in 30 s: " + log_tail());

    asio::ip::tcp::resolver resolver(conn_->ioc);
    asio::connect(conn_->ws.next_layer(), resolver.resolve("127.0.0.1", port));
    conn_->ws.handshake("127.0.0.1:" + port, path);

    // One page, attached with a flattened session: its commands carry the sessionId.
    const std::string target = call("Target.createTarget", {{"url", "about:blank"}})["targetId"];
    session_ = call("Target.attachToTarget", {{"targetId", target}, {"flatten", true}})["sessionId"];
    call("Runtime.enable");
    call("Log.enable");
    call("Page.enable");
    call("Emulation.setDeviceMetricsOverride", {{"width", 1280}, {"height", 900}, {"deviceScaleFactor", 1}, {"mobile", false}});
  } catch (...) {
    release();  // no destructor runs for a constructor that throws
    throw;
  }
}

void Chromium::start_process(const std::string& binary) {
  std::vector<std::string> args = {binary,
                                   "--headless=new",
                                   "--remote-debugging-port=0",
                                   "--user-data-dir=" + profile_dir_,
                                   "--disable-gpu",
                                   "--disable-dev-shm-usage",
                                   "--no-first-run",
                                   "--no-default-browser-check",
                                   "--disable-extensions",
                                   "--disable-background-networking",
                                   "--disable-component-update",
                                   "--disable-sync",
                                   "--mute-audio",
                                   "--hide-scrollbars",
                                   "--window-size=1280,900"};
  if (geteuid() == 0) args.push_back("--no-sandbox");  // Chromium refuses to run as root with its sandbox
  args.push_back("about:blank");
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);

  // Its own process group, so the destructor kills the renderers and helpers with it.
  posix_spawnattr_t attr;
  posix_spawnattr_init(&attr);
  posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETPGROUP);
  posix_spawnattr_setpgroup(&attr, 0);
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  const std::string log = profile_dir_ + "/chromium.log";
  posix_spawn_file_actions_addopen(&actions, STDOUT_FILENO, log.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
  posix_spawn_file_actions_adddup2(&actions, STDOUT_FILENO, STDERR_FILENO);
  posix_spawn_file_actions_addopen(&actions, STDIN_FILENO, "/dev/null", O_RDONLY, 0);
  const int rc = posix_spawn(&pid_, binary.c_str(), &actions, &attr, argv.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  posix_spawnattr_destroy(&attr);
  if (rc != 0) {
    pid_ = -1;
    throw std::runtime_error("cannot start " + binary + ": " + std::strerror(rc));
  }
}

std::string Chromium::log_tail() const {
  std::ifstream in(profile_dir_ + "/chromium.log");
  std::string all((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  return all.size() > 2000 ? all.substr(all.size() - 2000) : all;
}

Chromium::~Chromium() { release(); }

void Chromium::release() {
  if (conn_) {
    beast::error_code ignored;
    conn_->ws.next_layer().close(ignored);
  }
  if (pid_ > 0) {
    kill(-pid_, SIGKILL);
    int status = 0;
    waitpid(pid_, &status, 0);
    pid_ = -1;
  }
  if (!profile_dir_.empty()) {
    std::error_code ec;
    std::filesystem::remove_all(profile_dir_, ec);
    profile_dir_.clear();
  }
}

json Chromium::call(const std::string& method, const json& params, int seconds) {
  const int64_t id = next_id_++;
  json message = {{"id", id}, {"method", method}, {"params", params}};
  if (!session_.empty()) message["sessionId"] = session_;
  conn_->ws.text(true);
  conn_->ws.write(asio::buffer(message.dump()));
  const auto deadline = Clock::now() + std::chrono::seconds(seconds);
  for (;;) {
    json reply = conn_->read(deadline);
    if (!reply.contains("id")) {
      on_event(reply);
      continue;
    }
    if (reply["id"] != id) continue;  // an answer to a call that timed out earlier
    if (reply.contains("error")) throw std::runtime_error("chromium: " + method + " failed: " + reply["error"].dump());
    return reply.value("result", json::object());
  }
}

void Chromium::on_event(const json& m) {
  const std::string method = m.value("method", "");
  const json& p = m.contains("params") ? m["params"] : json::object();
  if (method == "Page.loadEventFired") {
    loaded_ = true;
  } else if (method == "Runtime.consoleAPICalled") {
    const std::string type = p.value("type", "");
    if (type != "error" && type != "assert") return;
    std::string line = "console." + type + ":";
    for (const auto& a : p.value("args", json::array())) {
      line += " ";
      line += a.contains("value") ? (a["value"].is_string() ? a["value"].get<std::string>() : a["value"].dump())
                                  : a.value("description", a.value("type", "?"));
    }
    errors_.push_back(line);
  } else if (method == "Runtime.exceptionThrown") {
    const json d = p.value("exceptionDetails", json::object());
    const json e = d.value("exception", json::object());
    errors_.push_back("exception: " + e.value("description", d.value("text", "?")));
  } else if (method == "Log.entryAdded") {
    const json e = p.value("entry", json::object());
    if (e.value("level", "") == "error") errors_.push_back("log: " + e.value("text", "") + " " + e.value("url", ""));
  }
}

void Chromium::navigate(const std::string& url) {
  loaded_ = false;
  const json r = call("Page.navigate", {{"url", url}});
  if (r.contains("errorText")) throw std::runtime_error("chromium: cannot load " + url + ": " + r["errorText"].dump());
  const auto deadline = Clock::now() + std::chrono::seconds(30);
  while (!loaded_) on_event(conn_->read(deadline));
}

json Chromium::eval(const std::string& expression) {
  const json r = call("Runtime.evaluate", {{"expression", expression}, {"awaitPromise", true}, {"returnByValue", true}});
  if (r.contains("exceptionDetails")) {
    const json d = r["exceptionDetails"];
    throw std::runtime_error("in the page: " + d.value("exception", json::object()).value("description", d.value("text", "?")) +
                             "\n  evaluating: " + expression);
  }
  return r.value("result", json::object()).value("value", json());
}

json Chromium::wait_for(const std::string& expression, int seconds) {
  const auto deadline = Clock::now() + std::chrono::seconds(seconds);
  json v;
  for (;;) {
    v = eval(expression);
    const bool truthy = !(v.is_null() || (v.is_boolean() && !v.get<bool>()) || (v.is_number() && v.get<double>() == 0) ||
                          (v.is_string() && v.get<std::string>().empty()));
    if (truthy) return v;
    if (Clock::now() >= deadline) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  throw std::runtime_error("the page did not get there in " + std::to_string(seconds) + " s: " + expression +
                           "\n  last value: " + v.dump());
}

std::string Chromium::screenshot_png(bool full_page) {
  const std::string b64 = call("Page.captureScreenshot", {{"format", "png"}, {"captureBeyondViewport", full_page}})["data"];
  // Base64 decode (RFC 4648, with padding), written out rather than borrowed from a detail namespace.
  auto value = [](char c) -> int {
    if (c >= 'A' && c <= 'Z') return c - 'A';
    if (c >= 'a' && c <= 'z') return c - 'a' + 26;
    if (c >= '0' && c <= '9') return c - '0' + 52;
    if (c == '+') return 62;
    if (c == '/') return 63;
    return -1;
  };
  std::string out;
  out.reserve(b64.size() * 3 / 4);
  int bits = 0, acc = 0;
  for (char c : b64) {
    const int v = value(c);
    if (v < 0) continue;  // padding or whitespace
    acc = (acc << 6) | v;
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out.push_back(static_cast<char>((acc >> bits) & 0xff));
    }
  }
  return out;
}

}  // namespace mufl::testing
