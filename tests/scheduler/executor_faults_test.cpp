// The executor under faults (scheduler/executor.h, "Failures" and "Crash safety"), in one
// process: the real App, SQLite store, executor and LibTorch training on the synthetic data set,
// with a TrainingBackend that makes chosen rounds fail and a FaultEnv that makes chosen file
// operations fail or read damaged bytes. Each run is compared, round by round, with an
// unbroken run of the same submission.
#include "scheduler/executor.h"

#include <catch2/catch.hpp>

#include <cmath>
#include <condition_variable>
#include <map>
#include <mutex>
#include <nlohmann/json.hpp>

#include "scheduler/placement/waiting.h"
#include "service/app.h"
#include "storage/sqlite_store.h"
#include "tenants/token.h"
#include "tests/support/fault_env.h"
#include "tests/support/temp_dir.h"

using namespace mufl;
using namespace mufl::scheduler;
using mufl::testing::FaultEnv;
using mufl::testing::TempDir;
using nlohmann::json;

namespace {

const std::string kAdmin = "admin-token-for-executor-tests";

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
    const std::vector<std::string>& heads() const override { return inner_->heads(); }
    int64_t rounds_done() const override { return inner_->rounds_done(); }
    void set_affinity_every(int n) override { inner_->set_affinity_every(n); }
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

