// bench/clients: real federation clients against the real mufld (issue 15), three phases.
//
//   sim    the same activity (synthetic data, task class) run as the in-process simulation and
//          on a federation of N real mufl-client processes holding exactly the simulation's
//          shards (mufl-shards), every client every round, on one mufld: seconds per round
//          from the round history and their ratio, MB moved per round and MB/s, mufld's CPU
//          seconds per update received.
//   scale  one process holding --load-clients enrolled clients (clients_load.h: long poll,
//          weights, a precomputed update) and one activity that chooses all of them every
//          round: mufld's peak RSS, request latencies, updates aggregated per second.
//   edge   three activities (class, segment, parity) on the same clients, merged into one
//          group against unmerged: the joules the clients metered and reported per round
//          (the activities' energy.client_joules), with their CPU-seconds beside them.
//
// Every process is real and talks HTTP on loopback; nothing here links torch. The human report
// is followed by one line of JSON with every figure. Exit 0 when it ran (a missed target is
// not a failure), 1 when something failed, 2 for bad flags.
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <functional>
#include <iostream>
#include <memory>
#include <numeric>
#include <set>
#include <sstream>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "bench/clients_load.h"
#include "tests/support/http_client.h"
#include "tests/support/mufld_process.h"
#include "tests/support/temp_dir.h"

extern char** environ;

