// bench/api: load test of mufld's activity API over loopback.
//
// Starts the real mufld as a child process on a fresh data dir, creates a tenant, seeds
// --activities activities, then drives GET /v1/activities/{id} (random seeded ids) and
// POST /v1/activities (unique names) from --connections keep-alive connections, each sending
// requests back to back: 1 s of warm-up, then --seconds measured. Prints req/s, p50/p99/max
// latency and the ratio to the targets of the issue, and ends with one line of JSON.
//
// The baseline: a bare Beast server in this process (bench/bare_server.h) on as many threads
// as mufld's --threads, answering every request with the bytes of one real GET
// /v1/activities/{id} reply, driven by the same client (same connections count, same
// io_context) before mufld's phases. mufld's GET and POST rates are also given as a ratio of it:
// what share of what this machine and this client can do at all mufl reaches.
// Exit code: 0 when every response had the expected status, 1 otherwise, 2 on a setup failure.
//
// The client is a single io_context (run by --client-threads threads, default 1) because on the
// 2-core target machine the client competes with the server for the same cores.
#include <signal.h>
#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <boost/asio.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <functional>
#include <iostream>
#include <memory>
#include <nlohmann/json.hpp>
#include <random>
#include <sstream>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "bench/bare_server.h"
#include "tests/support/metrics_text.h"
#include "tests/support/mufld_process.h"
#include "tests/support/temp_dir.h"


namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;
using Clock = std::chrono::steady_clock;
using Request = http::request<http::string_body>;

constexpr double kGetTargetRps = 20000, kGetTargetP99Ms = 5, kPostTargetRps = 2000;
constexpr double kGetTargetOfBare = 0.5;  // mufld's GET rate at least half the bare server's

struct Options {
  std::string mufld = MUFLD_PATH;
  std::string db_sync;                  // empty: mufld's default (full)
  std::vector<std::string> extra_args;  // --mufld-arg, passed through (e.g. --devices cpu:1)
  int server_threads = 2, client_threads = 1, connections = 64, activities = 10000;
  double seconds = 5, warmup = 1;
};

Options parse_options(int argc, char** argv) {
  Options o;
  for (int i = 1; i < argc; ++i) {
    std::string flag = argv[i];
    if (flag == "--help" || flag == "-h") {
      std::cout << "usage: api [--mufld PATH] [--server-threads N] [--client-threads N] [--connections N]\n"
                   "           [--seconds S] [--warmup S] [--activities N] [--db-sync full|normal]\n"
                   "           [--mufld-arg ARG]...   (one more argument for mufld, e.g. --torch-threads)\n";
      std::exit(0);
    }
    if (i + 1 >= argc) throw std::runtime_error(flag + " needs a value (see --help)");
    std::string v = argv[++i];
    if (flag == "--mufld") o.mufld = v;
    else if (flag == "--db-sync") o.db_sync = v;
    else if (flag == "--mufld-arg") o.extra_args.push_back(v);
    else if (flag == "--server-threads") o.server_threads = std::stoi(v);
    else if (flag == "--client-threads") o.client_threads = std::max(1, std::stoi(v));
    else if (flag == "--connections") o.connections = std::max(1, std::stoi(v));
    else if (flag == "--activities") o.activities = std::max(1, std::stoi(v));
    else if (flag == "--seconds") o.seconds = std::stod(v);
    else if (flag == "--warmup") o.warmup = std::stod(v);
    else throw std::runtime_error("unknown flag " + flag + " (see --help)");
  }
  return o;
}

