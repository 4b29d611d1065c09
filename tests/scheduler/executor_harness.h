#pragma once
// The executor in one process for tests: the real App, SQLite store and executor, training
// with LibTorch on the synthetic data set through a TrainingBackend that can make chosen rounds
// fail (FaultyBackend) and an Env that can make file operations fail (FaultEnv). Runs are
// compared round by round with an unbroken run of the same submission (unbroken()).
// Shared by tests/scheduler/executor_faults_test.cpp and executor_cluster_test.cpp.
#include <catch2/catch.hpp>

#include <cmath>
#include <condition_variable>
#include <functional>
#include <map>
#include <mutex>
#include <nlohmann/json.hpp>

#include "scheduler/executor.h"
#include "scheduler/placement/waiting.h"
#include "service/app.h"
#include "storage/sqlite_store.h"
#include "tenants/token.h"
#include "tests/support/fault_env.h"
#include "tests/support/temp_dir.h"

namespace mufl::testing {

using namespace mufl::scheduler;
using nlohmann::json;


inline const std::string kAdmin = "admin-token-for-executor-tests";

// Makes chosen rounds of every job fail, as a LibTorch exception caught in fl/ would.
class FaultyBackend final : public TrainingBackend {
 public:
  // Runs of lineage round `round` fail with `error`, `times` of them (< 0: all).
  void fail_round(int64_t round, Status error, int times) {
    std::lock_guard lock(mu_);
    rules_[round] = {std::move(error), times};
  }
  // How many times round `round` was run, failed runs included.
  int runs(int64_t round) const {
    std::lock_guard lock(mu_);
    auto it = runs_.find(round);
    return it == runs_.end() ? 0 : it->second;
  }
  // Rewrites each successful round's report before the executor sees it (the test losses the
  // merge guard reads). Set before the executor trains.
  std::function<void(int64_t round, fl::RoundReport&)> rewrite;
  int total_runs() const {
    std::lock_guard lock(mu_);
    int n = 0;
    for (const auto& [r, c] : runs_) n += c;
    return n;
  }

  Result<std::unique_ptr<TrainingJob>> create(const fl::JobConfig& c, const fl::RuntimeOptions& rt) override {
    return wrap(local_training().create(c, rt), c.round_offset);
  }
  Result<std::unique_ptr<TrainingJob>> derive(const TrainingJob& source, const fl::JobConfig& c,
                                              const fl::RuntimeOptions& rt) override {
    return wrap(local_training().derive(dynamic_cast<const Job&>(source).inner(), c, rt), c.round_offset);
  }

 private:
  class Job final : public TrainingJob {
   public:
    Job(FaultyBackend& owner, std::unique_ptr<TrainingJob> inner, int64_t offset)
        : owner_(owner), inner_(std::move(inner)), offset_(offset) {}
    Result<fl::RoundReport> run_round(const std::function<bool()>& stop) override {
      const int64_t round = offset_ + inner_->rounds_done() + 1;
      if (Status s = owner_.before_round(round); !s.is_ok()) return s;
      auto report = inner_->run_round(stop);
      if (report.ok() && !report->stopped && owner_.rewrite) owner_.rewrite(round, *report);
      return report;
    }
    Result<std::string> checkpoint() const override { return inner_->checkpoint(); }
    Status restore(const std::string& b) override { return inner_->restore(b); }
    Result<std::string> export_model(const std::string& h) const override { return inner_->export_model(h); }
    Result<std::vector<std::string>> export_cluster_models(const std::string& h) const override {
      return inner_->export_cluster_models(h);
    }
    const std::vector<std::string>& heads() const override { return inner_->heads(); }
    int64_t rounds_done() const override { return inner_->rounds_done(); }
    void set_affinity_every(int n) override { inner_->set_affinity_every(n); }
    void set_final_heads(const std::vector<std::string>& keys) override { inner_->set_final_heads(keys); }
    Status release_client_states(int64_t oldest_round) override { return inner_->release_client_states(oldest_round); }
    const TrainingJob& inner() const { return *inner_; }

   private:
    FaultyBackend& owner_;
    std::unique_ptr<TrainingJob> inner_;
    int64_t offset_;
  };

  Result<std::unique_ptr<TrainingJob>> wrap(Result<std::unique_ptr<TrainingJob>> made, int64_t offset) {
    if (!made.ok()) return made.status();
    return std::unique_ptr<TrainingJob>(std::make_unique<Job>(*this, std::move(*made), offset));
  }
  Status before_round(int64_t round) {
    std::lock_guard lock(mu_);
    ++runs_[round];
    auto it = rules_.find(round);
    if (it == rules_.end() || it->second.second == 0) return Status::ok();
    if (it->second.second > 0) --it->second.second;
    return it->second.first;
  }

