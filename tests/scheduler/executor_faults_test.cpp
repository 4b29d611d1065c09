// The executor under faults (scheduler/executor.h, "Failures" and "Crash safety"), in one
// process: the real App, SQLite store, executor and LibTorch training on the synthetic data set,
// with a TrainingBackend that makes chosen rounds fail and a FaultEnv that makes chosen file
// operations fail or read damaged bytes (tests/scheduler/executor_harness.h). Each run is
// compared, round by round, with an unbroken run of the same submission.
#include "tests/scheduler/executor_harness.h"

#include <algorithm>
#include <filesystem>
#include <set>

#include "core/file_io.h"

using namespace mufl;
using namespace mufl::scheduler;
using namespace mufl::testing;
using nlohmann::json;

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

namespace {

// class's test loss falls 10 % a round; parity's stays flat: after round 4 it has fallen 0 %
// over the guard's 3 rounds against class's 27 %. Every head's alignment with its mates is
// `alignment` (below 0: they pull against each other).
std::function<void(int64_t, fl::RoundReport&)> parity_stalls(double alignment) {
  return [alignment](int64_t round, fl::RoundReport& r) {
    for (auto& e : r.eval) e.loss = e.task == "class" ? std::pow(0.9, static_cast<double>(round)) : 0.5;
    for (auto& [head, a] : r.alignment) a = alignment;
  };
}

// A class and a parity activity of 7 rounds, submitted before the executor plans so that they
// merge, with parity's loss stalling (parity_stalls); returns their ids once both succeeded.
std::pair<std::string, std::string> train_stalling_pair(Harness& h, double alignment,
                                                        const json& extra = json::object()) {
  h.backend.rewrite = parity_stalls(alignment);
  h.stop();
  const std::string cls = h.submit(7, "class", extra), parity = h.submit(7, "parity", extra);
  h.start();
  REQUIRE(h.endings.wait(cls) == ActivityState::kSucceeded);
  REQUIRE(h.endings.wait(parity) == ActivityState::kSucceeded);
  return {cls, parity};
}

}  // namespace