// CPU seconds used so far: by a process (/proc/PID/stat utime+stime), by this process, and by the
// whole machine (busy, total) from /proc/stat. Sampled at the edges of the measured window so the
// report can say who used the two cores.
double proc_cpu_seconds(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
  std::string s((std::istreambuf_iterator<char>(in)), {});
  std::istringstream rest(s.substr(s.rfind(')') + 2));  // the command name may hold spaces
  std::string field;
  double ticks = 0;
  for (int i = 3; i <= 15 && rest >> field; ++i)
    if (i >= 14) ticks += std::stod(field);
  return ticks / static_cast<double>(sysconf(_SC_CLK_TCK));
}
double self_cpu_seconds() {
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  auto sec = [](timeval t) { return static_cast<double>(t.tv_sec) + static_cast<double>(t.tv_usec) / 1e6; };
  return sec(u.ru_utime) + sec(u.ru_stime);
}
std::pair<double, double> machine_cpu_ticks() {
  std::ifstream in("/proc/stat");
  std::string cpu;
  double v[8] = {}, total = 0;
  in >> cpu;
  for (double& x : v) {
    in >> x;
    total += x;
  }
  return {total - v[3] - v[4], total};  // busy = all but idle and iowait
}
struct CpuSample {
  double server = 0, client = 0, busy = 0, total = 0;
};
CpuSample sample_cpu(pid_t server) {
  auto [busy, total] = machine_cpu_ticks();
  return {proc_cpu_seconds(server), self_cpu_seconds(), busy, total};
}

// The mufld child (tests/support/mufld_process.h): fresh data dir, port 0, admin token in its
// environment, the caller's MUFL_* variables left out; stopped with SIGTERM so that it drains
// and closes its database.
class Server {
 public:
  Server(const Options& o, const std::string& admin_token) : mufld_(o.mufld, dir_.path(), admin_token, args(o)) {}
  ~Server() { mufld_.stop(SIGTERM); }
  uint16_t port() const { return mufld_.port(); }
  pid_t pid() const { return mufld_.pid(); }

 private:
  static std::vector<std::string> args(const Options& o) {
    std::vector<std::string> a = {"--threads", std::to_string(o.server_threads), "--log-level", "warn"};
    if (!o.db_sync.empty()) a.insert(a.end(), {"--db-sync", o.db_sync});
    // The API alone: with a training device, mufld would start training the seeded activities
    // and the benchmark would measure training's share of the two cores. `--mufld-arg
    // --devices --mufld-arg cpu:1` measures the API beside training.
    if (std::find(o.extra_args.begin(), o.extra_args.end(), "--devices") == o.extra_args.end())
      a.insert(a.end(), {"--devices", "none"});
    a.insert(a.end(), o.extra_args.begin(), o.extra_args.end());
    return a;
  }
  mufl::testing::TempDir dir_;  // declared first: it outlives the process
  mufl::testing::MufldProcess mufld_;
};

// One load phase. Either a fixed number of requests (count > 0, for seeding) or timed: requests
// completing in [measure_from, until] are measured; earlier ones are the warm-up.
struct Phase {
  http::verb method;
  unsigned expect;                                                 // 200 or 201
  std::function<void(size_t i, std::mt19937_64&, Request&)> fill;  // sets target and body
  std::function<void(size_t i, const std::string& body)> on_ok{};  // optional
  size_t count = 0;
  Clock::time_point measure_from{}, until{};
  std::atomic<size_t> next{0}, errors{0};
};

void report_error(Phase& p, const std::string& what) {
  if (p.errors++ < 5) std::fprintf(stderr, "api: error: %s\n", what.c_str());
}

// A keep-alive connection sending one request at a time. Its operations form a single chain, so
// it needs no strand even when several threads run the io_context.
class Connection : public std::enable_shared_from_this<Connection> {
 public:
  Connection(asio::io_context& io, tcp::endpoint ep, const std::string& token, unsigned seed)
      : socket_(io), ep_(ep), rng_(seed) {
    socket_.connect(ep_);
    socket_.set_option(tcp::no_delay(true));
    req_.version(11);
    req_.set(http::field::host, "127.0.0.1");
    req_.set(http::field::authorization, "Bearer " + token);
    req_.set(http::field::content_type, "application/json");
  }
  void start(Phase& p) {
    phase_ = &p;
    latencies_ms_.clear();
    asio::post(socket_.get_executor(), [self = shared_from_this()] { self->send_next(); });
  }
  const std::vector<double>& latencies_ms() const { return latencies_ms_; }

