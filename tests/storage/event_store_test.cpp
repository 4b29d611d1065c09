// The event part of the Store (storage/store.h, section "events", docs/events.md), on SqliteStore:
// which changes write which events, that a failed transaction writes none, scopes and filters,
// retention, and the listener that hears every committed event once, in order.
#include <catch2/catch.hpp>

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "core/clock.h"
#include "storage/sqlite_store.h"
#include "tests/storage/store_fixtures.h"
#include "tests/support/temp_dir.h"

using namespace mufl;
using namespace mufl::storage;
using mufl::testing::TempDir;
using nlohmann::json;

namespace {

Group group_of(const std::string& id, GroupPhase phase, const std::vector<std::string>& activities) {
  Group g;
  g.id = id;
  g.phase = phase;
  g.policy = "mufl";
  g.compat_key = "synthetic/mlp";
  g.config_json = "{}";
  g.consolidation_rounds = phase == GroupPhase::kConsolidating ? 1 : 0;
  for (const auto& a : activities) g.members.push_back({a, "", "class", 0, std::nullopt, {}});
  return g;
}

struct Fixture {
  ManualClock clock;
  std::unique_ptr<SqliteStore> store;

  explicit Fixture(const std::string& path = ":memory:") : store(open_store(path, clock)) {
    REQUIRE(store->create_tenant(make_tenant("ten_a", "name ten_a"), "ha").ok());
    REQUIRE(store->create_tenant(make_tenant("ten_b", "name ten_b"), "hb").ok());
  }
  void submit(const std::string& id, const std::string& tenant = "ten_a", int64_t now = 2000) {
    REQUIRE(store->submit_activity(queued_activity(id, tenant, 2, now), 100, std::nullopt).ok());
  }
  std::vector<StoredEvent> events(EventQuery q = {}) {
    auto r = store->list_events(q);
    REQUIRE(r.ok());
    return *r;
  }
  void plan(std::vector<Group> groups, int64_t now = 3000) {
    GroupPlan p;
    p.new_groups = std::move(groups);
    REQUIRE(store->apply_group_plan(p, now).ok());
  }
  Status record(const std::string& group_id, int64_t round, const std::vector<std::string>& reporting,
                const std::vector<std::string>& finished, int64_t now) {
    GroupRoundRecord r;
    r.group_id = group_id;
    r.round = round;
    r.heads = {{reporting.at(0), "class"}};
    r.checkpoint = {round, "/ckpt", "sha", 1};
    for (const auto& a : reporting)
      r.reports.emplace_back(a, json{{"round", round},
                                     {"group_id", group_id},
                                     {"metrics", {{"class", {{"loss", 0.5 / round}, {"accuracy", 0.9}}}}}}
                                    .dump());
    for (const auto& a : finished) r.finished.emplace_back(a, StoredFile{round, "/model", "msha", 2});
    return store->record_group_round(r, now);
  }
};

std::vector<std::string> types_of(const std::vector<StoredEvent>& es) {
  std::vector<std::string> out;
  for (const auto& e : es) out.push_back(e.type);
  return out;
}

json data(const StoredEvent& e) { return json::parse(e.data_json); }

}  // namespace

TEST_CASE("events: submit and cancel write activity.state events with increasing ids") {
  Fixture f;
  f.submit("act_1", "ten_a", 2000);
  REQUIRE(f.store->cancel_activity("act_1", Scope::all(), "not needed", 2500).ok());
  REQUIRE(f.store->cancel_activity("act_1", Scope::all(), "again", 2600).ok());  // terminal: no change

  auto es = f.events();
  REQUIRE(es.size() == 2);
  CHECK(es[0].id > 0);
  CHECK(es[1].id > es[0].id);
  CHECK(es[0].type == "activity.state");
  CHECK(es[0].time_unix_ms == 2000);
  CHECK(es[0].tenant_id == std::optional<std::string>("ten_a"));
  CHECK(es[0].activity_id == "act_1");
  CHECK(data(es[0]) == json{{"activity_id", "act_1"}, {"state", "queued"}, {"previous", nullptr}, {"reason", ""}});
  CHECK(es[1].time_unix_ms == 2500);
  CHECK(data(es[1]) ==
        json{{"activity_id", "act_1"}, {"state", "cancelled"}, {"previous", "queued"}, {"reason", "not needed"}});
}

