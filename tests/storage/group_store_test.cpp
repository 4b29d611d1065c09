// The group part of the Store (storage/store.h, section "groups"), on SqliteStore.
#include <catch2/catch.hpp>

#include <algorithm>
#include <iterator>
#include <string>
#include <vector>

#include "tests/storage/store_fixtures.h"
#include "core/clock.h"
#include "storage/sqlite_store.h"
#include "tests/support/temp_dir.h"

using namespace mufl;
using namespace mufl::storage;

namespace {

Activity make_activity(const std::string& id, const std::string& tenant, int64_t priority = 0) {
  Activity a;
  a.id = id;
  a.tenant_id = tenant;
  a.spec.name = "job " + id;
  a.spec.dataset = "synthetic";
  a.spec.task = "task_" + id;
  a.spec.rounds = 3;
  a.spec.priority = priority;
  a.created_unix_ms = a.updated_unix_ms = 2000;
  return a;
}

GroupMember member(const std::string& activity_id) {
  GroupMember m;
  m.activity_id = activity_id;
  m.task = "task_" + activity_id;
  return m;
}

Group new_group(const std::string& id, GroupPhase phase, int64_t consolidation_rounds,
                const std::vector<std::string>& activities) {
  Group g;
  g.id = id;
  g.phase = phase;
  g.policy = "mufl";
  g.compat_key = "synthetic/mlp";
  g.config_json = R"({"clients":32})";
  g.consolidation_rounds = consolidation_rounds;
  for (const auto& a : activities) g.members.push_back(member(a));
  return g;
}

// A store with tenant ten_a and queued activities `ids` (priorities 0 unless given).
struct Fixture {
  ManualClock clock;
  std::unique_ptr<SqliteStore> store = open_store(":memory:", clock);

  explicit Fixture(const std::vector<std::string>& ids = {}) {
    REQUIRE(store->create_tenant(make_tenant("ten_a", "alpha"), "ha").ok());
    REQUIRE(store->create_tenant(make_tenant("ten_b", "beta"), "hb").ok());
    for (const auto& id : ids) submit(id);
  }
  void submit(const std::string& id, const std::string& tenant = "ten_a", int64_t priority = 0) {
    REQUIRE(store->submit_activity(make_activity(id, tenant, priority), 100, std::nullopt).ok());
  }
  std::vector<std::string> plan(std::vector<Group> groups,
                                std::vector<std::pair<std::string, GroupMember>> joins = {}, int64_t now = 5000) {
    GroupPlan p;
    p.new_groups = std::move(groups);
    p.joins = std::move(joins);
    auto r = store->apply_group_plan(p, now);
    REQUIRE(r.ok());
    return *r;
  }
  Activity activity(const std::string& id) {
    auto a = store->get_activity(id, Scope::all());
    REQUIRE(a.ok());
    return *a;
  }
  Group group(const std::string& id) {
    auto g = store->get_group(id, Scope::all());
    REQUIRE(g.ok());
    return *g;
  }
  const GroupMember& member_of(const Group& g, const std::string& activity_id) {
    auto it = std::find_if(g.members.begin(), g.members.end(),
                           [&](const GroupMember& m) { return m.activity_id == activity_id; });
    REQUIRE(it != g.members.end());
    return *it;
  }
  Status record(const std::string& group_id, int64_t round, std::vector<std::string> reporting,
                std::vector<std::string> finished = {}, std::string affinity = "", int64_t now = 6000) {
    GroupRoundRecord r;
    r.group_id = group_id;
    r.round = round;
    r.heads = {{"act_x", "task_x"}};
    r.job_round_offset = 0;
    r.checkpoint = {round, "/ckpt/" + group_id + "-" + std::to_string(round), "sha-" + std::to_string(round), 10};
    for (const auto& a : reporting) r.reports.emplace_back(a, R"({"round":)" + std::to_string(round) + "}");
    for (const auto& a : finished) r.finished.emplace_back(a, StoredFile{round, "/models/" + a, "msha", 20});
    r.affinity_json = std::move(affinity);
    return store->record_group_round(r, now);
  }
};

std::vector<std::string> ids_of(const std::vector<Activity>& as) {
  std::vector<std::string> out;
  for (const auto& a : as) out.push_back(a.id);
  return out;
}

std::vector<std::string> ids_of(const std::vector<Group>& gs) {
  std::vector<std::string> out;
  for (const auto& g : gs) out.push_back(g.id);
  return out;
}

}  // namespace

TEST_CASE("groups: ungrouped queued activities are listed oldest first") {
  Fixture f({"act_1", "act_2", "act_3", "act_4"});
  REQUIRE(f.store->cancel_activity("act_2", Scope::all(), "no", 3000).ok());
  f.plan({new_group("grp_1", GroupPhase::kTraining, 0, {"act_3"})});
  auto q = f.store->list_ungrouped_queued();
  REQUIRE(q.ok());
  CHECK(ids_of(*q) == std::vector<std::string>{"act_1", "act_4"});
}