namespace {

using nlohmann::json;
using mufl::testing::HttpClient;
using SteadyClock = std::chrono::steady_clock;

const std::string kAdmin = "mufl_clients_bench_admin_token";
constexpr double kTargetSimRatio = 1.10;      // federation s/round ÷ simulation's, at N = 5
constexpr double kTargetRssMb = 300;          // mufld's peak RSS with the load clients
constexpr double kTargetLeaseP99Ms = 100;     // lease latency under load: created → in the client's hands
constexpr double kTargetUpdatesPerS = 200;    // updates aggregated per second
constexpr double kTargetEdgeRatio = 0.5;      // merged ÷ unmerged client cost per round
constexpr int kBaselineRounds = 10;           // rounds of the one-client latency baseline

// ---------------------------------------------------------------------------------- options

struct Options {
  std::string mufld = MUFLD_PATH, client = MUFL_CLIENT_PATH, shards = MUFL_SHARDS_PATH;
  std::set<std::string> phases = {"sim", "scale", "edge"};
  std::vector<int> clients = {1, 5, 20};
  int rounds = 3, batch_size = 32, seed = 7;
  int load_clients = 1000, load_rounds = 3, load_wait = 30;
  int edge_clients = 3, edge_rounds = 3;
  int timeout = 900;  // the most one activity may take, seconds
  std::vector<std::string> mufld_args;  // --mufld-arg: more arguments for every mufld
};

const char* kUsage =
    "usage: clients [--phases sim,scale,edge] [--clients 1,5,20] [--rounds N] [--batch-size N] [--seed N]\n"
    "               [--load-clients N] [--load-rounds N] [--load-wait S] [--edge-clients N] [--edge-rounds N]\n"
    "               [--timeout S] [--mufld PATH] [--mufl-client PATH] [--mufl-shards PATH] [--mufld-arg ARG]...\n"
    "  sim    simulation against N real mufl-client processes (--clients, --rounds): s/round, MB, CPU/update\n"
    "  scale  --load-clients enrolled clients in this process, --load-rounds rounds choosing all of them:\n"
    "         mufld peak RSS, weights/update latency, updates/s (--load-wait: the long poll's wait)\n"
    "  edge   class+segment+parity merged vs unmerged on --edge-clients clients, --edge-rounds rounds:\n"
    "         the clients' own joules per round (and their CPU-seconds)\n"
    "  --mufld-arg ARG passes one more argument to every mufld (repeatable)\n"
    "Exit 0 when it ran (a missed target is not a failure), 1 when something failed, 2 for bad flags.\n";

std::vector<std::string> split_list(const std::string& v) {
  std::vector<std::string> out;
  std::stringstream in(v);
  for (std::string item; std::getline(in, item, ',');)
    if (!item.empty()) out.push_back(item);
  return out;
}

int positive(const std::string& flag, const std::string& v) {
  size_t used = 0;
  const int n = std::stoi(v, &used);
  if (used != v.size() || n < 1) throw std::invalid_argument(flag + " must be a positive integer, not " + v);
  return n;
}

Options parse_options(int argc, char** argv) {
  Options o;
  for (int i = 1; i < argc; ++i) {
    const std::string flag = argv[i];
    if (flag == "--help" || flag == "-h") {
      std::cout << kUsage;
      std::exit(0);
    }
    if (i + 1 >= argc) throw std::invalid_argument(flag + " needs a value (see --help)");
    const std::string v = argv[++i];
    if (flag == "--phases") {
      const auto list = split_list(v);
      o.phases = {list.begin(), list.end()};
      for (const auto& p : o.phases)
        if (p != "sim" && p != "scale" && p != "edge") throw std::invalid_argument("unknown phase " + p);
    } else if (flag == "--clients") {
      o.clients.clear();
      for (const auto& n : split_list(v)) o.clients.push_back(positive(flag, n));
    } else if (flag == "--rounds") o.rounds = positive(flag, v);
    else if (flag == "--batch-size") o.batch_size = positive(flag, v);
    else if (flag == "--seed") o.seed = positive(flag, v);
    else if (flag == "--load-clients") o.load_clients = positive(flag, v);
    else if (flag == "--load-rounds") o.load_rounds = positive(flag, v);
    else if (flag == "--load-wait") o.load_wait = std::min(60, positive(flag, v));
    else if (flag == "--edge-clients") o.edge_clients = positive(flag, v);
    else if (flag == "--edge-rounds") o.edge_rounds = positive(flag, v);
    else if (flag == "--timeout") o.timeout = positive(flag, v);
    else if (flag == "--mufld") o.mufld = v;
    else if (flag == "--mufld-arg") o.mufld_args.push_back(v);
    else if (flag == "--mufl-client") o.client = v;
    else if (flag == "--mufl-shards") o.shards = v;
    else throw std::invalid_argument("unknown flag " + flag + " (see --help)");
  }
  if (o.clients.empty()) throw std::invalid_argument("--clients needs at least one number");
  return o;
}

// ------------------------------------------------------------------------ processes, /proc

// A child process (mufl-client, mufl-shards) with stdout and stderr in a log file. Our own
// MUFL_* variables are not passed on, so a stray MUFL_ENROLL_TOKEN cannot change what it does.
class Child {
 public:
  Child(const std::string& binary, const std::vector<std::string>& args, const std::string& log) {
    std::vector<std::string> argv_s = {binary};
    argv_s.insert(argv_s.end(), args.begin(), args.end());
    std::vector<char*> argv_p, env_p;
    for (auto& a : argv_s) argv_p.push_back(a.data());
    argv_p.push_back(nullptr);
    for (char** e = environ; *e; ++e)
      if (std::string(*e).rfind("MUFL_", 0) != 0) env_p.push_back(*e);
    env_p.push_back(nullptr);
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_addopen(&actions, 1, log.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    posix_spawn_file_actions_adddup2(&actions, 1, 2);
    const int rc = posix_spawn(&pid_, binary.c_str(), &actions, nullptr, argv_p.data(), env_p.data());
    posix_spawn_file_actions_destroy(&actions);
    if (rc != 0) throw std::runtime_error("cannot start " + binary + ": " + std::strerror(rc));
  }
  ~Child() { stop(SIGKILL); }
  Child(const Child&) = delete;
  Child& operator=(const Child&) = delete;

  pid_t pid() const { return pid_; }
  // Sends `signal` (none when 0) and waits for the exit; its exit code, 128+signal when killed.
  int stop(int signal) {
    if (pid_ <= 0) return exit_code_;
    if (signal) ::kill(pid_, signal);
    int status = 0;
    waitpid(pid_, &status, 0);
    pid_ = -1;
    exit_code_ = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    return exit_code_;
  }

 private:
  pid_t pid_ = -1;
  int exit_code_ = -1;
};

// User plus system CPU seconds of a running process (/proc/PID/stat fields 14 and 15).
double cpu_seconds(pid_t pid) {
  std::ifstream f("/proc/" + std::to_string(pid) + "/stat");
  std::string line;
  std::getline(f, line);
  const size_t end = line.rfind(')');
  if (end == std::string::npos) throw std::runtime_error("cannot read /proc/" + std::to_string(pid) + "/stat");
  std::istringstream in(line.substr(end + 2));  // from field 3, the state
  std::vector<std::string> fields;
  for (std::string f3; in >> f3;) fields.push_back(f3);
  const double ticks = static_cast<double>(std::stoull(fields.at(11)) + std::stoull(fields.at(12)));
  return ticks / static_cast<double>(sysconf(_SC_CLK_TCK));
}

// A "VmRSS:" or "VmHWM:" line of /proc/PID/status, in MB (10^6 bytes); 0 when absent.
double memory_mb(pid_t pid, const std::string& key) {
  std::ifstream f("/proc/" + std::to_string(pid) + "/status");
  for (std::string line; std::getline(f, line);)
    if (line.rfind(key, 0) == 0) return std::stod(line.substr(key.size())) * 1024 / 1e6;
  return 0;
}

double load_average() {
  double v = 0;
  std::ifstream("/proc/loadavg") >> v;
  return v;
}

// Each load client holds a socket: lift the soft limit on open files to the hard one.
rlim_t raise_fd_limit() {
  rlimit lim{};
  getrlimit(RLIMIT_NOFILE, &lim);
  lim.rlim_cur = lim.rlim_max;
  setrlimit(RLIMIT_NOFILE, &lim);
  getrlimit(RLIMIT_NOFILE, &lim);
  return lim.rlim_cur;
}

double seconds_since(SteadyClock::time_point t) {
  return std::chrono::duration<double>(SteadyClock::now() - t).count();
}

double percentile(std::vector<double> v, double p) {
  if (v.empty()) return 0;
  const size_t k = std::min(v.size() - 1, static_cast<size_t>(p * static_cast<double>(v.size())));
  std::nth_element(v.begin(), v.begin() + static_cast<std::ptrdiff_t>(k), v.end());
  return v[k];
}

double mean(const std::vector<double>& v) {
  return v.empty() ? 0 : std::accumulate(v.begin(), v.end(), 0.0) / static_cast<double>(v.size());
}

// -------------------------------------------------------------------------------- the API

// mufld as a child (tests/support/mufld_process.h) on a fresh data dir, with its API client.
class Server {
 public:
  explicit Server(const Options& o, std::vector<std::string> args)
      : mufld_(o.mufld, dir_.path(), kAdmin, with_quiet_log(std::move(args), o.mufld_args)),
        http_("127.0.0.1", mufld_.port()) {}
  ~Server() { mufld_.stop(SIGTERM); }

