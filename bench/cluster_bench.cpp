// bench/cluster: what a round costs when a Slurm worker trains it (issue 16), against the same
// round on mufld's own device, in one run.
//
// Starts a one-node Slurm cluster (scripts/slurm-one-node start DIR --gpus 1 --watch-pid <this
// process>; `stop DIR` at the end, also on failure; the watcher stops it should this process die
// first), then trains the same activity (synthetic data by default, task class, --grouping
// independent) twice, each on a fresh mufld on a fresh data dir:
//   local    mufld --devices cpu:1 --torch-threads 1 --energy-meter model
//   cluster  mufld --devices none --cluster slurm --worker-command "mufl-worker --torch-threads 1
//            --energy-meter model" --torch-threads 1 --energy-meter model
// The cluster's node has one fake GPU, so the group's rounds run in one mufl-worker job on this
// machine's CPU with one LibTorch thread, as the local rounds do.
//
// Every time comes from a record with milliseconds on this host's clock: mufld's events
// (GET /v1/events?after=0, read live from before the submit to the activity's end: submit,
// group formed, device claimed, each round recorded), the round history (each round's training
// `seconds`), Slurm's own logs in the cluster folder (sbatch accepted, job allocated, batch
// script launched), squeue polled every 50 ms until the job is RUNNING, and the worker's log
// (first poll, each round's work received, trained, recorded). Figures:
//   - round wall time: between two consecutive rounds' round.finished events (the executor's
//     whole round, the checkpoint's commit included), rounds 2..N of each run; the first round
//     is left out of both (on the cluster it holds Slurm's queueing and the worker's start);
//   - ratio = cluster median ÷ local median (target <= 1.15), and the same for training alone;
//     on a shared machine the two runs' training speeds differ by more than the cluster adds, so
//     overhead_ratio also gives the ratio with the training time equal on both sides:
//     (local train + cluster other) ÷ (local train + local other), other = wall − train;
//   - Slurm queueing = the device's claim of the group → the job RUNNING in squeue; worker start
//     = RUNNING → the worker's first poll; claimable → first round = the group formed → the
//     worker starts training round 1 (local: the group formed → round 1's training starts);
//   - the overhead of a cluster round split into dispatch (round recorded → the next round's
//     training starts on the worker), training, the result's PUT and its recording, with the
//     checkpoint's bytes and how often the worker fetched it.
// Prints a table, the ratios against their targets and one JSON line. Exit 0 when both runs
// worked (a missed target is not a failure), 1 when something failed, 2 for bad flags or a
// missing prerequisite (Slurm's commands, the data set).
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iostream>
#include <map>
#include <mutex>
#include <optional>
#include <sstream>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "tests/support/http_client.h"
#include "tests/support/mufld_process.h"
#include "tests/support/sse_client.h"
#include "tests/support/temp_dir.h"