TEST_CASE("groups: a plan creates groups and moves their members, skipping activities no longer queued") {
  Fixture f({"act_1", "act_2", "act_3", "act_4"});
  REQUIRE(f.store->cancel_activity("act_3", Scope::all(), "no", 3000).ok());
  auto touched = f.plan({new_group("grp_1", GroupPhase::kConsolidating, 2, {"act_1", "act_3"}),
                         new_group("grp_2", GroupPhase::kTraining, 0, {"act_2"}),
                         new_group("grp_3", GroupPhase::kTraining, 0, {"act_3"}),    // only a cancelled one
                         new_group("grp_4", GroupPhase::kTraining, 0, {"act_1", "act_4"})},  // act_1 is taken
                        {}, 5000);
  CHECK(touched == std::vector<std::string>{"grp_1", "grp_2", "grp_4"});

  Group g1 = f.group("grp_1");
  CHECK(g1.phase == GroupPhase::kConsolidating);
  CHECK(g1.policy == "mufl");
  CHECK(g1.compat_key == "synthetic/mlp");
  CHECK(g1.config_json == R"({"clients":32})");
  CHECK(g1.consolidation_rounds == 2);
  CHECK(g1.round == 0);
  CHECK(g1.heads.empty());
  CHECK(g1.device.empty());
  CHECK(g1.created_unix_ms == 5000);
  REQUIRE(g1.members.size() == 1);
  CHECK(g1.members[0] == GroupMember{"act_1", "ten_a", "task_act_1", 0, std::nullopt, {}});
  CHECK(f.group("grp_4").members.size() == 1);
  CHECK(f.store->get_group("grp_3", Scope::all()).status().is_not_found());
  CHECK(f.group("grp_2").seq > g1.seq);

  Activity a1 = f.activity("act_1");
  CHECK(a1.state == ActivityState::kConsolidating);
  CHECK(a1.progress.started_unix_ms == 5000);
  CHECK(f.activity("act_2").state == ActivityState::kTraining);
  CHECK(f.activity("act_3").state == ActivityState::kCancelled);
  CHECK(f.activity("act_4").state == ActivityState::kTraining);
  CHECK(*f.store->activity_groups("act_1") == std::vector<std::string>{"grp_1"});
  CHECK(f.store->activity_groups("act_3")->empty());
  CHECK(f.store->activity_groups("act_nope").status().is_not_found());
  CHECK(f.store->list_ungrouped_queued()->empty());

  // A new group in a phase that is not live is refused, and nothing changes.
  f.submit("act_5");
  GroupPlan bad;
  bad.new_groups = {new_group("grp_5", GroupPhase::kTraining, 0, {"act_5"}),
                    new_group("grp_6", GroupPhase::kDone, 0, {"act_5"})};
  CHECK(f.store->apply_group_plan(bad, 6000).status().is_invalid_argument());
  CHECK(f.store->get_group("grp_5", Scope::all()).status().is_not_found());
  CHECK(f.activity("act_5").state == ActivityState::kQueued);
}

TEST_CASE("groups: joins go only to live groups before the end of their consolidation") {
  Fixture f({"act_1", "act_2", "act_3", "act_4", "act_5", "act_6", "act_7"});
  f.plan({new_group("grp_c", GroupPhase::kConsolidating, 2, {"act_1"}),
          new_group("grp_t", GroupPhase::kTraining, 0, {"act_2"})});
  REQUIRE(f.record("grp_c", 1, {"act_1"}).is_ok());

  auto touched = f.plan({}, {{"grp_c", member("act_3")}, {"grp_t", member("act_4")}, {"grp_nope", member("act_5")}});
  CHECK(touched == std::vector<std::string>{"grp_c"});
  Group c = f.group("grp_c");
  CHECK(f.member_of(c, "act_3").joined_round == 1);
  CHECK(f.activity("act_3").state == ActivityState::kConsolidating);
  CHECK(f.activity("act_4").state == ActivityState::kQueued);  // grp_t never consolidated
  CHECK(f.activity("act_5").state == ActivityState::kQueued);

  // At its consolidation_rounds the group takes no one more.
  REQUIRE(f.record("grp_c", 2, {"act_1", "act_3"}).is_ok());
  CHECK(f.plan({}, {{"grp_c", member("act_5")}}).empty());
  CHECK(f.activity("act_5").state == ActivityState::kQueued);
  CHECK(f.group("grp_c").members.size() == 2);

  // Nor does a group that ended; a cancelled activity joins nothing.
  f.plan({new_group("grp_e", GroupPhase::kConsolidating, 5, {"act_4"})});
  REQUIRE(f.store->finish_group("grp_e", GroupPhase::kFailed, "broken", 7000).is_ok());
  REQUIRE(f.store->cancel_activity("act_6", Scope::all(), "no", 7000).ok());
  f.plan({new_group("grp_f", GroupPhase::kConsolidating, 5, {"act_4"})});  // act_4 failed: not created
  CHECK(f.store->get_group("grp_f", Scope::all()).status().is_not_found());
  f.plan({new_group("grp_g", GroupPhase::kConsolidating, 5, {"act_7"})});
  CHECK(f.plan({}, {{"grp_e", member("act_5")}, {"grp_g", member("act_6")}}).empty());
  CHECK(f.activity("act_5").state == ActivityState::kQueued);
  CHECK(f.group("grp_e").members.size() == 1);
  CHECK(f.group("grp_g").members.size() == 1);
}