  uint16_t port() const { return mufld_.port(); }
  pid_t pid() const { return mufld_.pid(); }
  const std::string& data_dir() const { return dir_.path(); }

  // The parsed body of a request that must answer 2xx.
  json call(const std::string& method, const std::string& target, const std::string& token,
            const std::string& body = "") {
    std::map<std::string, std::string> headers = {{"Authorization", "Bearer " + token}};
    if (!body.empty()) headers["Content-Type"] = "application/json";
    auto r = http_.request(method, target, body, headers);
    if (r.status < 200 || r.status >= 300)
      throw std::runtime_error(method + " " + target + " -> " + std::to_string(r.status) + " " + r.body);
    return r.body.empty() ? json::object() : json::parse(r.body);
  }

 private:
  // The pipe of its stdout is not read after start: keep its log short.
  static std::vector<std::string> with_quiet_log(std::vector<std::string> args, const std::vector<std::string>& more) {
    args.insert(args.end(), more.begin(), more.end());
    args.insert(args.end(), {"--log-level", "warn"});
    return args;
  }
  mufl::testing::TempDir dir_;  // first: it outlives the process
  mufl::testing::MufldProcess mufld_;
  HttpClient http_;
};

std::string make_tenant(Server& s, const std::string& name) {
  return s.call("POST", "/v1/tenants", kAdmin, json{{"name", name}}.dump())["token"];
}

struct Federation {
  std::string id, enroll_token;
};

// MNIST's schema, which the synthetic data set has too.
Federation make_federation(Server& s, const std::string& token, const std::string& name) {
  const json body = {{"name", name}, {"schema", {{"channels", 1}, {"height", 28}, {"width", 28}, {"labels", 10}}}};
  const json f = s.call("POST", "/v1/federations", token, body.dump());
  return {f["id"], f["enrollment_token"]};
}

std::string submit(Server& s, const std::string& token, const json& spec) {
  return s.call("POST", "/v1/activities", token, spec.dump())["id"];
}

// Every item of a paginated list (limit 1000, following next_cursor).
json all_items(Server& s, const std::string& target, const std::string& token) {
  json items = json::array();
  std::string cursor;
  do {
    const std::string sep = target.find('?') == std::string::npos ? "?" : "&";
    const json page = s.call("GET", target + sep + "limit=1000" + (cursor.empty() ? "" : "&cursor=" + cursor), token);
    for (const auto& item : page["items"]) items.push_back(item);
    cursor = page.value("next_cursor", json()).is_string() ? page["next_cursor"].get<std::string>() : "";
  } while (!cursor.empty());
  return items;
}

// Polls the activity every 100 ms until it ended; `tick` runs at each poll (RSS sampling).
json wait_done(Server& s, const std::string& token, const std::string& id, int timeout_s,
               const std::function<void()>& tick = {}) {
  const auto deadline = SteadyClock::now() + std::chrono::seconds(timeout_s);
  for (;;) {
    if (tick) tick();
    const json a = s.call("GET", "/v1/activities/" + id, token);
    const std::string state = a["state"];
    if (state == "succeeded" || state == "failed" || state == "cancelled") return a;
    if (SteadyClock::now() > deadline)
      throw std::runtime_error("activity " + id + " still " + state + " after " + std::to_string(timeout_s) + " s");
    std::this_thread::sleep_for(std::chrono::milliseconds(100));  // the poll's pace
  }
}

json succeeded(Server& s, const std::string& token, const std::string& id, int timeout_s,
               const std::function<void()>& tick = {}) {
  const json a = wait_done(s, token, id, timeout_s, tick);
  if (a["state"] != "succeeded") throw std::runtime_error("activity " + id + " ended " + a.dump());
  return a;
}

json round_history(Server& s, const std::string& token, const std::string& id) {
  return all_items(s, "/v1/activities/" + id + "/rounds", token);
}

double mean_round_seconds(const json& rounds) {
  std::vector<double> v;
  for (const auto& r : rounds) v.push_back(r["seconds"].get<double>());
  return mean(v);
}

int64_t updates_reported(const json& rounds) {
  int64_t n = 0;
  for (const auto& r : rounds) n += r["clients_reported"].get<int64_t>();
  return n;
}

// How many of the federation's clients mufld sees online.
size_t clients_online(Server& s, const std::string& token, const Federation& fed) {
  size_t n = 0;
  for (const auto& c : all_items(s, "/v1/federations/" + fed.id + "/clients", token)) n += c["state"] == "online";
  return n;
}

void wait_online(Server& s, const std::string& token, const Federation& fed, size_t n, int timeout_s) {
  const auto deadline = SteadyClock::now() + std::chrono::seconds(timeout_s);
  while (clients_online(s, token, fed) < n) {
    if (SteadyClock::now() > deadline)
      throw std::runtime_error("fewer than " + std::to_string(n) + " clients online after " +
                               std::to_string(timeout_s) + " s");
    std::this_thread::sleep_for(std::chrono::milliseconds(100));  // the poll's pace
  }
}

// ------------------------------------------------------------------------- real clients

// Cuts the synthetic data set into `n` shards, the partitions the simulation of `n` clients
// with `seed` trains on (mufl-shards).
std::string cut_shards(const Options& o, const std::string& out_root, int n) {
  const std::string out = out_root + "/shards-" + std::to_string(n);
  Child cut(o.shards, {"--dataset", "synthetic", "--clients", std::to_string(n), "--seed", std::to_string(o.seed),
                       "--data-dir", out_root, "--out", out},
            out_root + "/mufl-shards-" + std::to_string(n) + ".log");
  if (cut.stop(0) != 0) throw std::runtime_error("mufl-shards failed: see " + out_root + "/mufl-shards-*.log");
  return out;
}

// N mufl-client processes, client i on shard i, started in shard order and each enrolled and
// online before the next starts, so the federation's client i (enrollment order) holds the
// simulation's partition i. One torch thread each: N processes share the machine's cores.
class ClientFleet {
 public:
  ClientFleet(const Options& o, Server& s, const std::string& token, const Federation& fed,
              const std::string& shards, int n) {
    const std::string server = "http://127.0.0.1:" + std::to_string(s.port());
    for (int i = 0; i < n; ++i) {
      const std::string dir = shards + "/client-" + std::to_string(i);
      clients_.push_back(std::make_unique<Child>(
          o.client,
          std::vector<std::string>{"--server", server, "--data", dir, "--name", "client-" + std::to_string(i),
                                   "--enroll-token", fed.enroll_token, "--threads", "1", "--poll-wait", "30"},
          dir + ".log"));
      wait_online(s, token, fed, static_cast<size_t>(i + 1), 120);
    }
  }
  std::vector<pid_t> pids() const {
    std::vector<pid_t> out;
    for (const auto& c : clients_) out.push_back(c->pid());
    return out;
  }
  // SIGTERM: a client waiting for work stops at once.
  ~ClientFleet() {
    for (auto& c : clients_) ::kill(c->pid(), SIGTERM);
    for (auto& c : clients_) c->stop(0);
  }