namespace {

namespace fs = std::filesystem;
using nlohmann::json;
using SteadyClock = std::chrono::steady_clock;

const std::string kAdmin = "mufl_cluster_bench_admin_token";
constexpr double kTargetRatio = 1.15;  // cluster round ÷ local round, medians, first round excluded
constexpr int kSqueueEveryMs = 50;     // squeue's pace until the worker job is RUNNING

// ---------------------------------------------------------------------------------- options

struct Options {
  std::string mufld = MUFLD_PATH, worker = MUFL_WORKER_PATH, script = MUFL_SLURM_SCRIPT;
  std::string dataset = "synthetic", data_dir = "var";
  std::string keep_logs;  // --keep-logs DIR: Slurm's and the worker's logs are copied there at the end
  int rounds = 6, clients = 4, clients_per_round = 4, local_epochs = 3, batch_size = 32, seed = 7;
  int timeout = 900;  // the most one activity may take, seconds
  bool quick = false;
};

const char* kUsage =
    "usage: cluster [--quick] [--rounds N] [--dataset synthetic|mnist] [--data-dir DIR] [--clients N]\n"
    "               [--clients-per-round N] [--local-epochs N] [--batch-size N] [--seed N] [--timeout S]\n"
    "               [--mufld PATH] [--mufl-worker PATH] [--slurm-script PATH] [--keep-logs DIR]\n"
    "The same activity (task class, --grouping independent) on mufld --devices cpu:1 and on a one-node\n"
    "Slurm cluster (scripts/slurm-one-node) through a mufl-worker job, both with one LibTorch thread:\n"
    "median round wall time (rounds 2..N) cluster/local against 1.15, Slurm's queueing, the worker's\n"
    "start, the time from the group becoming claimable to its first round, and the overhead's parts.\n"
    "Defaults: 6 rounds, synthetic, 4 clients all in every round, 3 local epochs, batch 32 (12,000 samples,\n"
    "about 5 s a round on 2 cores); --quick: 3 rounds of 1 local epoch (under a minute). mnist (60 clients\n"
    "by default, 4 per round: the same samples a round) needs\n"
    "<--data-dir>/datasets/mnist (default var, as mufld's). --keep-logs DIR: copies slurmctld's, slurmd's\n"
    "and the worker's logs to DIR at the end (also on failure).\n"
    "Exit 0 when it ran (a missed target is not a failure), 1 when something failed, 2 for bad flags\n"
    "or a missing prerequisite.\n";

int positive(const std::string& flag, const std::string& v) {
  size_t used = 0;
  int n = 0;
  try {
    n = std::stoi(v, &used);
  } catch (const std::exception&) {
    used = 0;
  }
  if (used != v.size() || n < 1) throw std::invalid_argument(flag + " must be a positive integer, not " + v);
  return n;
}

Options parse_options(int argc, char** argv) {
  Options o;
  bool clients_set = false;
  // --quick sets the defaults that the other flags then override, wherever it stands.
  for (int i = 1; i < argc; ++i)
    if (std::string(argv[i]) == "--quick") {
      o.quick = true;
      o.rounds = 3;
      o.local_epochs = 1;
    }
  for (int i = 1; i < argc; ++i) {
    const std::string flag = argv[i];
    if (flag == "--help" || flag == "-h") {
      std::cout << kUsage;
      std::exit(0);
    }
    if (flag == "--quick") continue;
    if (i + 1 >= argc) throw std::invalid_argument(flag + " needs a value (see --help)");
    const std::string v = argv[++i];
    if (flag == "--rounds") o.rounds = positive(flag, v);
    else if (flag == "--dataset") o.dataset = v;
    else if (flag == "--data-dir") o.data_dir = v;
    else if (flag == "--clients") o.clients = positive(flag, v), clients_set = true;
    else if (flag == "--clients-per-round") o.clients_per_round = positive(flag, v);
    else if (flag == "--local-epochs") o.local_epochs = positive(flag, v);
    else if (flag == "--batch-size") o.batch_size = positive(flag, v);
    else if (flag == "--seed") o.seed = positive(flag, v);
    else if (flag == "--timeout") o.timeout = positive(flag, v);
    else if (flag == "--mufld") o.mufld = v;
    else if (flag == "--mufl-worker") o.worker = v;
    else if (flag == "--slurm-script") o.script = v;
    else if (flag == "--keep-logs") o.keep_logs = v;
    else throw std::invalid_argument("unknown flag " + flag + " (see --help)");
  }
  if (o.dataset != "synthetic" && o.dataset != "mnist")
    throw std::invalid_argument("--dataset must be synthetic or mnist, not " + o.dataset);
  // The same samples a round on mnist (60,000 training images) as on synthetic (4,000): 1,000 a client.
  if (o.dataset == "mnist" && !clients_set) o.clients = 60;
  if (o.rounds < 2) throw std::invalid_argument("--rounds must be at least 2 (the first round is not compared)");
  if (o.clients_per_round > o.clients) throw std::invalid_argument("--clients-per-round is more than --clients");
  return o;
}

// ------------------------------------------------------------------------------- helpers

// A missing prerequisite (exit 2), as opposed to a failure of the run (exit 1).
struct Missing : std::runtime_error {
  using std::runtime_error::runtime_error;
};

double load_average(int which = 0) {
  double v[3] = {0, 0, 0};
  std::ifstream("/proc/loadavg") >> v[0] >> v[1] >> v[2];
  return v[which];
}

// Seconds since the epoch now, on the clock mufld, Slurm and the worker stamp their records with.
double wall_now() {
  return std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
}

// "2026-12-07T01:26:23.076Z" (UTC) or "2026-12-07T01:26:23.076" (local time, as Slurm's and
// spdlog's logs write it) → seconds since the epoch; nullopt when it is not such a time.
std::optional<double> parse_time(const std::string& s) {
  std::tm tm{};
  int ms = 0;
  char tail = 0;
  const int n = std::sscanf(s.c_str(), "%4d-%2d-%2dT%2d:%2d:%2d.%3d%c", &tm.tm_year, &tm.tm_mon, &tm.tm_mday,
                            &tm.tm_hour, &tm.tm_min, &tm.tm_sec, &ms, &tail);
  if (n < 7) return std::nullopt;
  tm.tm_year -= 1900;
  tm.tm_mon -= 1;
  tm.tm_isdst = -1;
  const time_t t = n == 8 && tail == 'Z' ? timegm(&tm) : mktime(&tm);
  return static_cast<double>(t) + ms / 1000.0;
}

double median(std::vector<double> v) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  const size_t m = v.size() / 2;
  return v.size() % 2 ? v[m] : (v[m - 1] + v[m]) / 2;
}

std::string shell_quote(const std::string& s) {
  std::string out = "'";
  for (char c : s) out += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return out + "'";
}