TEST_CASE("groups: claims take the highest priority first, then the oldest group") {
  Fixture f;
  f.submit("act_1", "ten_a", 0);
  f.submit("act_2", "ten_a", 5);
  f.submit("act_3", "ten_b", 5);
  f.submit("act_4", "ten_b", -1);
  f.submit("act_5", "ten_a", 9);
  f.plan({new_group("grp_1", GroupPhase::kTraining, 0, {"act_1"}),
          new_group("grp_2", GroupPhase::kTraining, 0, {"act_2", "act_4"}),
          new_group("grp_3", GroupPhase::kConsolidating, 3, {"act_3"}),
          new_group("grp_4", GroupPhase::kTraining, 0, {"act_5"})});
  // grp_4's only member was cancelled: a group without a live member is never claimed.
  REQUIRE(f.store->cancel_activity("act_5", Scope::all(), "no", 5500).ok());

  std::vector<std::string> order;
  for (int i = 0; i < 3; ++i) {
    auto g = f.store->claim_next_group("cpu:" + std::to_string(i), false, 6000);
    REQUIRE(g.ok());
    REQUIRE(g->has_value());
    CHECK((*g)->device == "cpu:" + std::to_string(i));
    CHECK_FALSE((*g)->members.empty());
    order.push_back((*g)->id);
  }
  CHECK(order == std::vector<std::string>{"grp_2", "grp_3", "grp_1"});
  auto none = f.store->claim_next_group("cpu:9", false, 6000);
  REQUIRE(none.ok());
  CHECK_FALSE(none->has_value());
  // The device shows on the members' activities.
  CHECK(f.activity("act_2").progress.device == "cpu:0");
  CHECK(f.activity("act_4").progress.device == "cpu:0");
  CHECK(f.activity("act_3").progress.device == "cpu:1");
  CHECK(f.activity("act_5").progress.device.empty());
}

TEST_CASE("groups: claimable groups list in claim order with their members, and one is claimed by id") {
  Fixture f;
  f.submit("act_1", "ten_a", 0);
  f.submit("act_2", "ten_a", 5);
  f.submit("act_3", "ten_b", 5);
  f.submit("act_4", "ten_b", -1);
  Activity dated = make_activity("act_5", "ten_b", 1);
  dated.spec.deadline_unix_ms = 1'900'000'000'000;
  dated.spec.rounds = 7;
  dated.spec.local_update = "fedema";  // its clients keep their models on this host
  REQUIRE(f.store->submit_activity(dated, 100, std::nullopt).ok());
  f.plan({new_group("grp_1", GroupPhase::kTraining, 0, {"act_1", "act_5"}),
          new_group("grp_2", GroupPhase::kTraining, 0, {"act_2", "act_4"}),
          new_group("grp_3", GroupPhase::kConsolidating, 3, {"act_3"})});

  auto list = f.store->list_claimable_groups(false);
  REQUIRE(list.ok());
  std::vector<std::string> ids;
  for (const auto& g : *list) ids.push_back(g.id);
  CHECK(ids == std::vector<std::string>{"grp_2", "grp_3", "grp_1"});  // as claim_next_group takes them
  const ClaimableGroup& g1 = list->back();
  CHECK(g1.priority == 1);
  CHECK(g1.round == 0);
  CHECK(g1.created_unix_ms == 5000);
  REQUIRE(g1.members.size() == 2);
  CHECK(g1.members[0].activity_id == "act_1");
  CHECK(g1.members[0].tenant_id == "ten_a");
  CHECK_FALSE(g1.members[0].deadline_unix_ms);
  CHECK(g1.members[0].rounds_left == 3);
  CHECK_FALSE(g1.members[0].keeps_client_state);
  CHECK(g1.members[1].activity_id == "act_5");
  CHECK(g1.members[1].tenant_id == "ten_b");
  CHECK(g1.members[1].deadline_unix_ms == 1'900'000'000'000);
  CHECK(g1.members[1].rounds_left == 7);
  CHECK(g1.members[1].keeps_client_state);
  CHECK(list->front().priority == 5);

  // A claim by id skips the order; a group taken already is no longer claimable.
  auto c = f.store->claim_group("grp_1", "cpu:0", false, 6000);
  REQUIRE(c.ok());
  REQUIRE(c->has_value());
  CHECK((*c)->id == "grp_1");
  CHECK((*c)->device == "cpu:0");
  CHECK(f.activity("act_5").progress.device == "cpu:0");
  auto taken = f.store->claim_group("grp_1", "cpu:1", false, 6000);
  REQUIRE(taken.ok());
  CHECK_FALSE(taken->has_value());
  CHECK(f.group("grp_1").device == "cpu:0");
  CHECK(f.store->claim_group("grp_nope", "cpu:1", false, 6000).status().is_not_found());
  auto rest = f.store->list_claimable_groups(false);
  REQUIRE(rest.ok());
  CHECK(rest->size() == 2);
  // Exclusive (sequential): nothing is claimable while a group has a device.
  CHECK(f.store->list_claimable_groups(true)->empty());
  CHECK_FALSE(f.store->claim_group("grp_2", "cpu:1", true, 6000)->has_value());
  REQUIRE(f.store->release_group("grp_1", 7000).is_ok());
  CHECK(f.store->list_claimable_groups(true)->size() == 3);
  // Done groups are not listed: cancelling grp_3's only member ends it.
  REQUIRE(f.store->cancel_activity("act_3", Scope::all(), "no", 7500).ok());
  auto after = f.store->list_claimable_groups(false);
  REQUIRE(after.ok());
  CHECK(after->size() == 2);
  CHECK_FALSE(f.store->claim_group("grp_3", "cpu:2", false, 8000)->has_value());
}