 private:
  void send_next() {
    Phase& p = *phase_;
    if (p.count == 0 && Clock::now() >= p.until) return;
    index_ = p.next++;
    if (p.count > 0 && index_ >= p.count) return;
    req_.method(p.method);
    req_.body().clear();
    p.fill(index_, rng_, req_);
    req_.prepare_payload();
    sent_ = Clock::now();
    http::async_write(socket_, req_, [self = shared_from_this()](beast::error_code ec, size_t) {
      if (ec) return self->fail("write: " + ec.message());
      self->res_ = {};
      http::async_read(self->socket_, self->buffer_, self->res_,
                       [self](beast::error_code ec, size_t) { self->on_read(ec); });
    });
  }
  void on_read(beast::error_code ec) {
    if (ec) return fail("read: " + ec.message());
    Phase& p = *phase_;
    const auto done = Clock::now();
    if (res_.result_int() != p.expect) {
      report_error(p, std::to_string(res_.result_int()) + " for " + std::string(req_.target()) + ": " +
                          res_.body().substr(0, 200));
    } else {
      if (p.on_ok) p.on_ok(index_, res_.body());
      if (p.count > 0 || (done >= p.measure_from && done <= p.until))
        latencies_ms_.push_back(std::chrono::duration<double, std::milli>(done - sent_).count());
    }
    if (!res_.keep_alive()) return fail("server closed the keep-alive connection");
    send_next();
  }
  // Counts the error and carries on over a new connection, so one failure does not silently
  // shrink the offered load for the rest of the run.
  void fail(const std::string& what) {
    report_error(*phase_, what);
    beast::error_code ignored;
    socket_.close(ignored);
    buffer_.clear();
    socket_.async_connect(ep_, [self = shared_from_this()](beast::error_code ec) {
      if (ec) return report_error(*self->phase_, "reconnect: " + ec.message());
      self->socket_.set_option(tcp::no_delay(true), ec);
      self->send_next();
    });
  }

  tcp::socket socket_;
  tcp::endpoint ep_;
  std::mt19937_64 rng_;
  beast::flat_buffer buffer_;
  Request req_;
  http::response<http::string_body> res_;
  Phase* phase_ = nullptr;
  size_t index_ = 0;
  Clock::time_point sent_;
  std::vector<double> latencies_ms_;
};

struct Result {
  size_t requests = 0;
  double seconds = 0, rps = 0, p50 = 0, p99 = 0, max = 0;
  CpuSample cpu;  // over the measured window: cores used by server and client, machine busy %
};

// Runs one phase on every connection with the io_context on `threads` threads; returns when each
// connection has stopped. For a timed phase, timers sample CPU use at the window's edges.
Result run_phase(asio::io_context& io, int threads, std::vector<std::shared_ptr<Connection>>& conns, Phase& p,
                 const Options& o, pid_t server) {
  const auto start = Clock::now();
  if (p.count == 0) {
    p.measure_from = start + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(o.warmup));
    p.until = p.measure_from + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(o.seconds));
  }
  CpuSample c0, c1;
  asio::steady_timer t0(io, p.measure_from), t1(io, p.until);
  if (p.count == 0) {
    t0.async_wait([&](beast::error_code) { c0 = sample_cpu(server); });
    t1.async_wait([&](beast::error_code) { c1 = sample_cpu(server); });
  }
  io.restart();  // run() returned at the end of the previous phase
  for (auto& c : conns) c->start(p);
  std::vector<std::thread> extra;
  for (int i = 1; i < threads; ++i) extra.emplace_back([&io] { io.run(); });
  io.run();
  for (auto& t : extra) t.join();

  Result r;
  std::vector<double> all;
  for (auto& c : conns) all.insert(all.end(), c->latencies_ms().begin(), c->latencies_ms().end());
  std::sort(all.begin(), all.end());
  r.requests = all.size();
  r.seconds = p.count > 0 ? std::chrono::duration<double>(Clock::now() - start).count() : o.seconds;
  r.rps = static_cast<double>(all.size()) / r.seconds;
  auto rank = [&](double q) {  // nearest-rank percentile
    return all.empty() ? 0.0 : all[static_cast<size_t>(std::ceil(q * static_cast<double>(all.size()))) - 1];
  };
  r.p50 = rank(0.50), r.p99 = rank(0.99), r.max = all.empty() ? 0.0 : all.back();
  if (p.count == 0) {
    double wall = std::chrono::duration<double>(p.until - p.measure_from).count();
    r.cpu = {(c1.server - c0.server) / wall, (c1.client - c0.client) / wall, 0, 0};
    r.cpu.busy = c1.total > c0.total ? (c1.busy - c0.busy) / (c1.total - c0.total) : 0;
  }
  return r;
}