std::string slurp(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

std::vector<std::string> lines_of(const std::string& text) {
  std::vector<std::string> out;
  std::istringstream in(text);
  for (std::string l; std::getline(in, l);) out.push_back(l);
  return out;
}

std::string tail(const std::string& text, size_t n) {
  const auto lines = lines_of(text);
  std::string out;
  for (size_t i = lines.size() > n ? lines.size() - n : 0; i < lines.size(); ++i) out += "  " + lines[i] + "\n";
  return out;
}

// Runs a shell command line; its output (stdout and stderr); throws when it exits non-zero.
std::string run_shell(const std::string& command) {
  std::string out;
  const int rc = mufl::testing::run_command(command, out);
  if (rc != 0) throw std::runtime_error(command + " exited " + std::to_string(rc) + ":\n" + out);
  return out;
}

bool on_path(const std::string& name) {
  std::string out;
  return mufl::testing::run_command("command -v " + name, out) == 0;
}

// ------------------------------------------------------------------------ the Slurm cluster

// scripts/slurm-one-node's cluster in `dir`: started by the constructor (SLURM_CONF, from its
// env file, then set in this process's environment, so squeue and the mufld children talk to
// it), stopped by the destructor, always; its watcher stops it if this process dies first.
class SlurmOneNode {
 public:
  SlurmOneNode(const std::string& script, const std::string& dir) : script_(script), dir_(dir) {
    for (const char* cmd : {"munged", "slurmctld", "slurmd", "sbatch", "squeue", "sinfo", "scancel"})
      if (!on_path(cmd)) throw Missing(std::string(cmd) + " is not on PATH (apt-get install slurm-wlm munge)");
    const auto start = SteadyClock::now();
    started_ = true;  // a failed start has stopped what it started; stop again does nothing
    output_ = run_shell(shell_quote(script_) + " start " + shell_quote(dir_) + " --gpus 1 --watch-pid " +
                        std::to_string(getpid()));
    start_s_ = std::chrono::duration<double>(SteadyClock::now() - start).count();
    std::string conf = run_shell(". " + shell_quote(dir_ + "/env") + " && printf %s \"$SLURM_CONF\"");
    if (conf.empty()) throw std::runtime_error(dir_ + "/env sets no SLURM_CONF");
    setenv("SLURM_CONF", conf.c_str(), 1);
  }
  ~SlurmOneNode() {
    if (!started_) return;
    std::string out;
    if (mufl::testing::run_command(shell_quote(script_) + " stop " + shell_quote(dir_), out) != 0)
      std::fprintf(stderr, "cluster: %s stop %s failed:\n%s", script_.c_str(), dir_.c_str(), out.c_str());
    unsetenv("SLURM_CONF");
  }
  SlurmOneNode(const SlurmOneNode&) = delete;
  SlurmOneNode& operator=(const SlurmOneNode&) = delete;

  const std::string& dir() const { return dir_; }
  double start_seconds() const { return start_s_; }
  std::string logs_tail(size_t n) const {
    std::string out;
    for (const char* f : {"slurmctld.log", "slurmd.log"})
      out += std::string("--- ") + f + "\n" + tail(slurp(dir_ + "/" + f), n);
    return out;
  }

 private:
  std::string script_, dir_, output_;
  bool started_ = false;
  double start_s_ = 0;
};

struct SlurmJob {
  std::string id, name, state;
};

// The jobs squeue lists now (this cluster: SLURM_CONF).
std::vector<SlurmJob> squeue() {
  std::vector<SlurmJob> jobs;
  for (const auto& line : lines_of(run_shell("squeue --noheader --format='%i|%j|%T'"))) {
    const size_t a = line.find('|'), b = line.find('|', a + 1);
    if (a == std::string::npos || b == std::string::npos) continue;
    jobs.push_back({line.substr(0, a), line.substr(a + 1, b - a - 1), line.substr(b + 1)});
  }
  return jobs;
}

// Polls squeue every kSqueueEveryMs from start() until the first mufl worker job is RUNNING (or
// stop()), noting when it was first listed and first seen RUNNING. It stops polling at once
// then, so that it costs nothing while the measured rounds run.
class SqueueWatch {
 public:
  ~SqueueWatch() { stop(); }
  void start() {
    thread_ = std::thread([this] {
      while (!stop_) {
        try {
          for (const SlurmJob& j : squeue()) {
            if (j.name.rfind("mufl-", 0) != 0) continue;
            std::lock_guard lock(mu_);
            const double now = wall_now();
            if (job_.empty()) {
              job_ = j.id;
              listed_ = now;
            }
            if (j.id == job_ && j.state == "RUNNING") {
              running_ = now;
              return;
            }
          }
        } catch (const std::exception& e) {
          std::lock_guard lock(mu_);
          error_ = e.what();
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(kSqueueEveryMs));  // squeue's pace
      }
    });
  }
  void stop() {
    stop_ = true;
    if (thread_.joinable()) thread_.join();
  }
  std::string job() {
    std::lock_guard lock(mu_);
    return job_;
  }
  std::optional<double> listed() {
    std::lock_guard lock(mu_);
    return listed_;
  }
  std::optional<double> running() {
    std::lock_guard lock(mu_);
    return running_;
  }
  std::string error() {
    std::lock_guard lock(mu_);
    return error_;
  }

 private:
  std::thread thread_;
  std::atomic<bool> stop_{false};
  std::mutex mu_;
  std::string job_, error_;
  std::optional<double> listed_, running_;
};

// What Slurm's logs (local time, milliseconds) say about a job: sbatch accepted it, the
// scheduler allocated it (squeue shows RUNNING from then), slurmd launched its batch script.
struct SlurmJobTimes {
  std::optional<double> submitted, allocated, launched;
};

SlurmJobTimes slurm_job_times(const std::string& dir, const std::string& job) {
  SlurmJobTimes t;
  const auto stamp = [](const std::string& line) {
    return line.size() > 1 && line[0] == '[' ? parse_time(line.substr(1)) : std::nullopt;
  };
  const std::string id = "JobId=" + job + " ";
  for (const auto& line : lines_of(slurp(dir + "/slurmctld.log"))) {
    if (!t.submitted && line.find("_slurm_rpc_submit_batch_job: " + id) != std::string::npos) t.submitted = stamp(line);
    if (!t.allocated && (line.find("Allocate " + id) != std::string::npos ||
                         line.find("Started " + id) != std::string::npos))
      t.allocated = stamp(line);
  }
  for (const auto& line : lines_of(slurp(dir + "/slurmd.log")))
    if (!t.launched && line.find("Launching batch job " + job + " ") != std::string::npos) t.launched = stamp(line);
  return t;
}

// What the worker's log says (spdlog, local time with milliseconds): its first poll, and per
// round when the work came (rounds after its first: "goes on from the checkpoint this worker
// sent"), when the result was ready to send ("trained in") and when mufld took it ("recorded").
struct WorkerRound {
  std::optional<double> work, trained, recorded;
};
struct WorkerLog {
  std::optional<double> first_poll;
  std::map<int64_t, WorkerRound> rounds;
  std::string text;
};

WorkerLog parse_worker_log(const std::string& path) {
  WorkerLog w;
  w.text = slurp(path);
  const std::string who = "mufl-worker: ";
  for (const auto& line : lines_of(w.text)) {
    const auto t = parse_time(line);
    const size_t at = line.find(who);
    if (!t || at == std::string::npos) continue;
    const std::string msg = line.substr(at + who.size());
    if (msg.rfind("worker ", 0) == 0 && msg.find(" trains on ") != std::string::npos) {
      if (!w.first_poll) w.first_poll = t;
      continue;
    }
    long long round = 0;
    int used = 0;
    if (std::sscanf(msg.c_str(), "round %lld: %n", &round, &used) != 1 || used == 0) continue;
    const std::string what = msg.substr(static_cast<size_t>(used));
    WorkerRound& r = w.rounds[round];
    if (what.rfind("goes on from", 0) == 0) r.work = t;
    else if (what.rfind("trained in", 0) == 0) r.trained = t;
    else if (what.rfind("recorded", 0) == 0) r.recorded = t;
  }
  return w;
}

// --keep-logs: on destruction, copies slurmctld's, slurmd's and the workers' logs from the
// bench's folder `from` to `to` (nothing when `to` is empty). Errors are ignored.
class KeepLogs {
 public:
  KeepLogs(std::string from, std::string to) : from_(std::move(from)), to_(std::move(to)) {}
  ~KeepLogs() {
    if (to_.empty()) return;
    std::error_code ec;
    fs::create_directories(to_, ec);
    for (const char* f : {"slurmctld.log", "slurmd.log"})
      fs::copy_file(from_ + "/slurm/" + f, to_ + "/" + f, fs::copy_options::overwrite_existing, ec);
    for (const auto& e : fs::directory_iterator(from_, ec))
      if (e.path().filename().string().rfind("worker-", 0) == 0)
        fs::copy_file(e.path(), to_ + "/" + e.path().filename().string(), fs::copy_options::overwrite_existing, ec);
  }
  KeepLogs(const KeepLogs&) = delete;
  KeepLogs& operator=(const KeepLogs&) = delete;

 private:
  std::string from_, to_;
};

// ------------------------------------------------------------------------------- mufld

// mufld as a child (tests/support/mufld_process.h) on a fresh data dir, with its API client.
class Server {
 public:
  Server(const Options& o, const std::vector<std::string>& args, const std::string& datasets)
      : dir_(), mufld_(o.mufld, link_datasets(dir_.path(), datasets), kAdmin, quiet(args)),
        http_("127.0.0.1", mufld_.port()) {}
  ~Server() { mufld_.stop(SIGTERM); }

  uint16_t port() const { return mufld_.port(); }
  const std::string& data_dir() const { return dir_.path(); }

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
  // mufld reads data sets from <data dir>/datasets: the fresh dir gets a link to the real ones.
  static const std::string& link_datasets(const std::string& dir, const std::string& datasets) {
    if (!datasets.empty()) fs::create_directory_symlink(fs::absolute(datasets), dir + "/datasets");
    return dir;
  }
  // Its stdout (a pipe no one reads after the start) gets only warnings.
  static std::vector<std::string> quiet(std::vector<std::string> args) {
    args.insert(args.end(), {"--log-level", "warn"});
    return args;
  }
  mufl::testing::TempDir dir_;  // first: it outlives the process
  mufl::testing::MufldProcess mufld_;
  mufl::testing::HttpClient http_;
};

// ------------------------------------------------------------------------------ one run

struct Round {
  int64_t round = 0;
  double finished = 0;  // its round.finished event's time
  double seconds = 0;   // the report's training seconds
  std::string device;
};

// What one run of the activity recorded.
struct Run {
  std::string name, device;
  double submitted = 0, claimable = 0, claimed = 0;  // events: queued, group formed, device busy
  std::vector<Round> rounds;
  int64_t checkpoint_bytes = 0;
  double wall_s = 0;
};

json spec_of(const Options& o, const std::string& name) {
  return {{"name", name}, {"dataset", o.dataset}, {"task", "class"}, {"rounds", o.rounds},
          {"clients", o.clients}, {"clients_per_round", o.clients_per_round}, {"local_epochs", o.local_epochs},
          {"batch_size", o.batch_size}, {"seed", o.seed}};
}

// The size of the group's newest checkpoint file (what a round's checkpoint weighs).
int64_t checkpoint_bytes(const std::string& data_dir) {
  int64_t bytes = 0;
  fs::file_time_type newest{};
  std::error_code ec;
  for (const auto& e : fs::recursive_directory_iterator(data_dir + "/groups", ec)) {
    const std::string f = e.path().filename().string();
    if (!e.is_regular_file() || f.rfind("checkpoint-", 0) != 0) continue;
    if (bytes == 0 || e.last_write_time() >= newest) {
      newest = e.last_write_time();
      bytes = static_cast<int64_t>(e.file_size());
    }
  }
  return bytes;
}

// Submits the activity and follows its events live (a replay from after=0 first) until it
// ended; then reads its round history. `submitted` runs just before the submit.
Run run_activity(const Options& o, Server& s, const std::string& name, const std::function<void()>& submitted) {
  const std::string token = s.call("POST", "/v1/tenants", kAdmin, json{{"name", name}}.dump())["token"];
  mufl::testing::SseClient events(s.port(), "/v1/events?after=0", token);
  if (events.status() != 200) throw std::runtime_error("GET /v1/events -> " + std::to_string(events.status()));
  Run run;
  run.name = name;
  if (submitted) submitted();
  const auto start = SteadyClock::now();
  const std::string id = s.call("POST", "/v1/activities", token, spec_of(o, name).dump())["id"];
  const auto deadline = start + std::chrono::seconds(o.timeout);
  std::map<int64_t, double> finished;
  std::string state;
  while (state != "succeeded") {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - SteadyClock::now());
    if (left.count() <= 0) throw std::runtime_error("activity " + id + " still " + state + " after " +
                                                    std::to_string(o.timeout) + " s");
    auto e = events.next(left);
    if (!e) {
      if (events.closed()) throw std::runtime_error("mufld closed the event stream");
      continue;
    }
    const json d = json::parse(e->data);
    const double t = parse_time(d.value("time", "")).value_or(0);
    const std::string type = d.value("type", "");
    if (type == "device.changed") {
      if (d["state"] == "busy" && run.claimed == 0 && run.submitted > 0) {
        run.claimed = t;
        run.device = d["device"];
      }
      continue;
    }
    if (d.value("activity_id", "") != id) continue;
    if (type == "activity.state") {
      state = d["state"];
      if (state == "queued") run.submitted = t;
      if (state == "failed" || state == "cancelled")
        throw std::runtime_error("activity " + id + " " + state + ": " + d.value("reason", ""));
    } else if (type == "group.merged" && run.claimable == 0) {
      run.claimable = t;
    } else if (type == "round.finished") {
      finished[d["round"].get<int64_t>()] = t;
    }
  }
  run.wall_s = std::chrono::duration<double>(SteadyClock::now() - start).count();
  // The round history, once it holds every round (read right after the last event, it has once
  // been seen empty: retried for up to 10 s).
  json history;
  for (int tries = 0; tries < 100; ++tries) {
    history = s.call("GET", "/v1/activities/" + id + "/rounds?limit=1000", token);
    if (static_cast<int>(history["items"].size()) >= o.rounds) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));  // the poll's pace
  }
  for (const auto& r : history["items"]) {
    Round round;
    round.round = r["round"];
    round.seconds = r["seconds"];
    round.device = r.value("device", "");
    round.finished = finished.count(round.round) ? finished[round.round] : 0;
    if (round.finished == 0) throw std::runtime_error("no round.finished event for round " + std::to_string(round.round));
    run.rounds.push_back(round);
  }
  if (static_cast<int>(run.rounds.size()) != o.rounds)
    throw std::runtime_error("activity " + id + " recorded " + std::to_string(run.rounds.size()) + " rounds, not " +
                             std::to_string(o.rounds));
  if (run.claimable == 0) run.claimable = run.submitted;
  run.checkpoint_bytes = checkpoint_bytes(s.data_dir());
  return run;
}