TEST_CASE("groups: an exclusive claim waits until no group has a device") {
  Fixture f({"act_1", "act_2", "act_3"});
  f.plan({new_group("grp_1", GroupPhase::kTraining, 0, {"act_1"}),
          new_group("grp_2", GroupPhase::kTraining, 0, {"act_2"}),
          new_group("grp_3", GroupPhase::kTraining, 0, {"act_3"})});
  auto first = f.store->claim_next_group("cuda:0", true, 6000);
  REQUIRE(first.ok());
  REQUIRE(first->has_value());
  CHECK((*first)->id == "grp_1");
  auto blocked = f.store->claim_next_group("cuda:0", true, 6000);
  REQUIRE(blocked.ok());
  CHECK_FALSE(blocked->has_value());

  auto shared = f.store->claim_next_group("cpu:0", false, 6000);  // a non-exclusive claim still works
  REQUIRE(shared.ok());
  REQUIRE(shared->has_value());
  CHECK((*shared)->id == "grp_2");

  REQUIRE(f.store->release_group("grp_1", 7000).is_ok());
  CHECK(f.group("grp_1").device.empty());
  CHECK(f.activity("act_1").progress.device.empty());
  CHECK_FALSE(f.store->claim_next_group("cuda:0", true, 7000)->has_value());  // grp_2 still runs
  REQUIRE(f.store->release_group("grp_2", 7000).is_ok());
  auto again = f.store->claim_next_group("cuda:0", true, 7000);
  REQUIRE(again.ok());
  REQUIRE(again->has_value());
  CHECK((*again)->id == "grp_1");
  CHECK(f.store->release_group("grp_nope", 7000).is_not_found());
}

TEST_CASE("groups: a recorded round updates progress, skips a cancelled member and finishes another") {
  Fixture f({"act_1", "act_2", "act_3"});
  f.plan({new_group("grp_1", GroupPhase::kConsolidating, 3, {"act_1", "act_2", "act_3"})});
  REQUIRE(f.store->claim_next_group("cpu:0", false, 5500)->has_value());
  REQUIRE(f.store->cancel_activity("act_3", Scope::all(), "stop", 5600).ok());

  REQUIRE(f.record("grp_1", 1, {"act_1", "act_2", "act_3"}, {"act_2"}, R"({"heads":["a"],"matrix":[[1]]})", 6000)
              .is_ok());
  Group g = f.group("grp_1");
  CHECK(g.round == 1);
  CHECK(g.heads == std::vector<GroupHead>{{"act_x", "task_x"}});
  CHECK(g.checkpoint_path == "/ckpt/grp_1-1");
  CHECK(g.checkpoint_sha256 == "sha-1");
  CHECK(g.updated_unix_ms == 6000);
  CHECK(g.device == "cpu:0");
  CHECK_FALSE(f.member_of(g, "act_1").left_round.has_value());
  CHECK(f.member_of(g, "act_2").left_round == 1);
  CHECK(f.member_of(g, "act_3").left_round == 0);  // cancelled before round 1
  CHECK(f.member_of(g, "act_1").left_reason.empty());
  CHECK(f.member_of(g, "act_2").left_reason == "finished");
  CHECK(f.member_of(g, "act_3").left_reason == "cancelled");

  Activity a1 = f.activity("act_1");
  CHECK(a1.state == ActivityState::kConsolidating);
  CHECK(a1.progress.rounds_done == 1);
  CHECK(a1.progress.last_round_json == R"({"round":1})");
  CHECK(a1.progress.device == "cpu:0");
  Activity a2 = f.activity("act_2");
  CHECK(a2.state == ActivityState::kSucceeded);
  CHECK(a2.progress.rounds_done == 1);
  CHECK(a2.progress.has_model);
  CHECK(a2.progress.finished_unix_ms == 6000);
  CHECK(a2.progress.device.empty());
  auto model = f.store->get_file("act_2", "model");
  REQUIRE(model.ok());
  REQUIRE(model->has_value());
  CHECK((*model)->path == "/models/act_2");
  Activity a3 = f.activity("act_3");
  CHECK(a3.state == ActivityState::kCancelled);
  CHECK(a3.progress.rounds_done == 0);
  CHECK(f.store->list_rounds("act_3", {Scope::all()})->items.empty());

  // The next round numbers each activity's rounds on from its own count.
  REQUIRE(f.record("grp_1", 2, {"act_1", "act_2"}, {}, R"({"round":2})", 7000).is_ok());
  auto page = f.store->list_rounds("act_1", {Scope::all()});
  REQUIRE(page.ok());
  const auto& rounds = page->items;
  REQUIRE(rounds.size() == 2);
  CHECK(rounds[1].round == 2);
  CHECK(rounds[1].report_json == R"({"round":2})");
  CHECK(f.store->list_rounds("act_2", {Scope::all()})->items.size() == 1);  // finished: no more rounds

  // A round replayed after a crash replaces its affinity row.
  REQUIRE(f.record("grp_1", 2, {}, {}, R"({"round":"2 again"})", 7100).is_ok());
  auto aff = f.store->list_affinity("grp_1");
  REQUIRE(aff.ok());
  REQUIRE(aff->size() == 2);
  CHECK((*aff)[0].round == 1);
  CHECK((*aff)[0].affinity_json == R"({"heads":["a"],"matrix":[[1]]})");
  CHECK((*aff)[1].affinity_json == R"({"round":"2 again"})");
  CHECK(f.store->list_affinity("grp_nope").status().is_not_found());

  CHECK(f.record("grp_nope", 1, {}).is_not_found());
  REQUIRE(f.store->finish_group("grp_1", GroupPhase::kFailed, "device lost", 8000).is_ok());
  CHECK(f.member_of(f.group("grp_1"), "act_1").left_reason == "failed");
  CHECK(f.record("grp_1", 3, {"act_1"}).code() == Status::Code::kFailedPrecondition);
}