// One blocking request on its own connection, for the setup steps.
std::pair<unsigned, std::string> request_once(tcp::endpoint ep, http::verb method, const std::string& target,
                                              const std::string& token, const std::string& body) {
  asio::io_context io;
  tcp::socket s(io);
  s.connect(ep);
  Request req(method, target, 11, body);
  req.set(http::field::host, "127.0.0.1");
  req.set(http::field::authorization, "Bearer " + token);
  req.set(http::field::content_type, "application/json");
  req.prepare_payload();
  http::write(s, req);
  beast::flat_buffer buf;
  http::response<http::string_body> res;
  http::read(s, buf, res);
  return {res.result_int(), res.body()};
}

double round2(double x) { return std::round(x * 100) / 100; }

nlohmann::ordered_json report(const char* name, const Result& r, double target_rps, double target_p99) {
  double ratio = r.rps / target_rps;
  bool met = ratio >= 1 && (target_p99 <= 0 || r.p99 < target_p99);
  std::printf("%s: %.0f req/s (target %.0f, ratio %.2f), p50 %.2f ms, p99 %.2f ms", name, r.rps, target_rps, ratio,
              r.p50, r.p99);
  if (target_p99 > 0) std::printf(" (target < %.0f ms)", target_p99);
  // Other processes on the box (a build, say) take cores from both sides: say so in the figures.
  const double cores = std::thread::hardware_concurrency();
  const double other = std::max(0.0, r.cpu.busy * cores - r.cpu.server - r.cpu.client);
  std::printf(", max %.2f ms; %zu requests in %.1f s; CPU: server %.2f cores, client %.2f, other processes %.2f"
              " -> %s\n",
              r.max, r.requests, r.seconds, r.cpu.server, r.cpu.client, other, met ? "met" : "MISSED");
  nlohmann::ordered_json j;
  j["requests"] = r.requests;
  j["rps"] = round2(r.rps);
  j["p50_ms"] = round2(r.p50);
  j["p99_ms"] = round2(r.p99);
  j["max_ms"] = round2(r.max);
  j["target_rps"] = target_rps;
  if (target_p99 > 0) j["target_p99_ms"] = target_p99;
  j["ratio"] = round2(ratio);
  j["met"] = met;
  j["server_cpu"] = round2(r.cpu.server);  // cores, over the measured window
  j["client_cpu"] = round2(r.cpu.client);
  j["other_cpu"] = round2(other);
  return j;
}

// The baseline's figures. Its server shares this process with the client, so only their sum
// is known: `process_cpu`.
nlohmann::ordered_json report_bare(const Result& r, size_t body_bytes) {
  std::printf("bare Beast server (%zu-byte reply, in this process): %.0f req/s, p50 %.2f ms, p99 %.2f ms, max %.2f ms;"
              " %zu requests in %.1f s; CPU: server and client %.2f cores\n",
              body_bytes, r.rps, r.p50, r.p99, r.max, r.requests, r.seconds, r.cpu.server);
  nlohmann::ordered_json j;
  j["body_bytes"] = body_bytes;
  j["requests"] = r.requests;
  j["rps"] = round2(r.rps);
  j["p50_ms"] = round2(r.p50);
  j["p99_ms"] = round2(r.p99);
  j["max_ms"] = round2(r.max);
  j["process_cpu"] = round2(r.cpu.server);
  return j;
}