TEST_CASE("events: a transaction that fails writes no event") {
  Fixture f;
  f.submit("act_1");
  const size_t before = f.events().size();
  SECTION("a submit over the quota") {
    CHECK(f.store->submit_activity(queued_activity("act_2", "ten_a", 2), 1, std::nullopt).status().code() ==
          Status::Code::kResourceExhausted);
  }
  SECTION("a submit that reuses an idempotency key with another body") {
    REQUIRE(f.store->submit_activity(queued_activity("act_2", "ten_a", 2), 100, IdempotencyKey{"k", "h1"}).ok());
    const size_t with_first = f.events().size();
    CHECK(f.store->submit_activity(queued_activity("act_3", "ten_a", 2), 100, IdempotencyKey{"k", "h2"}).status().code() ==
          Status::Code::kConflict);
    // The replay of the first one is no change either.
    CHECK(f.store->submit_activity(queued_activity("act_4", "ten_a", 2), 100, IdempotencyKey{"k", "h1"})->replayed);
    CHECK(f.events().size() == with_first);
    return;
  }
  SECTION("a group plan with a phase that is not live") {
    CHECK(f.store->apply_group_plan({{group_of("grp_1", GroupPhase::kDone, {"act_1"})}, {}}, 3000)
              .status()
              .is_invalid_argument());
  }
  SECTION("a split that forgets a live member rolls back the moves it had made") {
    f.submit("act_2");
    f.plan({group_of("grp_p", GroupPhase::kConsolidating, {"act_1", "act_2"})});
    const size_t planned = f.events().size();
    CHECK(f.store->split_group("grp_p", "{}", {group_of("grp_c", GroupPhase::kTraining, {"act_1"})}, 4000)
              .is_invalid_argument());
    CHECK(f.events().size() == planned);
    return;
  }
  CHECK(f.events().size() == before);
}

TEST_CASE("events: a group round writes round.finished per live member, then the success") {
  Fixture f;
  f.submit("act_1");
  f.submit("act_2");
  f.plan({group_of("grp_1", GroupPhase::kTraining, {"act_1", "act_2"})}, 3000);
  CHECK(types_of(f.events()) == std::vector<std::string>{"activity.state", "activity.state", "group.merged",
                                                         "activity.state", "group.merged", "activity.state"});
  REQUIRE(f.record("grp_1", 1, {"act_1", "act_2"}, {}, 4000).is_ok());
  REQUIRE(f.store->cancel_activity("act_2", Scope::all(), "stop", 4500).ok());
  REQUIRE(f.record("grp_1", 2, {"act_1", "act_2"}, {"act_1"}, 5000).is_ok());  // act_2 is no longer live

  auto es = f.events(EventQuery{Scope::all(), 0, std::nullopt, std::nullopt, {"round.finished"}, 500});
  REQUIRE(es.size() == 3);
  CHECK(es[0].activity_id == "act_1");
  CHECK(es[0].group_id == "grp_1");
  CHECK(es[0].time_unix_ms == 4000);
  CHECK(data(es[0]) == json{{"activity_id", "act_1"},
                            {"group_id", "grp_1"},
                            {"round", 1},
                            {"rounds", 2},
                            {"phase", "training"},
                            {"metrics", {{"loss", 0.5}, {"accuracy", 0.9}}}});
  CHECK(es[1].activity_id == "act_2");
  CHECK(data(es[2])["round"] == 2);

  // The last round's event comes before the state change it causes.
  auto act1 = f.events(EventQuery{Scope::all(), 0, std::nullopt, std::string("act_1"), {}, 500});
  REQUIRE(act1.size() >= 2);
  CHECK(act1[act1.size() - 2].type == "round.finished");
  CHECK(data(act1.back()) ==
        json{{"activity_id", "act_1"}, {"state", "succeeded"}, {"previous", "training"}, {"reason", ""}});
}