TEST_CASE("groups: a split moves every live member to its child and refuses a plan that forgets one") {
  Fixture f({"act_1", "act_2", "act_3", "act_4"});
  f.plan({new_group("grp_p", GroupPhase::kConsolidating, 2, {"act_1", "act_2", "act_3", "act_4"})});
  REQUIRE(f.store->claim_next_group("cpu:0", false, 5500)->has_value());
  REQUIRE(f.record("grp_p", 1, {"act_1", "act_2", "act_3", "act_4"}).is_ok());
  REQUIRE(f.store->cancel_activity("act_4", Scope::all(), "no", 5800).ok());
  REQUIRE(f.record("grp_p", 2, {"act_1", "act_2", "act_3"}).is_ok());
  const Group before = f.group("grp_p");

  auto child = [](const std::string& id, std::vector<std::string> members) {
    Group c = new_group(id, GroupPhase::kTraining, 0, members);
    c.heads = {{members[0], "task_" + members[0]}};
    c.job_round_offset = 2;
    c.checkpoint_path = "/ckpt/" + id;
    c.checkpoint_sha256 = "sha-" + id;
    return c;
  };
  const std::string split = R"({"groups":[["act_1","act_3"],["act_2"]]})";
  SECTION("a plan that forgets a live member changes nothing") {
    CHECK(f.store->split_group("grp_p", split, {child("grp_c1", {"act_1"}), child("grp_c2", {"act_2"})}, 9000)
              .is_invalid_argument());
  }
  SECTION("a plan with a member that was never in the parent changes nothing") {
    f.submit("act_9");
    CHECK(f.store->split_group("grp_p", split,
                               {child("grp_c1", {"act_1", "act_3"}), child("grp_c2", {"act_2", "act_9"})}, 9000)
              .is_invalid_argument());
  }
  SECTION("a plan that names a member twice changes nothing") {
    CHECK(f.store->split_group("grp_p", split,
                               {child("grp_c1", {"act_1", "act_3"}), child("grp_c2", {"act_2", "act_3"})}, 9000)
              .is_invalid_argument());
  }
  SECTION("a plan with an empty child, or none, changes nothing") {
    Group empty = child("grp_c3", {"act_1"});
    empty.members.clear();
    CHECK(f.store->split_group("grp_p", split, {child("grp_c1", {"act_1", "act_3", "act_2"}), empty}, 9000)
              .is_invalid_argument());
    CHECK(f.store->split_group("grp_p", split, {}, 9000).is_invalid_argument());
  }
  SECTION("a child id that is taken changes nothing") {
    f.submit("act_9");
    f.plan({new_group("grp_taken", GroupPhase::kTraining, 0, {"act_9"})});
    CHECK(f.store->split_group("grp_p", split, {child("grp_taken", {"act_1", "act_3"}), child("grp_c2", {"act_2"})},
                               9000)
              .code() == Status::Code::kAlreadyExists);
  }
  CHECK(f.group("grp_p") == before);
  CHECK(f.store->get_group("grp_c1", Scope::all()).status().is_not_found());
  CHECK(f.store->get_group("grp_c2", Scope::all()).status().is_not_found());
  CHECK(f.activity("act_1").state == ActivityState::kConsolidating);
  CHECK(f.activity("act_1").progress.device == "cpu:0");

  // act_4 left the parent (cancelled) after the caller read it: it is not moved, and a child
  // holding only it is not created.
  REQUIRE(f.store->split_group("grp_p", split,
                               {child("grp_c1", {"act_1", "act_3"}), child("grp_c2", {"act_2"}),
                                child("grp_c3", {"act_4"})},
                               9000)
              .is_ok());
  CHECK(f.store->get_group("grp_c3", Scope::all()).status().is_not_found());
  CHECK(f.activity("act_4").state == ActivityState::kCancelled);
  Group p = f.group("grp_p");
  CHECK(p.phase == GroupPhase::kSplit);
  CHECK(p.split_json == split);
  CHECK(p.device.empty());
  CHECK(f.member_of(p, "act_1").left_round == 2);
  CHECK(f.member_of(p, "act_2").left_round == 2);
  CHECK(f.member_of(p, "act_4").left_round == 1);  // cancelled earlier
  CHECK(f.member_of(p, "act_1").left_reason == "split");
  CHECK(f.member_of(p, "act_4").left_reason == "cancelled");

  Group c1 = f.group("grp_c1");
  CHECK(c1.phase == GroupPhase::kTraining);
  CHECK(c1.parent_id == "grp_p");
  CHECK(c1.round == 2);
  CHECK(c1.heads == std::vector<GroupHead>{{"act_1", "task_act_1"}});
  CHECK(c1.job_round_offset == 2);
  CHECK(c1.checkpoint_path == "/ckpt/grp_c1");
  CHECK(c1.checkpoint_sha256 == "sha-grp_c1");
  CHECK(c1.device.empty());
  CHECK(c1.seq > p.seq);
  REQUIRE(c1.members.size() == 2);
  CHECK(c1.members[0] == GroupMember{"act_1", "ten_a", "task_act_1", 2, std::nullopt, {}});
  CHECK(c1.members[1].activity_id == "act_3");
  CHECK(f.group("grp_c2").members.size() == 1);

  for (const char* id : {"act_1", "act_2", "act_3"}) {
    Activity a = f.activity(id);
    CHECK(a.state == ActivityState::kTraining);
    CHECK(a.progress.device.empty());
  }
  CHECK(*f.store->activity_groups("act_1") == std::vector<std::string>{"grp_p", "grp_c1"});
  CHECK(*f.store->activity_groups("act_2") == std::vector<std::string>{"grp_p", "grp_c2"});

  // The children carry on: their rounds count on from the parent's.
  REQUIRE(f.record("grp_c1", 3, {"act_1", "act_3"}).is_ok());
  CHECK(f.activity("act_1").progress.rounds_done == 3);
  CHECK(f.store->split_group("grp_p", split, {child("grp_c9", {"act_1"})}, 9500).code() ==
        Status::Code::kFailedPrecondition);
  CHECK(f.store->split_group("grp_nope", split, {child("grp_c9", {"act_1"})}, 9500).is_not_found());
}

