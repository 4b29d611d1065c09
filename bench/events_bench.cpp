// bench/events: delivery latency of GET /v1/events with many subscribers while training runs.
//
// Starts the real mufld (--devices cpu:1) as a child process on a fresh data dir, creates a
// tenant, opens --subscribers event streams on loopback (one connection each, all driven by one
// io_context on --client-threads threads), and once all are open submits one small synthetic
// activity, so that a device trains throughout. Beside it, a generator submits and cancels an
// activity every --gap-ms (a tenant using the API while training runs), so there are events
// between the training's own. When the trained activity has succeeded the generator stops; a last
// submit-and-cancel is the sentinel that tells each subscriber it has seen everything.
//
// Delivery latency = the time a subscriber read an event's data line − the event's `time` (the
// moment the server made the change, on the same machine's clock). It therefore includes the
// SQLite commit, the hub, the socket and the client's own scheduling on the 2 shared cores.
// Every subscriber must receive exactly the stored list of events (a replay from after=0).
//
// Prints subscribers, events per subscriber, the all-delivered check, p50/p99/max ms and the
// ratio to the target (p99 < 50 ms); the last line is JSON. Exit 0 when every subscriber got
// every event, 1 otherwise, 2 on a setup failure. The process's open-file limit is raised to
// its hard limit (setrlimit), since each subscriber is a socket; mufld raises its own.
#include <signal.h>
#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <boost/asio.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <iostream>
#include <map>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "tests/support/mufld_process.h"
#include "tests/support/temp_dir.h"


namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;
using nlohmann::json;
using SteadyClock = std::chrono::steady_clock;

constexpr double kTargetP99Ms = 50;
const std::string kAdmin = "mufl_events_bench_admin_token";

struct Options {
  std::string mufld = MUFLD_PATH;
  std::vector<std::string> extra_args;  // --mufld-arg, passed through (e.g. --db-sync normal)
  int subscribers = 1000, client_threads = 2, server_threads = 2, rounds = 20, gap_ms = 100;
  double seconds = 90;  // the most the training phase may take (the whole run stays under 2 minutes)
};

Options parse_options(int argc, char** argv) {
  Options o;
  for (int i = 1; i < argc; ++i) {
    std::string flag = argv[i];
    if (flag == "--help" || flag == "-h") {
      std::cout << "usage: events [--mufld PATH] [--subscribers N] [--client-threads N] [--server-threads N]\n"
                   "              [--rounds N] [--gap-ms MS] [--seconds S] [--mufld-arg ARG]...\n";
      std::exit(0);
    }
    if (i + 1 >= argc) throw std::invalid_argument(flag + " needs a value (see --help)");
    std::string v = argv[++i];
    if (flag == "--mufld") o.mufld = v;
    else if (flag == "--mufld-arg") o.extra_args.push_back(v);
    else if (flag == "--subscribers") o.subscribers = std::max(1, std::stoi(v));
    else if (flag == "--client-threads") o.client_threads = std::max(1, std::stoi(v));
    else if (flag == "--server-threads") o.server_threads = std::max(1, std::stoi(v));
    else if (flag == "--rounds") o.rounds = std::max(1, std::stoi(v));
    else if (flag == "--gap-ms") o.gap_ms = std::max(1, std::stoi(v));
    else if (flag == "--seconds") o.seconds = std::stod(v);
    else throw std::invalid_argument("unknown flag " + flag + " (see --help)");
  }
  return o;
}

// Each subscriber holds a socket: lift the soft limit on open files to the hard one.
rlim_t raise_fd_limit() {
  rlimit lim{};
  getrlimit(RLIMIT_NOFILE, &lim);
  if (lim.rlim_cur < lim.rlim_max) {
    lim.rlim_cur = lim.rlim_max;
    setrlimit(RLIMIT_NOFILE, &lim);
  }
  getrlimit(RLIMIT_NOFILE, &lim);
  return lim.rlim_cur;
}