  mutable std::mutex mu_;
  std::map<int64_t, std::pair<Status, int>> rules_;
  std::map<int64_t, int> runs_;
};

// Waits for activities to end (the executor's observer), without polling.
class Endings final : public ExecutorObserver {
 public:
  void activity_ended(const std::string& id, ActivityState state) override {
    std::lock_guard lock(mu_);
    ended_[id] = state;
    cv_.notify_all();
  }
  std::optional<ActivityState> wait(const std::string& id, std::chrono::seconds limit = std::chrono::seconds(120)) {
    std::unique_lock lock(mu_);
    cv_.wait_for(lock, limit, [&] { return ended_.count(id) > 0; });
    auto it = ended_.find(id);
    return it == ended_.end() ? std::nullopt : std::optional<ActivityState>(it->second);
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  std::map<std::string, ActivityState> ended_;
};

struct Harness {
  TempDir dir;
  FaultEnv env;
  FaultyBackend backend;
  Endings endings;
  PlacementBoard board;
  SeededRandom rng{7};
  std::unique_ptr<storage::SqliteStore> store;
  std::unique_ptr<WaitingExplainer> waiting;
  std::unique_ptr<service::App> app;
  std::unique_ptr<Executor> executor;
  std::string token;
  // Changes the executor's options before each start() (a cluster device, another backend).
  std::function<void(ExecutorOptions&)> configure;

  explicit Harness(std::function<void(ExecutorOptions&)> configure_executor = {})
      : configure(std::move(configure_executor)) {
    storage::StoreOptions o;
    o.path = dir.file("mufl.db");
    auto s = storage::SqliteStore::open(o, SystemClock::instance());
    REQUIRE(s.ok());
    store = std::move(*s);
    waiting = std::make_unique<WaitingExplainer>(*store, &board, nullptr, false);
    tenants::ActivityHooks hooks;
    hooks.on_submitted = [this](const Activity&) {
      if (executor) executor->submitted();
    };
    service::EnergyOptions energy;
    energy.waiting = waiting.get();
    energy.training_health = [this] { return executor ? executor->storage_health() : Status::ok(); };
    app = std::make_unique<service::App>(*store, SystemClock::instance(), rng, tenants::sha256_hex(kAdmin), hooks,
                                         energy);
    auto t = call("POST", "/v1/tenants", json{{"name", "team"}}.dump(), kAdmin);
    REQUIRE(t.status == 201);
    token = json::parse(t.body)["token"];
    start();
  }
  ~Harness() { stop(); }

  void start() {
    ExecutorOptions o;
    o.devices = {{"cpu:0", "cpu"}};
    o.data_dir = dir.path();
    o.env = &env;
    o.backend = &backend;
    o.board = &board;
    o.storage_retry_ms = 150;
    o.storage_retry_max_ms = 600;
    if (configure) configure(o);
    executor = std::make_unique<Executor>(*store, SystemClock::instance(), o, &endings);
    REQUIRE(executor->start().is_ok());
  }
  void stop() {
    if (executor) executor->stop();
    executor.reset();
  }

  service::HttpResponse call(const std::string& method, const std::string& target, const std::string& body = "",
                             const std::string& bearer = "") {
    service::HttpRequest r;
    r.method = method;
    REQUIRE(service::split_target(target, r.path, r.query));
    r.body = body;
    if (!bearer.empty()) r.headers.emplace_back("authorization", "Bearer " + bearer);
    return app->handle(std::move(r));
  }

  // `extra` fields are added to the request (e.g. {"local_update": "fedema"}).
  std::string submit(int rounds = 4, const std::string& task = "class", const json& extra = json::object()) {
    json body = {{"name", "faulty"}, {"dataset", "synthetic"}, {"task", task}, {"rounds", rounds},
                 {"clients", 4},     {"clients_per_round", 2},  {"seed", 3}, {"merge", true}};
    body.update(extra);
    auto r = call("POST", "/v1/activities", body.dump(), token);
    REQUIRE(r.status == 201);
    return json::parse(r.body)["id"];
  }

  Activity activity(const std::string& id) {
    auto a = store->get_activity(id, storage::Scope::all());
    REQUIRE(a.ok());
    return *a;
  }

  // Each round's losses and metrics, without what differs from run to run (ids, times).
  std::vector<json> metrics(const std::string& id) {
    auto rounds = store->list_rounds(id, {storage::Scope::all(), 0, 1000});
    REQUIRE(rounds.ok());
    REQUIRE(!rounds->next_after_round);
    std::vector<json> out;
    for (const auto& r : rounds->items) {
      json j = json::parse(r.report_json);
      out.push_back({{"round", j["round"]}, {"train_loss", j["train_loss"]}, {"metrics", j["metrics"]},
                     {"samples", j["samples"]}});
    }
    return out;
  }
};

// What an unbroken run of Harness::submit(rounds) records, computed once per test binary.
inline const std::vector<json>& unbroken(int rounds = 4) {
  static std::map<int, std::vector<json>> cache;
  if (!cache.count(rounds)) {
    Harness h;
    const std::string id = h.submit(rounds);
    REQUIRE(h.endings.wait(id) == ActivityState::kSucceeded);
    cache[rounds] = h.metrics(id);
    REQUIRE(cache[rounds].size() == static_cast<size_t>(rounds));
  }
  return cache[rounds];
}

}  // namespace mufl::testing