TEST_CASE("groups: ending consolidation turns the group and its members to training in place") {
  Fixture f({"act_1", "act_2"});
  f.plan({new_group("grp_1", GroupPhase::kConsolidating, 2, {"act_1", "act_2"})});
  REQUIRE(f.store->end_consolidation("grp_1", R"({"groups":[["act_1","act_2"]]})", 9000).is_ok());
  Group g = f.group("grp_1");
  CHECK(g.phase == GroupPhase::kTraining);
  CHECK(g.split_json == R"({"groups":[["act_1","act_2"]]})");
  CHECK(f.activity("act_1").state == ActivityState::kTraining);
  CHECK(f.activity("act_2").state == ActivityState::kTraining);
  CHECK(f.store->end_consolidation("grp_1", "{}", 9100).code() == Status::Code::kFailedPrecondition);
  CHECK(f.store->end_consolidation("grp_nope", "{}", 9100).is_not_found());
}

TEST_CASE("groups: a failed group fails its live members, done needs none left") {
  Fixture f({"act_1", "act_2", "act_3"});
  f.plan({new_group("grp_1", GroupPhase::kTraining, 0, {"act_1", "act_2"}),
          new_group("grp_2", GroupPhase::kTraining, 0, {"act_3"})});
  REQUIRE(f.store->claim_next_group("cpu:0", false, 5500)->has_value());
  REQUIRE(f.record("grp_1", 1, {"act_1", "act_2"}, {"act_2"}).is_ok());

  CHECK(f.store->finish_group("grp_1", GroupPhase::kDone, "", 7000).code() == Status::Code::kFailedPrecondition);
  CHECK(f.store->finish_group("grp_1", GroupPhase::kTraining, "", 7000).is_invalid_argument());
  REQUIRE(f.store->finish_group("grp_1", GroupPhase::kFailed, "out of memory", 7000).is_ok());
  Group g = f.group("grp_1");
  CHECK(g.phase == GroupPhase::kFailed);
  CHECK(g.reason == "out of memory");
  CHECK(g.device.empty());
  CHECK(f.member_of(g, "act_1").left_round == 1);
  Activity a1 = f.activity("act_1");
  CHECK(a1.state == ActivityState::kFailed);
  CHECK(a1.state_reason == "out of memory");
  CHECK(a1.progress.finished_unix_ms == 7000);
  CHECK(a1.progress.device.empty());
  CHECK(f.activity("act_2").state == ActivityState::kSucceeded);  // it had finished
  CHECK(f.store->finish_group("grp_1", GroupPhase::kDone, "", 7100).code() == Status::Code::kFailedPrecondition);

  REQUIRE(f.record("grp_2", 1, {"act_3"}, {"act_3"}).is_ok());
  REQUIRE(f.store->finish_group("grp_2", GroupPhase::kDone, "ignored", 7200).is_ok());
  CHECK(f.group("grp_2").phase == GroupPhase::kDone);
  CHECK(f.group("grp_2").reason.empty());
  CHECK(f.store->finish_group("grp_nope", GroupPhase::kDone, "", 7200).is_not_found());
}