// The mufld child (tests/support/mufld_process.h): fresh data dir, port 0, one CPU slot.
class Server {
 public:
  explicit Server(const Options& o) : mufld_(o.mufld, dir_.path(), kAdmin, args(o)) {}
  ~Server() { mufld_.stop(SIGTERM); }
  uint16_t port() const { return mufld_.port(); }

 private:
  static std::vector<std::string> args(const Options& o) {
    std::vector<std::string> a = {"--threads", std::to_string(o.server_threads), "--devices", "cpu:1",
                                  "--log-level", "warn"};
    a.insert(a.end(), o.extra_args.begin(), o.extra_args.end());
    return a;
  }
  mufl::testing::TempDir dir_;  // declared first: it outlives the process
  mufl::testing::MufldProcess mufld_;
};

// One blocking request on a fresh connection (setup and the generator).
json call(uint16_t port, http::verb method, const std::string& target, const std::string& token,
          const std::string& body = "") {
  asio::io_context io;
  tcp::socket socket(io);
  socket.connect({asio::ip::make_address("127.0.0.1"), port});
  http::request<http::string_body> req{method, target, 11};
  req.set(http::field::host, "127.0.0.1");
  req.set(http::field::authorization, "Bearer " + token);
  req.body() = body;
  req.prepare_payload();
  http::write(socket, req);
  beast::flat_buffer buf;
  http::response<http::string_body> res;
  http::read(socket, buf, res);
  if (res.result_int() >= 300)
    throw std::runtime_error(std::string(req.method_string()) + " " + target + " -> " +
                             std::to_string(res.result_int()) + " " + res.body());
  return json::parse(res.body());
}

// "2026-12-01T08:00:00.123Z" → Unix ms; -1 when it is not that form.
int64_t parse_time_ms(const char* p) {
  std::tm tm{};
  int ms = 0;
  if (std::sscanf(p, "%4d-%2d-%2dT%2d:%2d:%2d.%3dZ", &tm.tm_year, &tm.tm_mon, &tm.tm_mday, &tm.tm_hour, &tm.tm_min,
                  &tm.tm_sec, &ms) != 7)
    return -1;
  tm.tm_year -= 1900;
  tm.tm_mon -= 1;
  return static_cast<int64_t>(timegm(&tm)) * 1000 + ms;
}