TEST_CASE("events: a plan writes group.merged and a split writes group.split per activity") {
  Fixture f;
  f.submit("act_1", "ten_a");
  f.submit("act_2", "ten_b");
  f.plan({group_of("grp_p", GroupPhase::kConsolidating, {"act_1", "act_2"})}, 3000);
  auto merged = f.events(EventQuery{Scope::all(), 0, std::nullopt, std::nullopt, {"group.merged"}, 500});
  REQUIRE(merged.size() == 2);
  CHECK(merged[0].tenant_id == std::optional<std::string>("ten_a"));
  CHECK(merged[1].tenant_id == std::optional<std::string>("ten_b"));
  CHECK(data(merged[1]) == json{{"group_id", "grp_p"}, {"activity_id", "act_2"}, {"phase", "consolidating"}});

  REQUIRE(f.record("grp_p", 1, {"act_1", "act_2"}, {}, 4000).is_ok());
  Group c1 = group_of("grp_c1", GroupPhase::kTraining, {"act_1"});
  Group c2 = group_of("grp_c2", GroupPhase::kTraining, {"act_2"});
  REQUIRE(f.store->split_group("grp_p", R"({"score":0.25})", {c1, c2}, 5000).is_ok());

  auto split = f.events(EventQuery{Scope::all(), 0, std::nullopt, std::nullopt, {"group.split"}, 500});
  REQUIRE(split.size() == 2);
  CHECK(data(split[0]) == json{{"group_id", "grp_p"}, {"activity_id", "act_1"}, {"into", "grp_c1"}, {"score", 0.25}});
  CHECK(split[1].tenant_id == std::optional<std::string>("ten_b"));
  CHECK(data(split[1])["into"] == "grp_c2");
  // Tenant b sees its activity's part of the split and nothing of a's.
  auto b = f.events(EventQuery{Scope::of("ten_b"), 0, std::nullopt, std::nullopt, {"group.split"}, 500});
  REQUIRE(b.size() == 1);
  CHECK(b[0].activity_id == "act_2");
  // The move to the child comes after the split event.
  auto act2 = f.events(EventQuery{Scope::all(), split[1].id, std::nullopt, std::string("act_2"), {}, 500});
  REQUIRE(act2.size() == 1);
  CHECK(data(act2[0])["state"] == "training");
  CHECK(act2[0].group_id == "grp_c2");
}

TEST_CASE("events: device changes are seen by every tenant, once per change") {
  Fixture f;
  f.submit("act_1", "ten_a");
  REQUIRE(f.store->set_device_drained("cpu:1", true, 3000).is_ok());
  REQUIRE(f.store->set_device_drained("cpu:1", true, 3100).is_ok());  // already drained
  REQUIRE(f.store->set_device_drained("cpu:1", false, 3200).is_ok());
  REQUIRE(f.store->set_device_drained("cpu:2", false, 3300).is_ok());  // was never drained

  auto es = f.events(EventQuery{Scope::of("ten_b"), 0, std::nullopt, std::nullopt, {}, 500});
  REQUIRE(es.size() == 2);
  CHECK(!es[0].tenant_id);
  CHECK(data(es[0]) == json{{"device", "cpu:1"}, {"state", "drained"}, {"reason", "drained by the admin"}});
  CHECK(data(es[1])["state"] == "idle");
  CHECK(f.events(EventQuery{Scope::of("ten_a"), 0, std::nullopt, std::nullopt, {}, 500}).size() == 3);
}

TEST_CASE("events: a group taking and letting go of a device writes its state, draining and drained included") {
  Fixture f;
  f.submit("act_1", "ten_a");
  f.plan({group_of("grp_1", GroupPhase::kTraining, {"act_1"})});
  const EventQuery devices{Scope::of("ten_b"), 0, std::nullopt, std::nullopt, {"device.changed"}, 500};
  REQUIRE(f.events(devices).empty());

  REQUIRE(*f.store->claim_group("grp_1", "cpu:0", false, 3000));
  REQUIRE(f.store->release_group("grp_1", 3100).is_ok());
  REQUIRE(*f.store->claim_next_group("cpu:0", false, 3200));
  REQUIRE(f.store->set_device_drained("cpu:0", true, 3300).is_ok());  // busy: it finishes its round
  REQUIRE(f.store->release_group("grp_1", 3400).is_ok());
  REQUIRE(f.store->set_device_drained("cpu:0", false, 3500).is_ok());

  std::vector<std::string> states;
  for (const StoredEvent& e : f.events(devices)) {
    CHECK(e.group_id.empty());  // another tenant's group is not named
    CHECK(data(e)["device"] == "cpu:0");
    states.push_back(data(e)["state"].get<std::string>() + " (" + data(e)["reason"].get<std::string>() + ")");
  }
  CHECK(states == std::vector<std::string>{"busy (took a group)", "idle (let its group go)", "busy (took a group)",
                                           "draining (drained by the admin)", "drained (let its group go)",
                                           "idle (resumed by the admin)"});
}