TEST_CASE("groups: a tenant sees only the groups one of its activities is or was in") {
  Fixture f;
  f.submit("act_a1", "ten_a");
  f.submit("act_b1", "ten_b");
  f.submit("act_a2", "ten_a");
  f.submit("act_a3", "ten_a");
  f.plan({new_group("grp_1", GroupPhase::kConsolidating, 2, {"act_a1", "act_b1"}),
          new_group("grp_2", GroupPhase::kTraining, 0, {"act_a2"}),
          new_group("grp_3", GroupPhase::kTraining, 0, {"act_a3"})});
  REQUIRE(f.store->cancel_activity("act_b1", Scope::all(), "no", 5500).ok());

  auto seen_by_b = f.store->get_group("grp_1", Scope::of("ten_b"));
  REQUIRE(seen_by_b.ok());
  CHECK(seen_by_b->members.size() == 2);  // complete: the API hides other tenants' members
  CHECK(f.store->get_group("grp_2", Scope::of("ten_b")).status().is_not_found());
  CHECK(f.store->get_group("grp_2", Scope::of("ten_a")).ok());

  GroupQuery qb;
  qb.scope = Scope::of("ten_b");
  auto pb = f.store->list_groups(qb);
  REQUIRE(pb.ok());
  CHECK(ids_of(pb->items) == std::vector<std::string>{"grp_1"});
  CHECK_FALSE(pb->next_before_seq.has_value());

  GroupQuery q;
  q.limit = 2;
  auto p1 = f.store->list_groups(q);
  REQUIRE(p1.ok());
  CHECK(ids_of(p1->items) == std::vector<std::string>{"grp_3", "grp_2"});
  REQUIRE(p1->next_before_seq.has_value());
  CHECK(p1->items[0].members.size() == 1);
  q.before_seq = p1->next_before_seq;
  auto p2 = f.store->list_groups(q);
  REQUIRE(p2.ok());
  CHECK(ids_of(p2->items) == std::vector<std::string>{"grp_1"});
  CHECK_FALSE(p2->next_before_seq.has_value());

  GroupQuery by_phase;
  by_phase.phase = GroupPhase::kConsolidating;
  CHECK(ids_of(f.store->list_groups(by_phase)->items) == std::vector<std::string>{"grp_1"});

  auto counts = f.store->count_groups_by_phase();
  REQUIRE(counts.ok());
  CHECK(counts->size() == std::size(kAllGroupPhases));
  for (auto [phase, n] : *counts) {
    if (phase == GroupPhase::kConsolidating) CHECK(n == 1);
    else if (phase == GroupPhase::kTraining) CHECK(n == 2);
    else CHECK(n == 0);
  }
}

TEST_CASE("groups: cancelling a member leaves its group at the group's round") {
  Fixture f({"act_1", "act_2", "act_3", "act_4"});
  f.plan({new_group("grp_run", GroupPhase::kTraining, 0, {"act_1", "act_2"}),
          new_group("grp_wait", GroupPhase::kTraining, 0, {"act_3", "act_4"})});
  REQUIRE(f.store->claim_next_group("cpu:0", false, 5500)->has_value());  // grp_run
  REQUIRE(f.record("grp_run", 1, {"act_1", "act_2"}).is_ok());
  REQUIRE(f.record("grp_run", 2, {"act_1", "act_2"}).is_ok());

  auto c = f.store->cancel_activity("act_1", Scope::of("ten_a"), "no longer needed", 7000);
  REQUIRE(c.ok());
  CHECK(c->progress.device.empty());
  CHECK(f.member_of(f.group("grp_run"), "act_1").left_round == 2);
  CHECK_FALSE(f.member_of(f.group("grp_run"), "act_2").left_round.has_value());

  // A running group that lost every member stays live until its executor ends it.
  REQUIRE(f.store->cancel_activity("act_2", Scope::all(), "x", 7100).ok());
  CHECK(f.group("grp_run").phase == GroupPhase::kTraining);
  REQUIRE(f.store->finish_group("grp_run", GroupPhase::kDone, "", 7200).is_ok());

  // A waiting group that loses every member is done at once (nothing would claim it).
  REQUIRE(f.store->cancel_activity("act_3", Scope::all(), "x", 7300).ok());
  CHECK(f.group("grp_wait").phase == GroupPhase::kTraining);
  REQUIRE(f.store->delete_tenant("ten_a", 7400).is_ok());  // cancels act_4
  Group w = f.group("grp_wait");
  CHECK(w.phase == GroupPhase::kDone);
  CHECK(f.member_of(w, "act_4").left_round == 0);
  CHECK(f.member_of(w, "act_4").left_reason == "cancelled");
  CHECK(f.activity("act_4").state == ActivityState::kCancelled);
}