// Round wall times: round i's round.finished − round i−1's, for i = 2..N.
std::vector<double> walls(const Run& r) {
  std::vector<double> out;
  for (size_t i = 1; i < r.rounds.size(); ++i) out.push_back(r.rounds[i].finished - r.rounds[i - 1].finished);
  return out;
}

std::vector<double> trains(const Run& r) {
  std::vector<double> out;
  for (size_t i = 1; i < r.rounds.size(); ++i) out.push_back(r.rounds[i].seconds);
  return out;
}

// What a round costs besides its training: wall − the report's seconds, rounds 2..N.
std::vector<double> others(const Run& r) {
  std::vector<double> out;
  for (size_t i = 1; i < r.rounds.size(); ++i)
    out.push_back(r.rounds[i].finished - r.rounds[i - 1].finished - r.rounds[i].seconds);
  return out;
}

Run run_local(const Options& o, const std::string& datasets) {
  Server s(o, {"--devices", "cpu:1", "--torch-threads", "1", "--energy-meter", "model", "--grouping", "independent"},
           datasets);
  return run_activity(o, s, "local", {});
}

// The cluster run's own records besides the activity's.
struct ClusterRecords {
  std::string job;
  std::optional<double> squeue_listed, squeue_running;
  SlurmJobTimes slurm;
  WorkerLog worker;
};