TEST_CASE("executor: the merge guard splits off a member whose test loss stalls, at the next round boundary") {
  Harness h;
  const auto [cls, parity] = train_stalling_pair(h, -0.1);  // class pulls against parity

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
  CHECK(group["split"]["guard"]["alignment"].get<double>() == Approx(-0.1));
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

TEST_CASE("executor: the merge guard spares a stalled member whose mates' gradients pull its way") {
  Harness h;
  const auto [cls, parity] = train_stalling_pair(h, 0.2);  // the same stall, but class's steps help parity's loss

  // Trained together to the end: every round of each in the merged group, with its alignment.
  auto rounds = h.store->list_rounds(parity, {storage::Scope::all(), 0, 10});
  REQUIRE(rounds.ok());
  REQUIRE(rounds->items.size() == 7);
  const std::string merged = json::parse(rounds->items[0].report_json)["group_id"];
  for (const auto& r : rounds->items) {
    const json report = json::parse(r.report_json);
    CHECK(report["group_id"] == merged);
    CHECK(report["alignment"].get<double>() == Approx(0.2));
  }
  auto g = h.call("GET", "/v1/groups/" + merged, "", h.token);
  REQUIRE(g.status == 200);
  const json group = json::parse(g.body);
  CHECK(group["split"].value("reason", "") != "guard");
  for (const auto& m : group["activities"]) CHECK(m["left_reason"] == "finished");
}

TEST_CASE("executor: fedema resumes exactly after a round whose clients kept their models lost its checkpoint") {
  const json fedema = {{"local_update", "fedema"}};
  std::vector<json> expected;
  {
    Harness h;
    const std::string id = h.submit(4, "class", fedema);
    REQUIRE(h.endings.wait(id) == ActivityState::kSucceeded);
    expected = h.metrics(id);
  }
  REQUIRE(expected.size() == 4);
  CHECK(expected != unbroken());  // the clients' kept models changed the training
  Harness h;
  // Round 3 trains (its clients write their new models) but its checkpoint is never recorded:
  // the group resumes from round 2's, and must not start any client from a round-3 model.
  h.env.fail(FaultEnv::Op::kWrite, "checkpoint-3.pt", Status::unavailable("injected I/O error"), 1);
  const std::string id = h.submit(4, "class", fedema);
  REQUIRE(h.endings.wait(id) == ActivityState::kSucceeded);
  CHECK(h.backend.runs(3) == 2);
  CHECK(h.metrics(id) == expected);
  // The clients' models go with the group once it is done.
  auto group = h.store->activity_groups(id);
  REQUIRE(group.ok());
  const std::string clients = h.executor->group_dir(group->back()) + "/clients";
  h.stop();  // whether its last loop ended done or stopped, the group is finished
  CHECK_FALSE(std::filesystem::exists(clients));
}

TEST_CASE("executor: a merged pair's last round calibrates both heads, and a redone last round records the same") {
  const auto all_in_one = [](ExecutorOptions& o) { o.grouping.policy = GroupingPolicy::kAllInOne; };
  const auto run = [&](Harness& h) {
    h.stop();  // both submitted before the executor plans: they share one model
    const std::string cls = h.submit(3, "class"), parity = h.submit(3, "parity");
    h.start();
    REQUIRE(h.endings.wait(cls) == ActivityState::kSucceeded);
    REQUIRE(h.endings.wait(parity) == ActivityState::kSucceeded);
    return std::make_pair(cls, parity);
  };
  std::vector<json> expected_cls, expected_parity;
  {
    Harness h(all_in_one);
    const auto [cls, parity] = run(h);
    expected_cls = h.metrics(cls);
    expected_parity = h.metrics(parity);
    auto rounds = h.store->list_rounds(cls, {storage::Scope::all(), 0, 10});
    REQUIRE(rounds.ok());
    REQUIRE(rounds->items.size() == 3);
    for (size_t i = 0; i < 3; ++i) {
      const json r = json::parse(rounds->items[i].report_json);
      CHECK(r.value("head_calibrated", false) == (i == 2));  // only at its last round
    }
  }
  {
    // Without calibration the last round's metrics differ: the pass changed the heads.
    Harness h([&](ExecutorOptions& o) {
      all_in_one(o);
      o.head_calibration = false;
    });
    const auto [cls, parity] = run(h);
    const auto plain = h.metrics(cls);
    CHECK(plain[1] == expected_cls[1]);
    CHECK(plain[2] != expected_cls[2]);
    auto last = h.store->list_rounds(cls, {storage::Scope::all(), 2, 10});
    REQUIRE(last.ok());
    CHECK_FALSE(json::parse(last->items.at(0).report_json).contains("head_calibrated"));
  }
  // The last round's checkpoint is lost once: the round is redone from round 2's, calibration
  // included, and records what the unbroken run did.
  Harness h(all_in_one);
  h.env.fail(FaultEnv::Op::kWrite, "checkpoint-3.pt", Status::unavailable("injected I/O error"), 1);
  const auto [cls, parity] = run(h);
  CHECK(h.backend.runs(3) == 2);
  CHECK(h.metrics(cls) == expected_cls);
  CHECK(h.metrics(parity) == expected_parity);
}

TEST_CASE("executor: a clustered activity resumes exactly after a lost checkpoint, its GET shows the clusters, and each cluster has a model") {
  const json clustered = {{"client_clusters", 2}, {"cluster_round", 2}};
  std::vector<json> expected;
  {
    Harness h;
    const std::string id = h.submit(4, "class", clustered);
    REQUIRE(h.endings.wait(id) == ActivityState::kSucceeded);
    expected = h.metrics(id);
  }
  REQUIRE(expected.size() == 4);
  CHECK(expected[0] == unbroken()[0]);  // round 1 is FedAvg's
  CHECK(expected[1] != unbroken()[1]);  // from the clustering round on, the clusters' models
  Harness h;
  // Round 3's checkpoint (the first written with clusters after the clustering round's) is lost:
  // the group resumes from round 2's and must rebuild both clusters' models exactly.
  h.env.fail(FaultEnv::Op::kWrite, "checkpoint-3.pt", Status::unavailable("injected I/O error"), 1);
  const std::string id = h.submit(4, "class", clustered);
  REQUIRE(h.endings.wait(id) == ActivityState::kSucceeded);
  CHECK(h.backend.runs(3) == 2);
  CHECK(h.metrics(id) == expected);
  auto r = h.call("GET", "/v1/activities/" + id, "", h.token);
  REQUIRE(r.status == 200);
  const json a = json::parse(r.body);
  CHECK(a.at("client_clusters") == 2);
  REQUIRE(a.at("clusters").size() == 2);
  std::vector<int64_t> everyone;
  for (const auto& c : a["clusters"]) {
    CHECK(c.at("size") == c.at("clients").size());
    CHECK(c.at("metrics").at("class").contains("accuracy"));
    for (const auto& client : c["clients"]) everyone.push_back(client.get<int64_t>());
  }
  std::sort(everyone.begin(), everyone.end());
  CHECK(everyone == std::vector<int64_t>{0, 1, 2, 3});
  // Each cluster's own model, named in its entry; the plain model is the largest cluster's.
  json latest = a.at("progress").at("latest").at("clusters");
  std::vector<std::string> models;
  size_t largest = 0;
  for (size_t c = 0; c < 2; ++c) {
    const std::string url = a["clusters"][c].at("model_url");
    CHECK(url == "/v1/activities/" + id + "/model?cluster=" + std::to_string(c));
    latest[c]["model_url"] = url;
    auto m = h.call("GET", url, "", h.token);
    REQUIRE(m.status == 200);
    CHECK(std::find(m.headers.begin(), m.headers.end(), std::pair<std::string, std::string>{
                        "X-Content-SHA256", sha256_hex(m.body)}) != m.headers.end());
    models.push_back(m.body);
    if (a["clusters"][c]["samples"].get<int64_t>() > a["clusters"][largest]["samples"].get<int64_t>()) largest = c;
  }
  CHECK(latest == a.at("clusters"));
  CHECK(models[0] != models[1]);
  CHECK(h.call("GET", "/v1/activities/" + id + "/model", "", h.token).body == models[largest]);
  CHECK(h.call("GET", "/v1/activities/" + id + "/model?cluster=2", "", h.token).status == 404);
  CHECK(h.call("GET", "/v1/activities/" + id + "/model?cluster=x", "", h.token).status == 400);
  CHECK(h.call("GET", "/v1/activities/" + id + "/model?cluster=16", "", h.token).status == 400);
  CHECK(h.call("GET", "/v1/activities/" + id + "/model?clusters=0", "", h.token).status == 400);
}

// Two clustered activities merge; the guard splits them after round 4 (parity's test loss is
// made to stall, as in the guard's test above); each child keeps the clusters formed in round 2.
TEST_CASE("executor: a merged clustered pair splits into children that keep its clusters, and a child resumes exactly") {
  const json clustered = {{"client_clusters", 2}, {"cluster_round", 2}};
  const auto run_pair = [&](Harness& h) { return train_stalling_pair(h, -0.1, clustered); };
  std::vector<json> expected_cls, expected_parity;
  {
    Harness h;
    const auto [cls, parity] = run_pair(h);
    expected_cls = h.metrics(cls);
    expected_parity = h.metrics(parity);
    for (const auto& id : {cls, parity}) {
      auto rounds = h.store->list_rounds(id, {storage::Scope::all(), 0, 10});
      REQUIRE(rounds.ok());
      REQUIRE(rounds->items.size() == 7);
      std::set<std::string> groups;
      const json formed = json::parse(rounds->items[1].report_json).at("clusters");  // round 2
      REQUIRE(formed.size() == 2);
      for (size_t r = 1; r < 7; ++r) {
        const json report = json::parse(rounds->items[r].report_json);
        groups.insert(report.at("group_id").get<std::string>());
        REQUIRE(report.at("clusters").size() == 2);
        for (size_t c = 0; c < 2; ++c) CHECK(report["clusters"][c].at("clients") == formed[c].at("clients"));
      }
      CHECK(groups.size() == 2);  // the merged group, then its child of one
    }
  }
  // The first child checkpoint written (round 5) is lost: that child is built again from the
  // merged group's round-4 checkpoint, with the clusters, and redoes round 5 as it was.
  Harness h;
  h.env.fail(FaultEnv::Op::kWrite, "checkpoint-5.pt", Status::unavailable("injected I/O error"), 1);
  const auto [cls, parity] = run_pair(h);
  CHECK(h.backend.runs(5) == 3);
  CHECK(h.metrics(cls) == expected_cls);
  CHECK(h.metrics(parity) == expected_parity);
}

TEST_CASE("executor: an unclustered activity's GET has no clusters, nor its model a cluster") {
  Harness h;
  const std::string id = h.submit(1);
  REQUIRE(h.endings.wait(id) == ActivityState::kSucceeded);
  auto r = h.call("GET", "/v1/activities/" + id, "", h.token);
  REQUIRE(r.status == 200);
  const json a = json::parse(r.body);
  CHECK_FALSE(a.contains("clusters"));
  CHECK_FALSE(a.contains("client_clusters"));
  CHECK_FALSE(a.at("progress").at("latest").contains("clusters"));
  CHECK(h.call("GET", "/v1/activities/" + id + "/model", "", h.token).status == 200);
  auto r0 = h.call("GET", "/v1/activities/" + id + "/model?cluster=0", "", h.token);
  CHECK(r0.status == 404);
  CHECK_THAT(r0.body, Catch::Contains("does not cluster its clients"));
}

TEST_CASE("executor: a split keeps label and dense activities in groups of their own, unless told not to") {
  // The affinities pair each label task with a dense one: class with reconstruct, parity with
  // segment (+1); the two of a kind help each other less (+0.2); the other pairs across kinds
  // hurt (-1). Losses fall alike, so the guard stays quiet.
  const auto pairs_across_kinds = [](int64_t round, fl::RoundReport& r) {
    const auto partner = [](const std::string& t) -> std::string {
      if (t == "class") return "reconstruct";
      if (t == "reconstruct") return "class";
      if (t == "parity") return "segment";
      return "parity";
    };
    const size_t k = r.eval.size();
    r.affinity.assign(k, std::vector<double>(k, 0.0));
    for (size_t i = 0; i < k; ++i)
      for (size_t j = 0; j < k; ++j)
        if (i != j) {
          const bool label_i = r.eval[i].task == "class" || r.eval[i].task == "parity";
          const bool label_j = r.eval[j].task == "class" || r.eval[j].task == "parity";
          r.affinity[i][j] = partner(r.eval[i].task) == r.eval[j].task ? 1.0 : label_i == label_j ? 0.2 : -1.0;
        }
    for (auto& e : r.eval) e.loss = std::pow(0.9, static_cast<double>(round));
  };
  const auto split_of = [&](bool by_kind) {
    Harness h([by_kind](ExecutorOptions& o) { o.grouping.split_by_loss_kind = by_kind; });
    h.backend.rewrite = pairs_across_kinds;
    h.stop();  // all submitted before the executor plans: they merge
    std::map<std::string, std::string> task_of;
    for (const char* task : {"class", "parity", "reconstruct", "segment"}) task_of[h.submit(7, task)] = task;
    h.start();
    for (const auto& [id, task] : task_of) REQUIRE(h.endings.wait(id) == ActivityState::kSucceeded);
    auto first = h.store->list_rounds(task_of.begin()->first, {storage::Scope::all(), 0, 1});
    REQUIRE(first.ok());
    auto g = h.call("GET", "/v1/groups/" + json::parse(first->items.at(0).report_json)["group_id"].get<std::string>(),
                    "", h.token);
    REQUIRE(g.status == 200);
    const json split = json::parse(g.body).at("split");
    CHECK(split.at("by_loss_kind") == by_kind);
    std::set<std::set<std::string>> groups;
    for (const auto& ids : split.at("groups")) {
      std::set<std::string> tasks;
      for (const auto& id : ids) tasks.insert(task_of.at(id.get<std::string>()));
      groups.insert(tasks);
    }
    return groups;
  };
  using Tasks = std::set<std::set<std::string>>;
  CHECK(split_of(true) == Tasks{{"class", "parity"}, {"reconstruct", "segment"}});
  CHECK(split_of(false) == Tasks{{"class", "reconstruct"}, {"parity", "segment"}});
}