// mufl_read_cache_requests_total{result} as mufld's /metrics says now (0 when absent).
double read_cache_count(const tcp::endpoint& ep, const char* result) {
  auto [status, body] = request_once(ep, http::verb::get, "/metrics", "", "");
  if (status != 200) return 0;
  return mufl::testing::metric(body, std::string("mufl_read_cache_requests_total{result=\"") + result + "\"}", 0);
}

int run(const Options& o) {
  std::random_device rd;
  std::string admin_token;
  for (int i = 0; i < 4; ++i) {
    char hex[9];
    std::snprintf(hex, sizeof hex, "%08x", rd());
    admin_token += hex;
  }
  Server server(o, admin_token);
  const tcp::endpoint ep(asio::ip::make_address("127.0.0.1"), server.port());

  auto [status, body] = request_once(ep, http::verb::post, "/v1/tenants", admin_token,
                                     R"({"name":"bench","quotas":{"max_active_activities":1000000}})");
  if (status != 201) throw std::runtime_error("POST /v1/tenants: " + std::to_string(status) + " " + body);
  const std::string token = nlohmann::json::parse(body).at("token").get<std::string>();

  asio::io_context io;
  std::vector<std::shared_ptr<Connection>> conns;
  for (int i = 0; i < o.connections; ++i)
    conns.push_back(std::make_shared<Connection>(io, ep, token, static_cast<unsigned>(i + 1)));

  auto post_fill = [](const char* prefix) {
    return [prefix](size_t i, std::mt19937_64&, Request& req) {
      req.target("/v1/activities");
      req.body() = std::string(R"({"name":")") + prefix + std::to_string(i) +
                   R"(","dataset":"synthetic","task":"class","rounds":10})";
    };
  };

  // Seeding goes through the same connections; the ids it returns feed the GET phase.
  std::vector<std::string> ids(static_cast<size_t>(o.activities));
  Phase seed{.method = http::verb::post,
             .expect = 201,
             .fill = post_fill("seed-"),
             .on_ok = [&ids](size_t i, const std::string& b) { ids[i] = nlohmann::json::parse(b).at("id"); },
             .count = ids.size()};
  Result seeded = run_phase(io, o.client_threads, conns, seed, o, server.pid());
  std::printf("seeded %zu activities in %.1f s (%.0f req/s, p50 %.2f ms, p99 %.2f ms)\n", seeded.requests,
              seeded.seconds, seeded.rps, seeded.p50, seeded.p99);
  std::fflush(stdout);  // a progress line: someone may be waiting for it (e.g. to attach perf)
  if (seed.errors > 0) throw std::runtime_error("seeding failed with " + std::to_string(seed.errors) + " errors");

  auto get_fill = [&ids](size_t, std::mt19937_64& rng, Request& req) {
    req.target("/v1/activities/" + ids[rng() % ids.size()]);
  };
  // The baseline first, with a real reply's bytes, while mufld idles.
  auto [get_status, get_body] = request_once(ep, http::verb::get, "/v1/activities/" + ids[0], token, "");
  if (get_status != 200) throw std::runtime_error("GET /v1/activities/{id}: " + std::to_string(get_status));
  Result b;
  size_t bare_errors = 0;
  {
    mufl::bench::BareServer bare(get_body, "application/json", o.server_threads);
    const tcp::endpoint bare_ep(asio::ip::make_address("127.0.0.1"), bare.port());
    std::vector<std::shared_ptr<Connection>> bare_conns;
    for (int i = 0; i < o.connections; ++i)
      bare_conns.push_back(std::make_shared<Connection>(io, bare_ep, token, static_cast<unsigned>(i + 1)));
    Phase bare_get{.method = http::verb::get, .expect = 200, .fill = get_fill};
    b = run_phase(io, o.client_threads, bare_conns, bare_get, o, getpid());
    bare_errors = bare_get.errors;
  }
  const double hits_before = read_cache_count(ep, "hit"), misses_before = read_cache_count(ep, "miss");
  Phase get{.method = http::verb::get, .expect = 200, .fill = get_fill};
  Result g = run_phase(io, o.client_threads, conns, get, o, server.pid());
  const double hits = read_cache_count(ep, "hit") - hits_before, misses = read_cache_count(ep, "miss") - misses_before;
  const double hit_share = hits + misses > 0 ? hits / (hits + misses) : 0;
  Phase post{.method = http::verb::post, .expect = 201, .fill = post_fill("post-")};
  Result p = run_phase(io, o.client_threads, conns, post, o, server.pid());
  conns.clear();  // close the client side first so that mufld's drain finds idle connections

  std::string extra;
  for (const auto& a : o.extra_args) extra += " " + a;
  std::printf("mufld %s: --threads %d, --db-sync %s%s; client: %d thread(s), %d keep-alive connections; %u cores\n",
              o.mufld.c_str(), o.server_threads, o.db_sync.empty() ? "full (default)" : o.db_sync.c_str(),
              extra.c_str(), o.client_threads, o.connections, std::thread::hardware_concurrency());
  nlohmann::ordered_json jb = report_bare(b, get_body.size());
  nlohmann::ordered_json jg = report("GET /v1/activities/{id}", g, kGetTargetRps, kGetTargetP99Ms);
  nlohmann::ordered_json jp = report("POST /v1/activities", p, kPostTargetRps, 0);
  const double get_of_bare = b.rps > 0 ? g.rps / b.rps : 0, post_of_bare = b.rps > 0 ? p.rps / b.rps : 0;
  const bool get_met = jg["met"].get<bool>() && get_of_bare >= kGetTargetOfBare;
  std::printf("of the bare server: GET %.2f (target >= %.1f) -> %s, POST %.2f\n", get_of_bare, kGetTargetOfBare,
              get_of_bare >= kGetTargetOfBare ? "met" : "MISSED", post_of_bare);
  jg["of_bare"] = round2(get_of_bare);
  jg["target_of_bare"] = kGetTargetOfBare;
  jg["met_all"] = get_met;  // rate, p99 and the share of the bare server
  jg["read_cache_hit_share"] = round2(hit_share);
  std::printf("GET phase: %.0f reads from mufld's read cache, %.0f from SQLite (hit share %.2f)\n", hits, misses,
              hit_share);
  jp["of_bare"] = round2(post_of_bare);
  const size_t errors = get.errors + post.errors + bare_errors;
  if (errors > 0)
    std::printf("ERRORS: %zu (GET %zu, POST %zu, bare %zu)\n", errors, get.errors.load(), post.errors.load(),
                bare_errors);
  // Key order as in the issue; ordered_json keeps it.
  nlohmann::ordered_json out = {{"bench", "api"},
                                {"connections", o.connections},
                                {"activities", o.activities},
                                {"server_threads", o.server_threads},
                                {"client_threads", o.client_threads},
                                {"db_sync", o.db_sync.empty() ? "full" : o.db_sync},
                                {"mufld_args", o.extra_args},
                                {"seconds", o.seconds},
                                {"cores", std::thread::hardware_concurrency()},
                                {"bare", jb},
                                {"get", jg},
                                {"post", jp},
                                {"errors", errors}};
  std::printf("%s\n", out.dump().c_str());
  return errors > 0 ? 1 : 0;
}

}  // namespace

int main(int argc, char** argv) {
  try {
    return run(parse_options(argc, argv));
  } catch (const std::exception& e) {
    std::fprintf(stderr, "api: %s\n", e.what());
    return 2;
  }
}