// Waits until squeue lists no mufl worker job (the worker exits once mufld says it is done),
// so that its log is complete; at most `seconds`.
void wait_no_worker_job(int seconds) {
  const auto deadline = SteadyClock::now() + std::chrono::seconds(seconds);
  while (SteadyClock::now() < deadline) {
    bool any = false;
    for (const SlurmJob& j : squeue()) any = any || j.name.rfind("mufl-", 0) == 0;
    if (!any) return;
    std::this_thread::sleep_for(std::chrono::milliseconds(200));  // squeue's pace
  }
}

Run run_cluster(const Options& o, const SlurmOneNode& cluster, const std::string& logs, const std::string& datasets,
                ClusterRecords& rec) {
  std::string worker_command = o.worker + " --torch-threads 1 --energy-meter model";
  if (!datasets.empty()) worker_command += " --data-dir " + fs::absolute(o.data_dir).string();
  Server s(o, {"--devices", "none", "--cluster", "slurm", "--worker-command", worker_command, "--torch-threads", "1",
               "--energy-meter", "model", "--grouping", "independent",
               "--slurm-sbatch-arg=--output=" + logs + "/worker-%j.out"},
           datasets);
  // The cluster's GPU is a device once mufld's sinfo answered: at its start, else at the next
  // --cluster-refresh (30 s).
  const auto deadline = SteadyClock::now() + std::chrono::seconds(70);
  for (;;) {
    bool idle = false;
    const json devices = s.call("GET", "/v1/devices", kAdmin);
    for (const auto& d : devices["items"])
      idle = idle || (d["name"].get<std::string>().rfind("slurm:", 0) == 0 && d["state"] == "idle");
    if (idle) break;
    if (SteadyClock::now() > deadline)
      throw std::runtime_error("mufld shows no idle Slurm device after 70 s: " + devices.dump());
    std::this_thread::sleep_for(std::chrono::milliseconds(100));  // the poll's pace
  }
  SqueueWatch watch;
  Run run = run_activity(o, s, "cluster", [&] { watch.start(); });
  watch.stop();
  if (!watch.error().empty()) std::fprintf(stderr, "cluster: squeue failed while watching: %s\n", watch.error().c_str());
  rec.job = watch.job();
  rec.squeue_listed = watch.listed();
  rec.squeue_running = watch.running();
  if (rec.job.empty()) throw std::runtime_error("squeue never listed the worker job");
  wait_no_worker_job(30);
  rec.slurm = slurm_job_times(cluster.dir(), rec.job);
  rec.worker = parse_worker_log(logs + "/worker-" + rec.job + ".out");
  if (!rec.worker.first_poll)
    throw std::runtime_error("the worker's log has no first poll:\n" + tail(rec.worker.text, 20));
  for (const Round& r : run.rounds)
    if (r.device.rfind("slurm:", 0) != 0) throw std::runtime_error("round " + std::to_string(r.round) + " ran on " + r.device);
  return run;
}