TEST_CASE("groups: requeue_interrupted clears every device and keeps grouped activities' states") {
  testing::TempDir dir;
  ManualClock clock;
  {
    auto store = open_store(dir.file("g.db"), clock);
    REQUIRE(store->create_tenant(make_tenant("ten_a", "alpha"), "ha").ok());
    for (const char* id : {"act_1", "act_2", "act_3", "act_4"})
      REQUIRE(store->submit_activity(make_activity(id, "ten_a"), 100, std::nullopt).ok());
    GroupPlan p;
    p.new_groups = {new_group("grp_1", GroupPhase::kConsolidating, 3, {"act_1", "act_2"}),
                    new_group("grp_2", GroupPhase::kTraining, 0, {"act_3"})};
    REQUIRE(store->apply_group_plan(p, 5000).ok());
    REQUIRE(store->claim_next_group("cpu:0", false, 5100)->has_value());
    REQUIRE(store->claim_next_group("cpu:1", false, 5100)->has_value());
  }
  auto store = open_store(dir.file("g.db"), clock);  // a restart
  auto n = store->requeue_interrupted(9000);
  REQUIRE(n.ok());
  CHECK(*n == 0);  // every training activity is in a group (migration 3 handles older rows)
  for (const char* gid : {"grp_1", "grp_2"}) {
    auto g = store->get_group(gid, Scope::all());
    REQUIRE(g.ok());
    CHECK(g->device.empty());
    CHECK(is_live(g->phase));
  }
  auto a1 = store->get_activity("act_1", Scope::all());
  CHECK(a1->state == ActivityState::kConsolidating);
  CHECK(a1->progress.device.empty());
  auto a3 = store->get_activity("act_3", Scope::all());
  CHECK(a3->state == ActivityState::kTraining);
  CHECK(a3->progress.device.empty());
  auto a4 = store->get_activity("act_4", Scope::all());
  CHECK(a4->state == ActivityState::kQueued);
  CHECK(a4->progress.device.empty());
  CHECK(ids_of(*store->list_ungrouped_queued()) == std::vector<std::string>{"act_4"});
  // Both groups can be claimed again, even exclusively.
  auto again = store->claim_next_group("cpu:0", true, 9100);
  REQUIRE(again.ok());
  CHECK(again->has_value());
}

TEST_CASE("groups: the quota counts active activities through every path that ends one") {
  Fixture f;
  auto submit = [&](const std::string& id, int64_t max_active) {
    return f.store->submit_activity(make_activity(id, "ten_a"), max_active, std::nullopt);
  };
  for (const char* id : {"act_1", "act_2", "act_3"}) REQUIRE(submit(id, 3).ok());
  CHECK(submit("act_4", 3).status().code() == Status::Code::kResourceExhausted);
  // Cancel one: room for one more.
  REQUIRE(f.store->cancel_activity("act_1", Scope::all(), "test", 3000).ok());
  REQUIRE(submit("act_4", 3).ok());
  CHECK(submit("act_5", 3).status().code() == Status::Code::kResourceExhausted);
  // Training in a group keeps them active; finishing one with its model frees a place.
  GroupPlan p;
  p.new_groups = {new_group("grp_1", GroupPhase::kTraining, 0, {"act_2", "act_3"})};
  REQUIRE(f.store->apply_group_plan(p, 4000).ok());
  CHECK(submit("act_5", 3).status().code() == Status::Code::kResourceExhausted);
  REQUIRE(f.store->claim_next_group("cpu:0", false, 4100)->has_value());
  GroupRoundRecord r;
  r.group_id = "grp_1";
  r.round = 1;
  r.heads = {{"act_2", "task_act_2"}, {"act_3", "task_act_3"}};
  r.checkpoint = {1, "/tmp/ckpt", "00", 1};
  r.reports = {{"act_2", "{}"}, {"act_3", "{}"}};
  r.finished = {{"act_2", StoredFile{1, "/tmp/model", "00", 1}}};
  REQUIRE(f.store->record_group_round(r, 4200).is_ok());
  REQUIRE(submit("act_5", 3).ok());
  // A failed group fails its live member: another place.
  REQUIRE(f.store->finish_group("grp_1", GroupPhase::kFailed, "boom", 4300).is_ok());
  CHECK(f.store->get_activity("act_3", Scope::all())->state == ActivityState::kFailed);
  REQUIRE(submit("act_6", 3).ok());
  CHECK(submit("act_7", 3).status().code() == Status::Code::kResourceExhausted);
  // Deleting the tenant cancels the rest; its count does not go negative or stale.
  REQUIRE(f.store->delete_tenant("ten_a", 5000).is_ok());
}