int64_t now_unix_us() {
  return std::chrono::duration_cast<std::chrono::microseconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

struct Shared {
  std::atomic<int> connected{0}, finished{0}, failed{0};
  std::string sentinel_id;  // set before the sentinel is cancelled; read under `mu`
  std::mutex mu;
};

// One event stream: connect, send the request, read the header, then parse SSE lines. Its
// operations form one chain, so it needs no strand.
class Subscriber : public std::enable_shared_from_this<Subscriber> {
 public:
  Subscriber(asio::io_context& io, tcp::endpoint ep, std::string request, Shared& shared)
      : socket_(io), ep_(ep), request_(std::move(request)), shared_(shared) {}

  void start() {
    socket_.async_connect(ep_, [self = shared_from_this()](beast::error_code ec) {
      if (ec) return self->fail("connect: " + ec.message());
      asio::async_write(self->socket_, asio::buffer(self->request_), [self](beast::error_code ec, size_t) {
        if (ec) return self->fail("write: " + ec.message());
        self->read();
      });
    });
  }
  void close() {
    asio::post(socket_.get_executor(), [self = shared_from_this()] {
      beast::error_code ec;
      self->socket_.close(ec);
    });
  }

  std::vector<int64_t> ids;
  std::vector<double> latencies_ms;
  bool done = false;

 private:
  void read() {
    socket_.async_read_some(asio::buffer(chunk_), [self = shared_from_this()](beast::error_code ec, size_t n) {
      if (ec) {
        if (!self->done) self->fail("read: " + ec.message());
        return;
      }
      self->consume(n);
      self->read();
    });
  }

  void consume(size_t n) {
    const int64_t received_us = now_unix_us();
    buf_.append(chunk_.data(), n);
    if (!header_done_) {
      size_t end = buf_.find("\r\n\r\n");
      if (end == std::string::npos) return;
      if (buf_.compare(0, 12, "HTTP/1.1 200") != 0) return fail("status: " + buf_.substr(0, buf_.find('\r')));
      header_done_ = true;
      buf_.erase(0, end + 4);
      ++shared_.connected;
    }
    size_t start = 0, nl;
    while ((nl = buf_.find('\n', start)) != std::string::npos) {
      on_line(buf_.data() + start, nl - start, received_us);
      start = nl + 1;
    }
    buf_.erase(0, start);
  }

  void on_line(const char* line, size_t len, int64_t received_us) {
    if (len < 6 || std::memcmp(line, "data: ", 6) != 0) return;
    const std::string_view l(line, len);
    const size_t t = l.find("\"time\":\"");
    const size_t i = l.find("\"id\":");
    if (t == std::string_view::npos || i == std::string_view::npos) return;
    const int64_t event_ms = parse_time_ms(line + t + 8);
    ids.push_back(std::strtoll(line + i + 5, nullptr, 10));
    latencies_ms.push_back(static_cast<double>(received_us - event_ms * 1000) / 1000.0);
    if (l.find("\"state\":\"cancelled\"") != std::string_view::npos) {
      std::lock_guard lock(shared_.mu);
      if (!shared_.sentinel_id.empty() && l.find(shared_.sentinel_id) != std::string_view::npos) {
        done = true;
        ++shared_.finished;
      }
    }
  }

  void fail(const std::string& what) {
    if (shared_.failed++ < 5) std::fprintf(stderr, "events: subscriber: %s\n", what.c_str());
  }

  tcp::socket socket_;
  tcp::endpoint ep_;
  std::string request_;
  Shared& shared_;
  std::array<char, 16384> chunk_{};
  std::string buf_;
  bool header_done_ = false;
};

double percentile(std::vector<double>& v, double p) {
  if (v.empty()) return 0;
  const size_t k = std::min(v.size() - 1, static_cast<size_t>(p * static_cast<double>(v.size())));
  std::nth_element(v.begin(), v.begin() + static_cast<std::ptrdiff_t>(k), v.end());
  return v[k];
}

// The 1-minute load average (/proc/loadavg): on the shared 2-core machine it says how much else ran.
double load_average() {
  double v = 0;
  if (FILE* f = std::fopen("/proc/loadavg", "r")) {
    if (std::fscanf(f, "%lf", &v) != 1) v = 0;
    std::fclose(f);
  }
  return v;
}

// Waits for `pred` (polled every 10 ms) until `deadline`.
template <typename Pred>
bool wait_until(Pred pred, SteadyClock::time_point deadline) {
  while (!pred()) {
    if (SteadyClock::now() > deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return true;
}

int run(const Options& o) {
  const rlim_t fd_limit = raise_fd_limit();
  if (fd_limit < static_cast<rlim_t>(o.subscribers) + 64) {
    std::fprintf(stderr, "events: the open-file limit is %llu, too low for %d subscribers\n",
                 static_cast<unsigned long long>(fd_limit), o.subscribers);
    return 2;
  }
  Server server(o);
  const uint16_t port = server.port();
  const std::string token = call(port, http::verb::post, "/v1/tenants", kAdmin, R"({"name":"bench"})")["token"];

  asio::io_context io;
  auto work = asio::make_work_guard(io);
  std::vector<std::thread> threads;
  for (int i = 0; i < o.client_threads; ++i) threads.emplace_back([&io] { io.run(); });
  Shared shared;
  const std::string request = "GET /v1/events HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept: text/event-stream\r\n"
                              "Authorization: Bearer " + token + "\r\n\r\n";
  const tcp::endpoint ep(asio::ip::make_address("127.0.0.1"), port);
  std::vector<std::shared_ptr<Subscriber>> subs;
  const auto connect_start = SteadyClock::now();
  for (int i = 0; i < o.subscribers; ++i) {
    subs.push_back(std::make_shared<Subscriber>(io, ep, request, shared));
    subs.back()->start();
  }
  const bool all_connected = wait_until([&] { return shared.connected + shared.failed >= o.subscribers; },
                                        SteadyClock::now() + std::chrono::seconds(60));
  const double connect_s = std::chrono::duration<double>(SteadyClock::now() - connect_start).count();
  std::string extra;
  for (const auto& a : o.extra_args) extra += " " + a;
  std::printf("events: %d subscribers on loopback to mufld --threads %d --devices cpu:1%s, %d client threads\n",
              o.subscribers, o.server_threads, extra.c_str(), o.client_threads);
  std::printf("connected: %d of %d in %.2f s\n", shared.connected.load(), o.subscribers, connect_s);
  if (!all_connected || shared.connected < o.subscribers) {
    std::fprintf(stderr, "events: not every subscriber connected\n");
    work.reset();
    io.stop();
    for (auto& t : threads) t.join();
    return 1;
  }

  // Training runs throughout; the generator adds API changes beside it.
  const auto train_start = SteadyClock::now();
  const double load_before = load_average();
  const std::string trained =
      call(port, http::verb::post, "/v1/activities", token,
           json{{"name", "trained"}, {"dataset", "synthetic"}, {"task", "class"}, {"rounds", o.rounds},
                {"clients", 4}, {"clients_per_round", 2}, {"merge", false}}
               .dump())["id"];
  const std::string churn_body =
      json{{"name", "churn"}, {"dataset", "synthetic"}, {"task", "parity"}, {"rounds", 1}, {"merge", false}}.dump();
  auto submit_and_cancel = [&]() {
    const std::string id = call(port, http::verb::post, "/v1/activities", token, churn_body)["id"];
    call(port, http::verb::delete_, "/v1/activities/" + id, token);
    return id;
  };
  int churned = 0;
  const auto train_deadline = train_start + std::chrono::milliseconds(static_cast<int64_t>(o.seconds * 1000));
  bool trained_ok = false;
  while (SteadyClock::now() < train_deadline) {
    submit_and_cancel();
    ++churned;
    if (churned % 5 == 0 &&
        call(port, http::verb::get, "/v1/activities/" + trained, token)["state"] == "succeeded") {
      trained_ok = true;
      break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(o.gap_ms));  // the generator's pace
  }
  const double train_s = std::chrono::duration<double>(SteadyClock::now() - train_start).count();
  // The sentinel: its cancel is the last event.
  {
    const std::string id = call(port, http::verb::post, "/v1/activities", token, churn_body)["id"];
    {
      std::lock_guard lock(shared.mu);
      shared.sentinel_id = id;
    }
    call(port, http::verb::delete_, "/v1/activities/" + id, token);
  }
  const bool all_finished = wait_until([&] { return shared.finished + shared.failed >= o.subscribers; },
                                       SteadyClock::now() + std::chrono::seconds(30));

  // What was stored: a replay from after=0, read with a blocking client until the sentinel.
  std::vector<int64_t> stored;
  {
    tcp::iostream replay;
    replay.connect("127.0.0.1", std::to_string(port));
    replay << "GET /v1/events?after=0 HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer " << token << "\r\n\r\n"
           << std::flush;
    std::string line;
    while (std::getline(replay, line)) {
      if (line.rfind("data: ", 0) != 0) continue;
      stored.push_back(std::strtoll(line.c_str() + line.find("\"id\":") + 5, nullptr, 10));
      if (line.find(shared.sentinel_id) != std::string::npos && line.find("\"cancelled\"") != std::string::npos) break;
    }
  }
  for (auto& s : subs) s->close();
  work.reset();
  for (auto& t : threads) t.join();

  size_t complete = 0, deliveries = 0, min_events = SIZE_MAX, max_events = 0;
  std::vector<double> all;
  for (auto& s : subs) {
    complete += s->ids == stored;
    deliveries += s->ids.size();
    min_events = std::min(min_events, s->ids.size());
    max_events = std::max(max_events, s->ids.size());
    all.insert(all.end(), s->latencies_ms.begin(), s->latencies_ms.end());
  }
  const bool all_delivered = all_finished && complete == subs.size() && shared.failed == 0;
  // Per event: when its first and its last subscriber had it. The first says what the commit
  // and the hub cost; last − first is the fan-out to every connection.
  std::vector<double> first, spread;
  double slowest_first = 0;
  int64_t slowest_id = 0;
  {
    std::map<int64_t, std::pair<double, double>> per_event;  // id → (min, max) latency
    for (auto& s : subs)
      for (size_t i = 0; i < s->ids.size(); ++i) {
        auto [it, fresh] = per_event.try_emplace(s->ids[i], s->latencies_ms[i], s->latencies_ms[i]);
        if (!fresh) {
          it->second.first = std::min(it->second.first, s->latencies_ms[i]);
          it->second.second = std::max(it->second.second, s->latencies_ms[i]);
        }
      }
    for (const auto& [id, mm] : per_event) {
      first.push_back(mm.first);
      spread.push_back(mm.second - mm.first);
      if (mm.first > slowest_first) {
        slowest_first = mm.first;
        slowest_id = id;
      }
    }
  }
  const double first_p50 = percentile(first, 0.5), spread_p50 = percentile(spread, 0.5),
               spread_p99 = percentile(spread, 0.99);
  const double p50 = percentile(all, 0.50), p99 = percentile(all, 0.99);
  const double max = all.empty() ? 0 : *std::max_element(all.begin(), all.end());

  const double load_after = load_average();
  std::printf("training: 1 activity of %d rounds %s in %.1f s, with %d submit+cancel pairs beside it\n", o.rounds,
              trained_ok ? "succeeded" : "did NOT finish", train_s, churned);
  std::printf("machine: %u cores, 1-minute load average %.2f before and %.2f after\n",
              std::thread::hardware_concurrency(), load_before, load_after);
  std::printf("events: %zu stored; per subscriber %zu to %zu received; %zu deliveries\n", stored.size(), min_events,
              max_events, deliveries);
  std::printf("all delivered (every subscriber got exactly the stored list, in order): %s (%zu of %zu)\n",
              all_delivered ? "yes" : "NO", complete, subs.size());
  std::printf("delivery latency: p50 %.2f ms, p99 %.2f ms, max %.2f ms\n", p50, p99, max);
  std::printf("per event: first subscriber p50 %.2f ms; last - first p50 %.2f ms, p99 %.2f ms\n", first_p50,
              spread_p50, spread_p99);
  const size_t slowest_at = static_cast<size_t>(
      std::find(stored.begin(), stored.end(), slowest_id) - stored.begin());
  std::printf("slowest event: id %lld (%zu of %zu), first subscriber after %.2f ms\n",
              static_cast<long long>(slowest_id), slowest_at + 1, stored.size(), slowest_first);
  std::printf("target p99 < %.0f ms: p99/target = %.3f (%s)\n", kTargetP99Ms, p99 / kTargetP99Ms,
              p99 < kTargetP99Ms ? "met" : "MISSED");
  std::printf("%s\n", json{{"bench", "events"},
                           {"subscribers", o.subscribers},
                           {"mufld_args", o.extra_args},
                           {"connected", shared.connected.load()},
                           {"events_per_subscriber", stored.size()},
                           {"deliveries", deliveries},
                           {"all_delivered", all_delivered},
                           {"training_rounds", o.rounds},
                           {"training_finished", trained_ok},
                           {"churn_pairs", churned},
                           {"cores", std::thread::hardware_concurrency()},
                           {"load_before", load_before},
                           {"load_after", load_after},
                           {"p50_ms", p50},
                           {"p99_ms", p99},
                           {"max_ms", max},
                           {"first_p50_ms", first_p50},
                           {"spread_p50_ms", spread_p50},
                           {"spread_p99_ms", spread_p99},
                           {"target_p99_ms", kTargetP99Ms},
                           {"p99_over_target", p99 / kTargetP99Ms},
                           {"ratio", p99 > 0 ? kTargetP99Ms / p99 : 0.0}}
                          .dump()
                          .c_str());
  return all_delivered ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
  signal(SIGPIPE, SIG_IGN);
  Options o;
  try {
    o = parse_options(argc, argv);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "events: %s\n", e.what());
    return 2;
  }
  try {
    return run(o);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "events: %s\n", e.what());
    return 2;
  }
}