// ------------------------------------------------------------------------------ report

const char* met(bool ok) { return ok ? "MET" : "MISSED"; }

// "+1.234" seconds from `from` to an optional time, or "-" when it is unknown.
std::string since(double from, const std::optional<double>& t) {
  if (!t) return "     -";
  char buf[32];
  std::snprintf(buf, sizeof buf, "%+7.3f", *t - from);
  return buf;
}

std::optional<double> minus(const std::optional<double>& a, const std::optional<double>& b) {
  if (!a || !b) return std::nullopt;
  return *a - *b;
}

json opt(const std::optional<double>& v) { return v ? json(*v) : json(); }

int run(const Options& o) {
  std::string datasets;  // "" for synthetic: nothing to read
  if (o.dataset != "synthetic") {
    datasets = o.data_dir + "/datasets";
    if (!fs::exists(datasets + "/" + o.dataset)) throw Missing(datasets + "/" + o.dataset + " is missing (scripts/setup fetches it)");
  }
  for (const std::string& bin : {o.mufld, o.worker, o.script})
    if (access(bin.c_str(), X_OK) != 0) throw Missing(bin + " is not an executable");

  const unsigned cores = std::thread::hardware_concurrency();
  const double load_start = load_average();
  const int64_t samples = static_cast<int64_t>(o.local_epochs) * o.clients_per_round *
                          (o.dataset == "synthetic" ? 4000 : 60000) / o.clients;
  std::printf("cluster: %u cores, load average %.2f / %.2f / %.2f (1 / 5 / 15 min) at start%s\n", cores, load_start,
              load_average(1), load_average(2), o.quick ? "; --quick" : "");
  std::printf("activity: %s, task class, %d clients, %d per round, %d local epoch%s, batch %d (about %lld samples a"
              " round), %d rounds, seed %d, --grouping independent\n", o.dataset.c_str(), o.clients,
              o.clients_per_round, o.local_epochs, o.local_epochs == 1 ? "" : "s", o.batch_size,
              static_cast<long long>(samples), o.rounds, o.seed);
  std::fflush(stdout);

  mufl::testing::TempDir root;  // the cluster's folder and the worker's logs (short: socket paths)
  // munged wants every folder above its socket executable by all (scripts/slurm-one-node).
  fs::permissions(root.path(), fs::perms::group_exec | fs::perms::others_exec, fs::perm_options::add);
  const KeepLogs keep(root.path(), o.keep_logs);  // between the two: after the cluster's stop, before rm
  SlurmOneNode cluster(o.script, root.path() + "/slurm");
  std::printf("slurm: one-node cluster with 1 fake GPU up in %.1f s (%s)\n", cluster.start_seconds(),
              cluster.dir().c_str());

  std::printf("\n== local: mufld --devices cpu:1 --torch-threads 1 --energy-meter model\n");
  std::fflush(stdout);
  const Run local = run_local(o, datasets);
  std::printf("%d rounds in %.1f s on %s\n", o.rounds, local.wall_s, local.device.c_str());
  const double load_between = load_average();

  std::printf("\n== cluster: mufld --devices none --cluster slurm --worker-command \"mufl-worker --torch-threads 1"
              " --energy-meter model\" --torch-threads 1 --energy-meter model (load average %.2f)\n", load_between);
  std::fflush(stdout);
  ClusterRecords rec;
  Run remote;
  try {
    remote = run_cluster(o, cluster, root.path(), datasets, rec);
  } catch (const std::exception&) {
    std::fprintf(stderr, "cluster: the cluster run failed; Slurm's logs end with:\n%s", cluster.logs_tail(15).c_str());
    for (const auto& e : fs::directory_iterator(root.path()))
      if (e.path().filename().string().rfind("worker-", 0) == 0)
        std::fprintf(stderr, "--- %s\n%s", e.path().filename().c_str(), tail(slurp(e.path().string()), 15).c_str());
    throw;
  }
  std::printf("%d rounds in %.1f s on %s (Slurm job %s)\n", o.rounds, remote.wall_s, remote.device.c_str(),
              rec.job.c_str());
  const double load_end = load_average();

  // Per round: wall times and training seconds; the cluster's round split from the worker's log.
  const auto& wr = rec.worker.rounds;
  std::vector<double> dispatch, put, record;
  int fetches = 1;  // checkpoint GETs by the worker: round 1's, and any later round it did not go on from
  std::printf("\n%5s | %9s %9s %9s | %9s %9s %9s | %9s %9s %9s\n", "round", "local", "train", "other", "cluster",
              "train", "other", "dispatch", "put", "record");
  std::printf("%5s | %9s %9s %9s | %9s %9s %9s | %9s %9s %9s\n", "", "wall s", "s", "s", "wall s", "s", "s", "s", "s",
              "s");
  const auto cell = [](const std::optional<double>& v) {
    char buf[16];
    std::snprintf(buf, sizeof buf, "%9.3f", v.value_or(0));
    return v ? std::string(buf) : std::string("        -");
  };
  for (size_t i = 0; i < remote.rounds.size(); ++i) {
    const Round& l = local.rounds[i];
    const Round& c = remote.rounds[i];
    const auto w = wr.count(c.round) ? wr.at(c.round) : WorkerRound{};
    if (i == 0) {
      std::printf("%5lld | %9s %9.3f %9s | %9s %9.3f %9s | (first round: not compared, see below)\n",
                  static_cast<long long>(c.round), "-", l.seconds, "-", "-", c.seconds, "-");
      continue;
    }
    const double lw = l.finished - local.rounds[i - 1].finished, cw = c.finished - remote.rounds[i - 1].finished;
    // Training starts on the worker at "trained in" − the report's seconds (the line follows the
    // checkpoint's serialisation and SHA-256, about a millisecond for this model).
    const std::optional<double> start = w.trained ? std::optional<double>(*w.trained - c.seconds) : std::nullopt;
    const auto d = minus(start, remote.rounds[i - 1].finished), p = minus(w.recorded, w.trained),
               r = minus(c.finished, w.recorded);
    const bool fetched = w.trained && !w.work;  // no "goes on from the checkpoint this worker sent"
    fetches += fetched;
    if (d) dispatch.push_back(*d);
    if (p) put.push_back(*p);
    if (r) record.push_back(*r);
    std::printf("%5lld | %9.3f %9.3f %9.3f | %9.3f %9.3f %9.3f | %s %s %s%s\n", static_cast<long long>(c.round), lw,
                l.seconds, lw - l.seconds, cw, c.seconds, cw - c.seconds, cell(d).c_str(), cell(p).c_str(),
                cell(r).c_str(), fetched ? "  (the worker fetched the checkpoint again)" : "");
  }
  const double local_round = median(walls(local)), cluster_round = median(walls(remote));
  const double local_train = median(trains(local)), cluster_train = median(trains(remote));
  const double local_other = median(others(local)), cluster_other = median(others(remote));
  const double ratio = cluster_round / local_round, train_ratio = cluster_train / local_train;
  // The ratio were training as fast on both sides: what the cluster adds to a round, without the
  // training-speed noise of a shared machine.
  const double overhead_ratio = (local_train + cluster_other) / (local_train + local_other);
  std::printf("%5s | %9.3f %9.3f %9.3f | %9.3f %9.3f %9.3f | %9.3f %9.3f %9.3f\n", "median", local_round, local_train,
              local_other, cluster_round, cluster_train, cluster_other, median(dispatch),
              median(put), median(record));
  std::printf("wall: round.finished to round.finished (the executor's round, checkpoint commit included); train: the"
              " round report's seconds;\nother: wall - train = dispatch + put + record; dispatch: previous round"
              " recorded -> training starts on the worker (mufld's\ncheckpoint, the long poll's answer; a checkpoint GET"
              " and job rebuild when the worker fetched it); put: result ready on the\nworker -> mufld answered its PUT"
              " (report + checkpoint); record: -> round.finished (restore, checkpoint file, commit)\n");

  // The first round on the cluster, from the group becoming claimable.
  const double t0 = remote.claimable;
  const Round& c1 = remote.rounds.front();
  const WorkerRound w1 = wr.count(c1.round) ? wr.at(c1.round) : WorkerRound{};
  const std::optional<double> train_start = w1.trained ? std::optional<double>(*w1.trained - c1.seconds) : std::nullopt;
  const std::optional<double> running = rec.squeue_running ? rec.squeue_running : rec.slurm.allocated;
  std::printf("\nfirst round on the cluster (seconds from the group becoming claimable):\n");
  std::printf("  %s  activity submitted (POST /v1/activities)\n", since(t0, remote.submitted).c_str());
  std::printf("  %s  group formed: claimable\n", since(t0, t0).c_str());
  std::printf("  %s  the Slurm device claims it (device.changed busy); mufld runs sbatch\n",
              since(t0, remote.claimed).c_str());
  std::printf("  %s  slurmctld accepts the job (sbatch's submit RPC, its log)\n", since(t0, rec.slurm.submitted).c_str());
  std::printf("  %s  squeue lists job %s\n", since(t0, rec.squeue_listed).c_str(), rec.job.c_str());
  std::printf("  %s  slurmctld allocates it (its log; squeue says RUNNING from here)\n",
              since(t0, rec.slurm.allocated).c_str());
  std::printf("  %s  squeue shows it RUNNING (polled every %d ms)\n", since(t0, rec.squeue_running).c_str(),
              kSqueueEveryMs);
  std::printf("  %s  slurmd launches the batch script (its log)\n", since(t0, rec.slurm.launched).c_str());
  std::printf("  %s  mufl-worker's first poll for work (its log: LibTorch loaded, meter open)\n",
              since(t0, rec.worker.first_poll).c_str());
  std::printf("  %s  round 1 starts training on the worker (checkpoint GET, data set, job built)\n",
              since(t0, train_start).c_str());
  std::printf("  %s  round 1 recorded (round.finished)\n", since(t0, c1.finished).c_str());
  const std::optional<double> queue = minus(running, remote.claimed);
  const std::optional<double> worker_start = minus(rec.worker.first_poll, running);
  const std::optional<double> claim_to_first = minus(train_start, t0);
  const std::optional<double> worker_setup = minus(train_start, rec.worker.first_poll);
  const double local_first_start = local.rounds.front().finished - local.rounds.front().seconds;
  const double local_claim_to_first = local_first_start - local.claimable;
  std::printf("Slurm queueing (claim -> RUNNING in squeue, sbatch included): %.3f s; worker start (RUNNING -> first"
              " poll): %.3f s\n", queue.value_or(-1), worker_start.value_or(-1));
  std::printf("claimable -> first round starts: cluster %.3f s, local %.3f s (local: round 1 recorded - its training"
              " seconds); submitted -> round 1 recorded: cluster %.3f s, local %.3f s\n", claim_to_first.value_or(-1),
              local_claim_to_first, c1.finished - remote.submitted, local.rounds.front().finished - local.submitted);

  std::printf("\nround wall time (median of rounds 2..%d): local %.3f s, cluster %.3f s\n", o.rounds, local_round,
              cluster_round);
  std::printf("ratio cluster/local %.3f; target <= %.2f: %s\n", ratio, kTargetRatio, met(ratio <= kTargetRatio));
  std::printf("training alone (report seconds): local %.3f s, cluster %.3f s, ratio %.3f; the rest of a round: local"
              " %.3f s, cluster %.3f s (medians of wall - train)\n", local_train, cluster_train, train_ratio,
              local_other, cluster_other);
  std::printf("ratio with the training time equal on both sides ((local train + cluster other) / (local train + local"
              " other)): %.4f; target <= %.2f: %s\n", overhead_ratio, kTargetRatio, met(overhead_ratio <= kTargetRatio));
  std::printf("overhead split of a cluster round (medians): dispatch %.3f s, result PUT %.3f s, record %.3f s;"
              " checkpoint %lld bytes; the worker fetched it (GET) for %d of %d rounds (it keeps its job and goes on"
              " from the checkpoint it sent)\n", median(dispatch), median(put), median(record),
              static_cast<long long>(remote.checkpoint_bytes), fetches, o.rounds);
  std::printf("load average: %.2f at start, %.2f between the runs, %.2f at the end (%u cores)\n", load_start,
              load_between, load_end, cores);

  json local_rounds = json::array(), cluster_rounds = json::array();
  for (size_t i = 0; i < local.rounds.size(); ++i) {
    const double prev_l = i ? local.rounds[i - 1].finished : local.claimable;
    const double prev_c = i ? remote.rounds[i - 1].finished : remote.claimable;
    local_rounds.push_back({{"round", local.rounds[i].round}, {"wall_s", local.rounds[i].finished - prev_l},
                            {"train_s", local.rounds[i].seconds}});
    cluster_rounds.push_back({{"round", remote.rounds[i].round}, {"wall_s", remote.rounds[i].finished - prev_c},
                              {"train_s", remote.rounds[i].seconds}});
  }
  const json out = {
      {"bench", "cluster"},
      {"quick", o.quick},
      {"dataset", o.dataset},
      {"rounds", o.rounds},
      {"clients", o.clients},
      {"clients_per_round", o.clients_per_round},
      {"local_epochs", o.local_epochs},
      {"batch_size", o.batch_size},
      {"local_round_s", local_round},
      {"cluster_round_s", cluster_round},
      {"ratio", ratio},
      {"target", kTargetRatio},
      {"met", ratio <= kTargetRatio},
      {"local_train_s", local_train},
      {"cluster_train_s", cluster_train},
      {"train_ratio", train_ratio},
      {"local_other_s", local_other},
      {"cluster_other_s", cluster_other},
      {"overhead_ratio", overhead_ratio},
      {"dispatch_s", median(dispatch)},
      {"put_s", median(put)},
      {"record_s", median(record)},
      {"checkpoint_bytes", remote.checkpoint_bytes},
      {"checkpoint_fetches", fetches},
      {"slurm_queue_s", opt(queue)},
      {"sbatch_s", opt(minus(rec.slurm.submitted, remote.claimed))},
      {"slurm_launch_s", opt(minus(rec.slurm.launched, rec.slurm.allocated))},
      {"worker_start_s", opt(worker_start)},
      {"worker_first_round_setup_s", opt(worker_setup)},
      {"claim_to_first_round_s", opt(claim_to_first)},
      {"local_claim_to_first_round_s", local_claim_to_first},
      {"submit_to_first_round_recorded_s", c1.finished - remote.submitted},
      {"local_submit_to_first_round_recorded_s", local.rounds.front().finished - local.submitted},
      {"local_rounds", local_rounds},
      {"cluster_rounds", cluster_rounds},
      {"cores", cores},
      {"load_start", load_start},
      {"load_between", load_between},
      {"load_end", load_end},
      {"ok", true}};
  std::printf("%s\n", out.dump().c_str());
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  signal(SIGPIPE, SIG_IGN);
  Options o;
  try {
    o = parse_options(argc, argv);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "cluster: %s\n", e.what());
    return 2;
  }
  try {
    return run(o);
  } catch (const Missing& e) {
    std::fprintf(stderr, "cluster: %s\n", e.what());
    std::printf("%s\n", json{{"bench", "cluster"}, {"ok", false}, {"error", e.what()}}.dump().c_str());
    return 2;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "cluster: %s\n", e.what());
    std::printf("%s\n", json{{"bench", "cluster"}, {"ok", false}, {"error", e.what()}}.dump().c_str());
    return 1;
  }
}