 private:
  std::vector<std::unique_ptr<Child>> clients_;
};

// The CPU seconds of the client processes: a second view of what they spend, beside the
// joules they meter and report themselves (an activity's energy.client_joules).
double clients_cpu_seconds(const std::vector<pid_t>& pids) {
  double total = 0;
  for (pid_t p : pids) total += cpu_seconds(p);
  return total;
}

// ------------------------------------------------------------------------ phase 1: sim

std::vector<std::string> enroll(Server& s, const Federation& fed, int n, const std::string& prefix) {
  std::vector<std::string> tokens;
  for (int i = 0; i < n; ++i) {
    const json body = {{"name", prefix + std::to_string(i)}, {"train_samples", 100}, {"test_samples", 0}};
    tokens.push_back(s.call("POST", "/v1/clients", fed.enroll_token, body.dump())["token"]);
  }
  return tokens;
}

// One load client alone on a federation of its own, training `rounds` rounds of class: what a
// lease moves (weights down, update up) and the requests' latency without contention.
mufl::bench::LoadStats run_probe(const Options& o, Server& s, const std::string& token, int rounds) {
  const Federation fed = make_federation(s, token, "probe");
  mufl::bench::LoadGenerator probe(s.port(), enroll(s, fed, 1, "probe-"), o.load_wait);
  probe.start();
  wait_online(s, token, fed, 1, 60);
  const std::string id = submit(s, token, {{"name", "probe"}, {"federation", fed.id}, {"task", "class"},
                                           {"rounds", rounds}, {"clients_per_round", 1}, {"merge", false}});
  succeeded(s, token, id, o.timeout);
  probe.stop();
  return probe.stats();
}

struct WireSize {
  uint64_t weights = 0, update = 0;
};

json common_spec(const Options& o, const std::string& name) {
  return {{"name", name}, {"task", "class"}, {"rounds", o.rounds}, {"seed", o.seed}, {"merge", false},
          {"batch_size", o.batch_size}};
}

json measure_clients(const Options& o, Server& s, const std::string& token, int n, const WireSize& wire) {
  const std::string shards = cut_shards(o, s.data_dir(), n);
  json sim = common_spec(o, "sim-" + std::to_string(n));
  sim["dataset"] = "synthetic";
  sim["clients"] = n;
  sim["clients_per_round"] = n;
  const std::string sim_id = submit(s, token, sim);
  succeeded(s, token, sim_id, o.timeout);
  const double sim_s = mean_round_seconds(round_history(s, token, sim_id));

  const Federation fed = make_federation(s, token, "fed-" + std::to_string(n));
  ClientFleet fleet(o, s, token, fed, shards, n);
  json real = common_spec(o, "fed-" + std::to_string(n));
  real["federation"] = fed.id;
  real["clients_per_round"] = n;
  real["min_clients"] = n;
  const double cpu_before = cpu_seconds(s.pid());
  const std::string fed_id = submit(s, token, real);
  succeeded(s, token, fed_id, o.timeout);
  const double mufld_cpu = cpu_seconds(s.pid()) - cpu_before;
  const json rounds = round_history(s, token, fed_id);
  const double fed_s = mean_round_seconds(rounds);
  const int64_t updates = updates_reported(rounds);
  const double mb_per_round = static_cast<double>(n) * static_cast<double>(wire.weights + wire.update) / 1e6;
  return {{"clients", n},
          {"sim_s_per_round", sim_s},
          {"fed_s_per_round", fed_s},
          {"ratio", sim_s > 0 ? fed_s / sim_s : 0.0},
          {"updates", updates},
          {"mb_per_round", mb_per_round},
          {"mb_per_s", fed_s > 0 ? mb_per_round / fed_s : 0.0},
          {"mufld_cpu_s_per_update", updates > 0 ? mufld_cpu / static_cast<double>(updates) : 0.0}};
}

json run_sim_phase(const Options& o) {
  Server s(o, {"--devices", "cpu:1", "--torch-threads", "1"});
  const std::string token = make_tenant(s, "sim");
  const auto probe = run_probe(o, s, token, 1);
  const WireSize wire{probe.weights_bytes, probe.update_bytes};
  std::printf("\n== sim: simulation vs N real mufl-client processes (task class, synthetic, %d rounds, batch %d)\n",
              o.rounds, o.batch_size);
  std::printf("mufld --devices cpu:1 --torch-threads 1; mufl-client --threads 1; a lease moves %.3f MB down (weights)"
              " + %.3f MB up (update)\n",
              static_cast<double>(wire.weights) / 1e6, static_cast<double>(wire.update) / 1e6);
  std::printf("%8s %12s %12s %10s %10s %10s %16s\n", "clients", "sim s/round", "fed s/round", "fed/sim", "MB/round",
              "MB/s", "mufld CPU s/upd");
  json rows = json::array();
  for (int n : o.clients) {
    const json r = measure_clients(o, s, token, n, wire);
    std::printf("%8d %12.3f %12.3f %10.3f %10.3f %10.3f %16.4f\n", n, r["sim_s_per_round"].get<double>(),
                r["fed_s_per_round"].get<double>(), r["ratio"].get<double>(), r["mb_per_round"].get<double>(),
                r["mb_per_s"].get<double>(), r["mufld_cpu_s_per_update"].get<double>());
    std::fflush(stdout);
    rows.push_back(r);
  }
  json out = {{"weights_bytes", wire.weights}, {"update_bytes", wire.update}, {"rows", rows}};
  for (const auto& r : rows)
    if (r["clients"] == 5) {
      const double ratio = r["ratio"];
      std::printf("target fed/sim <= %.2f at N=5: %.3f (%s)\n", kTargetSimRatio, ratio,
                  ratio <= kTargetSimRatio ? "met" : "MISSED");
      out["ratio_at_5"] = ratio;
    }
  if (std::thread::hardware_concurrency() < 20)
    std::printf("note: %u cores: more clients than cores time-share them, so s/round there measures CPU contention,"
                " not protocol overhead\n",
                std::thread::hardware_concurrency());
  return out;
}

// ---------------------------------------------------------------------- phase 2: scale

// Per round of the load activity: updates it aggregated over its recorded seconds.
json rounds_rate(const json& rounds) {
  json out = json::array();
  for (const auto& r : rounds) {
    const double s = r["seconds"];
    const int64_t n = r["clients_reported"];
    out.push_back({{"round", r["round"]}, {"reported", n}, {"seconds", s},
                   {"updates_per_s", s > 0 ? static_cast<double>(n) / s : 0.0}});
  }
  return out;
}

// Per lease round, client side: the spread of lease deliveries (each client's moment minus
// the round's first) and the upload rate (updates accepted over first update sent → last 200).
void client_side_rounds(const mufl::bench::LoadStats& st, std::vector<double>& spread_ms, json& uploads) {
  for (const auto& [round, times] : st.delivered_ms) {
    const double first = *std::min_element(times.begin(), times.end());
    for (double t : times) spread_ms.push_back(t - first);
    auto w = st.upload_window_ms.find(round);
    if (w == st.upload_window_ms.end()) continue;
    const double window_s = (w->second.second - w->second.first) / 1000;
    uploads.push_back({{"round", round.first}, {"attempt", round.second}, {"leases", times.size()},
                       {"upload_window_s", window_s},
                       {"uploads_per_s", window_s > 0 ? static_cast<double>(times.size()) / window_s : 0.0}});
  }
}

// What the scale phase measured, before any figure is derived.
struct LoadRun {
  mufl::bench::LoadStats load, alone;  // the load clients; the one-client baseline
  json rounds;                         // the load activity's round history
  double enroll_s = 0, run_s = 0, idle_rss = 0, rss_max = 0, hwm = 0, mufld_cpu = 0;
};

LoadRun run_load(const Options& o) {
  const rlim_t fds = raise_fd_limit();
  // Two connections per load client (its polls, its transfers), on both ends of loopback.
  if (fds < 2 * static_cast<rlim_t>(o.load_clients) + 64)
    throw std::runtime_error("the open-file limit " + std::to_string(fds) + " is too low for the load clients");
  Server s(o, {"--devices", "cpu:1", "--torch-threads", "1", "--max-connections",
               std::to_string(2 * o.load_clients + 256)});
  const std::string token = make_tenant(s, "scale");
  LoadRun run;
  // The baseline: the same requests from one client alone, so nothing queues behind them.
  run.alone = run_probe(o, s, token, kBaselineRounds);
  const Federation fed = make_federation(s, token, "load");
  const auto enroll_start = SteadyClock::now();
  mufl::bench::LoadGenerator gen(s.port(), enroll(s, fed, o.load_clients, "load-"), o.load_wait);
  run.enroll_s = seconds_since(enroll_start);
  gen.start();
  wait_online(s, token, fed, static_cast<size_t>(o.load_clients), 120);
  run.idle_rss = memory_mb(s.pid(), "VmRSS:");

  const double cpu_before = cpu_seconds(s.pid());
  const auto run_start = SteadyClock::now();
  const std::string id = submit(s, token, {{"name", "load"}, {"federation", fed.id}, {"task", "class"},
                                           {"rounds", o.load_rounds}, {"clients_per_round", o.load_clients},
                                           {"min_clients", o.load_clients}, {"round_timeout_seconds", 600},
                                           {"merge", false}});
  succeeded(s, token, id, o.timeout, [&] { run.rss_max = std::max(run.rss_max, memory_mb(s.pid(), "VmRSS:")); });
  run.run_s = seconds_since(run_start);
  run.mufld_cpu = cpu_seconds(s.pid()) - cpu_before;
  run.hwm = memory_mb(s.pid(), "VmHWM:");
  gen.stop();
  run.load = gen.stats();
  run.rounds = round_history(s, token, id);
  return run;
}

json scale_figures(const Options& o, const LoadRun& run) {
  const auto& st = run.load;
  const json per_round = rounds_rate(run.rounds);
  std::vector<double> rates, spread;
  for (const auto& r : per_round) rates.push_back(r["updates_per_s"]);
  json uploads = json::array();
  client_side_rounds(st, spread, uploads);
  const int64_t updates = updates_reported(run.rounds);
  const double w99 = percentile(st.weights_ms, 0.99), u99 = percentile(st.update_ms, 0.99);
  const double alone_w = percentile(run.alone.weights_ms, 0.5), alone_u = percentile(run.alone.update_ms, 0.5);
  const double rate = mean(rates);
  return {{"clients", o.load_clients},      {"rounds", o.load_rounds},
          {"enroll_s", run.enroll_s},       {"run_s", run.run_s},
          {"weights_bytes", st.weights_bytes}, {"update_bytes", st.update_bytes},
          {"rss_idle_mb", run.idle_rss},    {"rss_sampled_max_mb", run.rss_max},
          {"rss_peak_mb", run.hwm},         {"rss_over_target", run.hwm / kTargetRssMb},
          {"weights_p50_ms", percentile(st.weights_ms, 0.5)}, {"weights_p99_ms", w99},
          {"update_p50_ms", percentile(st.update_ms, 0.5)},   {"update_p99_ms", u99},
          {"lease_p50_ms", percentile(st.lease_ms, 0.5)},     {"lease_p99_ms", percentile(st.lease_ms, 0.99)},
          {"lease_p99_over_target", percentile(st.lease_ms, 0.99) / kTargetLeaseP99Ms},
          {"alone_weights_p50_ms", alone_w}, {"alone_update_p50_ms", alone_u},
          {"weights_p99_over_alone", alone_w > 0 ? w99 / alone_w : 0.0},
          {"update_p99_over_alone", alone_u > 0 ? u99 / alone_u : 0.0},
          {"delivery_spread_p50_ms", percentile(spread, 0.5)}, {"delivery_spread_p99_ms", percentile(spread, 0.99)},
          {"rounds_history", per_round},     {"client_uploads", uploads},
          {"updates_per_s", rate},          {"updates_per_s_over_target", rate / kTargetUpdatesPerS},
          {"updates", updates},             {"leases", st.leases},
          {"polls_empty", st.polls_empty},  {"failures", st.failures + run.alone.failures},
          {"first_failure", st.failures ? st.first_failure : run.alone.first_failure},
          {"mufld_cpu_s_per_update", updates ? run.mufld_cpu / static_cast<double>(updates) : 0.0}};
}

const char* met(bool ok) { return ok ? "met" : "MISSED"; }

void print_scale(const json& f) {
  const int n = f["clients"];
  const double hwm = f["rss_peak_mb"], w99 = f["weights_p99_ms"], u99 = f["update_p99_ms"], rate = f["updates_per_s"];
  std::printf("\n== scale: %d clients in one process (polls on one thread, transfers on another) against mufld --devices cpu:1"
              " --torch-threads 1\n", n);
  std::printf("enrolled %d clients in %.2f s (%.0f/s), all online; activity: %d rounds of %d clients, %.1f s\n", n,
              f["enroll_s"].get<double>(), n / f["enroll_s"].get<double>(), f["rounds"].get<int>(), n,
              f["run_s"].get<double>());
  std::printf("a lease: weights %.3f MB down, update %.3f MB up\n", f["weights_bytes"].get<double>() / 1e6,
              f["update_bytes"].get<double>() / 1e6);
  std::printf("mufld RSS: %.1f MB with the clients idle, %.1f MB sampled max, peak (VmHWM) %.1f MB; target < %.0f MB:"
              " %.3f of it (%s)\n", f["rss_idle_mb"].get<double>(), f["rss_sampled_max_mb"].get<double>(), hwm,
              kTargetRssMb, hwm / kTargetRssMb, met(hwm < kTargetRssMb));
  const double l99 = f["lease_p99_ms"];
  std::printf("lease latency (its \"created\", as mufld built it, to the client holding it; one host, one clock):"
              " p50 %.1f ms, p99 %.1f ms; target p99 < %.0f ms: %s\n", f["lease_p50_ms"].get<double>(), l99,
              kTargetLeaseP99Ms, met(l99 < kTargetLeaseP99Ms));
  std::printf("GET weights: p50 %.1f ms, p99 %.1f ms; PUT update: p50 %.1f ms, p99 %.1f ms (round trip, request"
              " written to response read, all clients at once)\n",
              f["weights_p50_ms"].get<double>(), w99, f["update_p50_ms"].get<double>(), u99);
  std::printf("baseline, one client alone (%d rounds): GET weights p50 %.2f ms, PUT update p50 %.2f ms; under load"
              " p99 is %.0f x and %.0f x that\n", kBaselineRounds, f["alone_weights_p50_ms"].get<double>(),
              f["alone_update_p50_ms"].get<double>(), f["weights_p99_over_alone"].get<double>(),
              f["update_p99_over_alone"].get<double>());
  std::printf("lease delivery spread (a client's 200 on its long poll minus the round's first): p50 %.1f ms, p99"
              " %.1f ms\n", f["delivery_spread_p50_ms"].get<double>(), f["delivery_spread_p99_ms"].get<double>());
  for (const auto& r : f["rounds_history"])
    std::printf("round %lld: %lld updates aggregated in %.2f s = %.0f updates/s\n",
                static_cast<long long>(r["round"].get<int64_t>()), static_cast<long long>(r["reported"].get<int64_t>()),
                r["seconds"].get<double>(), r["updates_per_s"].get<double>());
  for (const auto& u : f["client_uploads"])
    std::printf("  client side, round %lld: %lld uploads in %.2f s = %.0f/s (first update sent to last 200)\n",
                static_cast<long long>(u["round"].get<int64_t>()), static_cast<long long>(u["leases"].get<int64_t>()),
                u["upload_window_s"].get<double>(), u["uploads_per_s"].get<double>());
  std::printf("updates aggregated per second (round history): mean %.0f; target >= %.0f: %.3f of it (%s)\n", rate,
              kTargetUpdatesPerS, rate / kTargetUpdatesPerS, met(rate >= kTargetUpdatesPerS));
  std::printf("mufld CPU: %.4f s per update (%lld updates); client request failures: %lld %s\n",
              f["mufld_cpu_s_per_update"].get<double>(), static_cast<long long>(f["updates"].get<int64_t>()),
              static_cast<long long>(f["failures"].get<int64_t>()), f["first_failure"].get<std::string>().c_str());
}

json run_scale_phase(const Options& o) {
  const json f = scale_figures(o, run_load(o));
  print_scale(f);
  return f;
}

// ----------------------------------------------------------------------- phase 3: edge

// Submits class, segment and parity on the federation, merged into one group or not, waits
// for all three, and returns what the clients spent per round and the groups they trained in.
json run_trio(const Options& o, Server& s, const std::string& token, const Federation& fed,
              const std::vector<pid_t>& pids, bool merged) {
  const double cpu_before = clients_cpu_seconds(pids);
  const auto start = SteadyClock::now();
  std::vector<std::string> ids;
  for (const std::string task : {"class", "segment", "parity"})
    ids.push_back(submit(s, token, {{"name", task + (merged ? "-merged" : "-alone")}, {"federation", fed.id},
                                    {"task", task}, {"rounds", o.edge_rounds}, {"clients_per_round", o.edge_clients},
                                    {"min_clients", o.edge_clients}, {"seed", o.seed}, {"merge", merged}}));
  std::set<std::string> groups;
  double client_joules = 0, server_joules = 0;  // the three activities' shares add up to their rounds'
  for (const auto& id : ids) {
    const json done = succeeded(s, token, id, o.timeout);
    groups.insert(done["groups"][0].get<std::string>());
    client_joules += done["energy"]["client_joules"].get<double>();
    server_joules += done["energy"]["joules"].get<double>();
  }
  const double cpu = clients_cpu_seconds(pids) - cpu_before;
  return {{"merged", merged},
          {"first_groups", groups.size()},
          {"client_joules_per_round", client_joules / o.edge_rounds},
          {"server_joules_per_round", server_joules / o.edge_rounds},
          {"client_cpu_s_per_round", cpu / o.edge_rounds},
          {"wall_s", seconds_since(start)}};
}

json run_edge_phase(const Options& o) {
  // all_in_one: compatible activities merge and never split, so every round is a merged one.
  Server s(o, {"--devices", "cpu:1", "--torch-threads", "1", "--grouping", "all_in_one", "--merge-window", "2"});
  const std::string token = make_tenant(s, "edge");
  const Federation fed = make_federation(s, token, "edge");
  ClientFleet fleet(o, s, token, fed, cut_shards(o, s.data_dir(), o.edge_clients), o.edge_clients);
  // A warm-up round first, not measured: a client process's first lease pays one-time costs
  // (LibTorch's lazy initialisation, its shards read from disk) that would otherwise all fall on
  // whichever trio runs first. Measured without it on a fresh machine, merged first: 0.652 at
  // 3 rounds, 0.432 at 6; the one-time cost was over 40 % of the 3-round merged run's joules.
  succeeded(s, token,
            submit(s, token, {{"name", "warm-up"}, {"federation", fed.id}, {"task", "class"}, {"rounds", 1},
                              {"clients_per_round", o.edge_clients}, {"min_clients", o.edge_clients}, {"seed", o.seed},
                              {"merge", false}}),
            o.timeout);
  const json merged = run_trio(o, s, token, fed, fleet.pids(), true);
  const json alone = run_trio(o, s, token, fed, fleet.pids(), false);
  const auto ratio_of = [&](const char* key) {
    const double a = alone[key];
    return a > 0 ? merged[key].get<double>() / a : 0.0;
  };
  const double ratio = ratio_of("client_joules_per_round"), cpu_ratio = ratio_of("client_cpu_s_per_round");
  std::printf("\n== edge: class + segment + parity on %d mufl-client processes, %d rounds, merged vs unmerged\n",
              o.edge_clients, o.edge_rounds);
  for (const json* r : {&merged, &alone})
    std::printf("%s (%zu group%s): clients %.1f J per round as they metered it (%.2f CPU-s), mufld %.2f J (%.1f s "
                "wall)\n", (*r)["merged"].get<bool>() ? "merged (--grouping all_in_one)" : "unmerged (\"merge\": false)",
                (*r)["first_groups"].get<size_t>(), (*r)["first_groups"] == 1 ? "" : "s",
                (*r)["client_joules_per_round"].get<double>(), (*r)["client_cpu_s_per_round"].get<double>(),
                (*r)["server_joules_per_round"].get<double>(), (*r)["wall_s"].get<double>());
  std::printf("merged / unmerged client joules: %.3f; target <= %.2f (%s); client CPU-seconds: %.3f\n", ratio,
              kTargetEdgeRatio, ratio <= kTargetEdgeRatio ? "met" : "MISSED", cpu_ratio);
  if (merged["first_groups"] != 1 || alone["first_groups"] != 3)
    throw std::runtime_error("the activities did not group as asked (merged " + merged.dump() + ", unmerged " +
                             alone.dump() + ")");
  if (merged["client_joules_per_round"].get<double>() <= 0)
    throw std::runtime_error("the clients reported no energy");
  return {{"merged", merged}, {"unmerged", alone}, {"ratio", ratio}, {"cpu_ratio", cpu_ratio}, {"unit", "J"}};
}

// ------------------------------------------------------------------------------- main

int run(const Options& o) {
  const std::vector<std::pair<std::string, std::function<json(const Options&)>>> phases = {
      {"sim", run_sim_phase}, {"scale", run_scale_phase}, {"edge", run_edge_phase}};
  std::printf("clients: phases");
  for (const auto& p : phases)
    if (o.phases.count(p.first)) std::printf(" %s", p.first.c_str());
  std::printf("; %u cores, 1-minute load average %.2f\n", std::thread::hardware_concurrency(), load_average());
  std::fflush(stdout);
  json out = {{"bench", "clients"}, {"cores", std::thread::hardware_concurrency()}, {"load_before", load_average()}};
  bool ok = true;
  for (const auto& [name, phase] : phases) {
    if (!o.phases.count(name)) continue;
    const auto start = SteadyClock::now();
    try {
      out[name] = phase(o);
      out[name]["phase_s"] = seconds_since(start);
      if (out[name].value("failures", int64_t{0}) > 0) ok = false;  // a client request was refused or broke
    } catch (const std::exception& e) {
      std::fprintf(stderr, "clients: phase %s failed: %s\n", name.c_str(), e.what());
      out[name] = {{"error", e.what()}};
      ok = false;
    }
    std::fflush(stdout);
  }
  out["load_after"] = load_average();
  out["ok"] = ok;
  std::printf("%s\n", out.dump().c_str());
  return ok ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
  signal(SIGPIPE, SIG_IGN);
  Options o;
  try {
    o = parse_options(argc, argv);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "clients: %s\n", e.what());
    return 2;
  }
  try {
    return run(o);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "clients: %s\n", e.what());
    return 1;
  }
}