TEST_CASE("events: queries filter by scope, activity, type, id range and limit") {
  TempDir dir;
  Fixture f(dir.file("events.db"));  // a file: reads go through the reader pool
  f.submit("act_a1", "ten_a");
  f.submit("act_b1", "ten_b");
  f.submit("act_a2", "ten_a");
  REQUIRE(f.store->cancel_activity("act_a1", Scope::all(), "x", 2500).ok());
  auto all = f.events();
  REQUIRE(all.size() == 4);

  auto a = f.events(EventQuery{Scope::of("ten_a"), 0, std::nullopt, std::nullopt, {}, 500});
  REQUIRE(a.size() == 3);
  for (const auto& e : a) CHECK(e.tenant_id == std::optional<std::string>("ten_a"));
  auto b = f.events(EventQuery{Scope::of("ten_b"), 0, std::nullopt, std::nullopt, {}, 500});
  REQUIRE(b.size() == 1);
  CHECK(b[0].activity_id == "act_b1");

  CHECK(f.events(EventQuery{Scope::all(), 0, std::nullopt, std::string("act_a1"), {}, 500}).size() == 2);
  CHECK(f.events(EventQuery{Scope::all(), 0, std::nullopt, std::nullopt, {"group.split"}, 500}).empty());
  CHECK(f.events(EventQuery{Scope::all(), 0, std::nullopt, std::nullopt, {"group.split", "activity.state"}, 500})
            .size() == 4);

  auto after = f.events(EventQuery{Scope::all(), all[1].id, std::nullopt, std::nullopt, {}, 500});
  REQUIRE(after.size() == 2);
  CHECK(after[0].id == all[2].id);
  auto range = f.events(EventQuery{Scope::all(), all[0].id, all[2].id, std::nullopt, {}, 500});
  REQUIRE(range.size() == 2);
  CHECK(range.back().id == all[2].id);
  auto page = f.events(EventQuery{Scope::all(), 0, std::nullopt, std::nullopt, {}, 3});
  REQUIRE(page.size() == 3);
  CHECK(page.back().id == all[2].id);
}

TEST_CASE("events: the listener hears every committed event once and in order, from the id it was given") {
  Fixture f;
  f.submit("act_1");
  std::vector<StoredEvent> heard;
  auto last = f.store->set_event_listener([&](const std::vector<StoredEvent>& batch) {
    heard.insert(heard.end(), batch.begin(), batch.end());
  });
  REQUIRE(last.ok());
  CHECK(*last == f.events().back().id);

  f.submit("act_2");
  CHECK(f.store->submit_activity(queued_activity("act_3", "ten_a", 2), 1, std::nullopt).status().code() ==
        Status::Code::kResourceExhausted);  // rolled back: nothing heard
  REQUIRE(f.store->create_tenant(make_tenant("ten_c", "name ten_c"), "hc").ok());  // a commit without events
  f.plan({group_of("grp_1", GroupPhase::kTraining, {"act_1", "act_2"})});

  auto stored = f.events(EventQuery{Scope::all(), *last, std::nullopt, std::nullopt, {}, 500});
  REQUIRE(heard.size() == stored.size());
  REQUIRE(heard.size() == 5);  // act_2 submitted, then a merge and a state change for each
  for (size_t i = 0; i < heard.size(); ++i) {
    CHECK(heard[i].id == stored[i].id);
    CHECK(heard[i].data_json == stored[i].data_json);
  }

  REQUIRE(f.store->set_event_listener({}).ok());
  f.submit("act_4");
  CHECK(heard.size() == 5);
}

TEST_CASE("events: retention prunes old events and ids are never reused") {
  TempDir dir;
  int64_t last_id = 0;
  {
    Fixture f(dir.file("events.db"));
    f.submit("act_1", "ten_a", 2000);
    f.submit("act_2", "ten_a", 9000);
    auto pruned = f.store->prune_events(5000);
    REQUIRE(pruned.ok());
    CHECK(*pruned == 1);
    auto es = f.events();
    REQUIRE(es.size() == 1);
    CHECK(es[0].activity_id == "act_2");
    REQUIRE(f.store->prune_events(10000).ok());
    CHECK(f.events().empty());
    auto from = f.store->set_event_listener({});
    REQUIRE(from.ok());
    CHECK(*from == es[0].id);  // the newest id ever given, though its row is gone
    last_id = *from;
  }
  ManualClock clock;
  auto store = open_store(dir.file("events.db"), clock);  // reopened: the sequence carries on
  REQUIRE(store->submit_activity(queued_activity("act_3", "ten_a", 2), 100, std::nullopt).ok());
  auto es = store->list_events(EventQuery{});
  REQUIRE(es.ok());
  REQUIRE(es->size() == 1);
  CHECK((*es)[0].id > last_id);
}