  Harness() {
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

  std::string submit(int rounds = 4, const std::string& task = "class") {
    json body = {{"name", "faulty"}, {"dataset", "synthetic"}, {"task", task}, {"rounds", rounds},
                 {"clients", 4},     {"clients_per_round", 2},  {"seed", 3}, {"merge", true}};
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
const std::vector<json>& unbroken(int rounds = 4) {
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

}  // namespace

TEST_CASE("executor: a round that throws once is redone from the checkpoint, with an unbroken run's metrics") {
  const auto& expected = unbroken();
  Harness h;
  h.backend.fail_round(3, Status::internal("round 3: CUDA out of memory (injected)"), 1);
  const std::string id = h.submit();
  REQUIRE(h.endings.wait(id) == ActivityState::kSucceeded);
  CHECK(h.backend.runs(3) == 2);
  CHECK(h.metrics(id) == expected);
}

TEST_CASE("executor: a round that always throws fails the activity with the message, and stays failed on restart") {
  Harness h;
  h.backend.fail_round(2, Status::internal("round 2: c10::Error: shape mismatch (injected)"), -1);
  const std::string id = h.submit();
  REQUIRE(h.endings.wait(id) == ActivityState::kFailed);
  CHECK(h.backend.runs(2) == 3);  // max_round_errors
  const Activity a = h.activity(id);
  CHECK_THAT(a.state_reason, Catch::Contains("round 2 failed 3 times"));
  CHECK_THAT(a.state_reason, Catch::Contains("shape mismatch (injected)"));
  CHECK(a.progress.rounds_done == 1);

  // A restart does not train it again: no crash loop, no retry of a failed activity.
  h.stop();
  const int before = h.backend.total_runs();
  h.start();
  const std::string other = h.submit(1);  // proves the restarted executor trains
  REQUIRE(h.endings.wait(other) == ActivityState::kSucceeded);
  CHECK(h.backend.total_runs() == before + 1);
  CHECK(h.activity(id).state == ActivityState::kFailed);
}

TEST_CASE("executor: a failure the same settings meet again fails at once, saying why") {
  Harness h;
  h.backend.fail_round(1, Status::failed_precondition("training diverged in round 1: the training loss is nan"), -1);
  const std::string id = h.submit();
  REQUIRE(h.endings.wait(id) == ActivityState::kFailed);
  CHECK(h.backend.runs(1) == 1);
  CHECK_THAT(h.activity(id).state_reason, Catch::Contains("training diverged in round 1"));
}

TEST_CASE("executor: a full disk at a checkpoint releases the group, which waits for storage and then finishes") {
  const auto& expected = unbroken();
  Harness h;
  h.env.fail(FaultEnv::Op::kWrite, "checkpoint-2.pt",
             Status::insufficient_storage("cannot write checkpoint-2.pt: No space left on device"), 2);
  const std::string id = h.submit();
  // While it backs off, the group waits with reason `storage`, and /readyz says why.
  bool saw_storage = false, saw_not_ready = false;
  for (int i = 0; i < 2000 && !(saw_storage && saw_not_ready); ++i) {
    if (auto notes = h.waiting->explain(); notes.ok())
      for (const auto& [gid, note] : *notes) saw_storage |= note.reason == WaitReason::kStorage;
    auto ready = h.call("GET", "/readyz");
    if (ready.status == 503) {
      saw_not_ready = true;
      CHECK_THAT(ready.body, Catch::Contains("storage full"));
    }
    if (h.activity(id).state == ActivityState::kSucceeded) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(5));  // sampling a state that lasts >= 150 ms
  }
  CHECK(saw_storage);
  CHECK(saw_not_ready);
  REQUIRE(h.endings.wait(id) == ActivityState::kSucceeded);
  CHECK(h.env.failures() == 2);
  CHECK(h.metrics(id) == expected);
  CHECK(h.call("GET", "/readyz").status == 200);
  CHECK(h.executor->storage_health().is_ok());
}

TEST_CASE("executor: an I/O error on the model file is retried too") {
  const auto& expected = unbroken();
  Harness h;
  h.env.fail(FaultEnv::Op::kRename, "model.pt", Status::unavailable("cannot rename model.pt: Input/output error"), 1);
  const std::string id = h.submit();
  REQUIRE(h.endings.wait(id) == ActivityState::kSucceeded);
  CHECK(h.env.failures() == 1);
  CHECK(h.metrics(id) == expected);
}

TEST_CASE("executor: a damaged newest checkpoint falls back to the one before, redoing its round") {
  const auto& expected = unbroken();
  Harness h;
  // Round 3's checkpoint cannot be written: the group resumes from round 2's, which reads damaged.
  h.env.fail(FaultEnv::Op::kWrite, "checkpoint-3.pt", Status::unavailable("injected I/O error"), 1);
  h.env.corrupt_reads("checkpoint-2.pt", 1);
  const std::string id = h.submit();
  REQUIRE(h.endings.wait(id) == ActivityState::kSucceeded);
  CHECK(h.backend.runs(2) == 2);  // redone from round 1's checkpoint
  CHECK(h.metrics(id) == expected);
  // Only the newest two checkpoints are kept, on disk as in the database.
  auto group = h.store->activity_groups(id);
  REQUIRE(group.ok());
  auto names = Env::posix().list(h.executor->group_dir(group->back()));
  REQUIRE(names.ok());
  CHECK(names->size() <= 2);
}

TEST_CASE("executor: with no usable checkpoint the activity fails, naming them") {
  Harness h;
  h.env.fail(FaultEnv::Op::kWrite, "checkpoint-3.pt", Status::unavailable("injected I/O error"), 1);
  h.env.corrupt_reads("checkpoint-2.pt", 1);
  h.env.corrupt_reads("checkpoint-1.pt", 1);
  const std::string id = h.submit();
  REQUIRE(h.endings.wait(id) == ActivityState::kFailed);
  const std::string reason = h.activity(id).state_reason;
  CHECK_THAT(reason, Catch::Contains("no usable checkpoint"));
  CHECK_THAT(reason, Catch::Contains("round 2 is damaged"));
  CHECK_THAT(reason, Catch::Contains("round 1 is damaged"));
}

TEST_CASE("executor: the merge guard splits off a member whose test loss stalls, at the next round boundary") {
  Harness h;
  // class's test loss falls 10 % a round; parity's stays flat: after round 4 it has fallen 0 %
  // over the guard's 3 rounds against class's 27 %.
  h.backend.rewrite = [](int64_t round, fl::RoundReport& r) {
    for (auto& e : r.eval) e.loss = e.task == "class" ? std::pow(0.9, static_cast<double>(round)) : 0.5;
  };
  h.stop();  // both submitted before the executor plans: they merge
  const std::string cls = h.submit(7, "class"), parity = h.submit(7, "parity");
  h.start();
  REQUIRE(h.endings.wait(cls) == ActivityState::kSucceeded);
  REQUIRE(h.endings.wait(parity) == ActivityState::kSucceeded);

  auto first = h.store->list_rounds(cls, {storage::Scope::all(), 0, 1});
  REQUIRE(first.ok());
  const std::string merged = json::parse(first->items.at(0).report_json)["group_id"];
  auto g = h.call("GET", "/v1/groups/" + merged, "", h.token);
  REQUIRE(g.status == 200);
  const json group = json::parse(g.body);
  CHECK(group["phase"] == "split");
  CHECK(group["round"] == 4);  // the boundary after round 4, the first the guard could judge
  CHECK(group["split"]["reason"] == "guard");
  CHECK(group["split"]["guard"]["activity_id"] == parity);
  CHECK(group["split"]["guard"]["window"] == 3);
  CHECK_THAT(group["split"]["guard"]["detail"].get<std::string>(), Catch::Contains("over 3 rounds"));
  CHECK(group["split"]["groups"] == json::array({json::array({parity}), json::array({cls})}));
  for (const auto& m : group["activities"]) {
    CHECK(m["left_round"] == 4);
    CHECK(m["left_reason"] == "guard");
    CHECK(m["loss"]["rounds"] == 4);
    CHECK(m["loss"]["history"].size() == 4);
    CHECK(m["loss"]["history"][0]["round"] == 1);
  }
  for (const auto& m : group["activities"])
    CHECK(m["loss"]["last"].get<double>() == Approx(m["id"] == cls ? std::pow(0.9, 4) : 0.5));
  // Each trained its last 3 rounds in a group of its own, born of the merged one.
  for (const auto& id : {cls, parity}) {
    auto r = h.store->list_rounds(id, {storage::Scope::all(), 4, 10});
    REQUIRE(r.ok());
    REQUIRE(r->items.size() == 3);
    const std::string child = json::parse(r->items[0].report_json)["group_id"];
    CHECK(child != merged);
    auto c = h.store->get_group(child, storage::Scope::all());
    REQUIRE(c.ok());
    CHECK(c->parent_id == merged);
    CHECK(c->members.size() == 1);
    CHECK(c->members[0].left_reason == "finished");
  }
}
