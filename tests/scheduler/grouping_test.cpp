#include <catch2/catch.hpp>

#include "scheduler/grouping/grouping.h"

using namespace mufl;
using namespace mufl::scheduler;

namespace {

Activity act(const std::string& id, int64_t created_ms, const std::string& task = "class", bool merge = true,
             const std::string& tenant = "ten_a") {
  Activity a;
  a.id = id;
  a.tenant_id = tenant;
  a.created_unix_ms = created_ms;
  a.spec.name = id;
  a.spec.dataset = "synthetic";
  a.spec.task = task;
  a.spec.rounds = 8;
  a.spec.merge = merge;
  return a;
}

std::function<std::string()> ids() {
  auto n = std::make_shared<int>(0);
  return [n] { return "grp_" + std::to_string(++*n); };
}

GroupingOptions with(GroupingPolicy p, double window = 0) {
  GroupingOptions o;
  o.policy = p;
  o.merge_window_seconds = window;
  return o;
}

}  // namespace

TEST_CASE("grouping: policy names round-trip", "[grouping]") {
  for (auto p : {GroupingPolicy::kMufl, GroupingPolicy::kAllInOne, GroupingPolicy::kIndependent,
                 GroupingPolicy::kSequential})
    CHECK(parse_grouping_policy(to_string(p)) == p);
  CHECK_FALSE(parse_grouping_policy("MUFL"));
}

TEST_CASE("grouping: mufl merges compatible activities and keeps others apart", "[grouping]") {
  auto d = plan_groups({act("a", 0), act("b", 10, "segment"), act("c", 20, "class", false)}, {},
                       with(GroupingPolicy::kMufl), 1000, ids());
  REQUIRE(d.plan.new_groups.size() == 2);
  // c (merge: false) is alone and trains to the end; a and b merge and consolidate.
  const Group& alone = d.plan.new_groups[0];
  CHECK(alone.members.size() == 1);
  CHECK(alone.members[0].activity_id == "c");
  CHECK(alone.phase == GroupPhase::kTraining);
  const Group& merged = d.plan.new_groups[1];
  REQUIRE(merged.members.size() == 2);
  CHECK(merged.members[0].activity_id == "a");
  CHECK(merged.members[1].task == "segment");
  CHECK(merged.phase == GroupPhase::kConsolidating);
  CHECK(merged.consolidation_rounds == 2);  // ceil(0.15 · 8), the default fraction
  CHECK(merged.policy == "mufl");

  // Another data set, seed or local setting is another group.
  auto other = act("d", 0);
  other.spec.seed = 9;
  auto e = act("e", 0);
  e.spec.batch_size = 64;
  auto d2 = plan_groups({act("a", 0), other, e}, {}, with(GroupingPolicy::kMufl), 1000, ids());
  CHECK(d2.plan.new_groups.size() == 3);
  // Rounds may differ: consolidation follows the longest.
  auto longer = act("f", 0);
  longer.spec.rounds = 20;
  auto d3 = plan_groups({act("a", 0), longer}, {}, with(GroupingPolicy::kMufl), 1000, ids());
  REQUIRE(d3.plan.new_groups.size() == 1);
  CHECK(d3.plan.new_groups[0].consolidation_rounds == 3);  // ceil(0.15 · 20): the longest member
}

TEST_CASE("grouping: the merge window holds a group until its oldest member has waited", "[grouping]") {
  auto o = with(GroupingPolicy::kMufl, 2.0);
  auto early = plan_groups({act("a", 1000), act("b", 1500)}, {}, o, 2500, ids());
  CHECK(early.plan.new_groups.empty());
  REQUIRE(early.replan_at_unix_ms);
  CHECK(*early.replan_at_unix_ms == 3000);
  // At the end of a's window: every compatible activity waiting then forms the group.
  auto later = plan_groups({act("a", 1000), act("b", 1500), act("c", 3500)}, {}, o, 3000, ids());
  REQUIRE(later.plan.new_groups.size() == 1);
  CHECK(later.plan.new_groups[0].members.size() == 3);
  CHECK_FALSE(later.replan_at_unix_ms);
  // An incompatible one keeps its own window.
  auto other = act("d", 2500);
  other.spec.seed = 5;
  auto mixed = plan_groups({act("a", 1000), other}, {}, o, 3000, ids());
  CHECK(mixed.plan.new_groups.size() == 1);
  REQUIRE(mixed.replan_at_unix_ms);
  CHECK(*mixed.replan_at_unix_ms == 4500);
}

TEST_CASE("grouping: a late arrival joins a compatible group still consolidating", "[grouping]") {
  auto o = with(GroupingPolicy::kMufl);
  Group live;
  live.id = "grp_live";
  live.seq = 1;
  live.phase = GroupPhase::kConsolidating;
  live.policy = "mufl";
  live.compat_key = compat_key(act("x", 0), o);
  live.consolidation_rounds = 4;
  live.round = 2;
  auto d = plan_groups({act("late", 5000, "edges")}, {live}, o, 6000, ids());
  CHECK(d.plan.new_groups.empty());
  REQUIRE(d.plan.joins.size() == 1);
  CHECK(d.plan.joins[0].first == "grp_live");
  CHECK(d.plan.joins[0].second.joined_round == 2);
  CHECK(d.plan.joins[0].second.task == "edges");
  // Past its consolidation: a new group instead.
  live.round = 4;
  auto d2 = plan_groups({act("late", 5000, "edges")}, {live}, o, 6000, ids());
  CHECK(d2.plan.joins.empty());
  CHECK(d2.plan.new_groups.size() == 1);
}

TEST_CASE("grouping: an activity with merge false trains alone, and nothing joins its group later", "[grouping]") {
  for (GroupingPolicy p : {GroupingPolicy::kMufl, GroupingPolicy::kAllInOne}) {
    auto o = with(p);
    auto first = plan_groups({act("solo", 0, "parity", /*merge=*/false)}, {}, o, 1000, ids());
    REQUIRE(first.plan.new_groups.size() == 1);
    Group solo = first.plan.new_groups[0];
    solo.seq = 1;
    CHECK(solo.phase == GroupPhase::kTraining);
    CHECK(solo.compat_key != compat_key(act("solo", 0, "parity"), o));
    // A compatible activity that may merge arrives while the solo group is at round 0.
    auto later = plan_groups({act("late", 2000, "class")}, {solo}, o, 3000, ids());
    CHECK(later.plan.joins.empty());
    REQUIRE(later.plan.new_groups.size() == 1);
    CHECK(later.plan.new_groups[0].members.size() == 1);
  }
}

TEST_CASE("grouping: independent and sequential never merge, all_in_one never consolidates", "[grouping]") {
  for (auto p : {GroupingPolicy::kIndependent, GroupingPolicy::kSequential}) {
    auto d = plan_groups({act("a", 0), act("b", 0)}, {}, with(p), 1000, ids());
    REQUIRE(d.plan.new_groups.size() == 2);
    for (const auto& g : d.plan.new_groups) {
      CHECK(g.members.size() == 1);
      CHECK(g.phase == GroupPhase::kTraining);
    }
  }
  auto d = plan_groups({act("a", 0), act("b", 0)}, {}, with(GroupingPolicy::kAllInOne), 1000, ids());
  REQUIRE(d.plan.new_groups.size() == 1);
  CHECK(d.plan.new_groups[0].members.size() == 2);
  CHECK(d.plan.new_groups[0].phase == GroupPhase::kTraining);
}

TEST_CASE("grouping: tenants merge only when the deployment allows it", "[grouping]") {
  auto o = with(GroupingPolicy::kMufl);
  auto both = plan_groups({act("a", 0), act("b", 0, "class", true, "ten_b")}, {}, o, 1000, ids());
  CHECK(both.plan.new_groups.size() == 1);
  o.merge_across_tenants = false;
  auto apart = plan_groups({act("a", 0), act("b", 0, "class", true, "ten_b")}, {}, o, 1000, ids());
  CHECK(apart.plan.new_groups.size() == 2);
}

TEST_CASE("grouping: label and dense tasks merge only when the deployment allows it", "[grouping]") {
  auto o = with(GroupingPolicy::kMufl);
  const std::vector<Activity> four = {act("a", 0, "class"), act("b", 0, "segment"), act("c", 0, "parity"),
                                      act("d", 0, "reconstruct")};
  CHECK(plan_groups(four, {}, o, 1000, ids()).plan.new_groups.size() == 1);
  o.merge_loss_kinds = false;
  auto apart = plan_groups(four, {}, o, 1000, ids());
  REQUIRE(apart.plan.new_groups.size() == 2);
  for (const auto& g : apart.plan.new_groups) {
    REQUIRE(g.members.size() == 2);
    const bool label = g.members[0].task == "class";
    CHECK(g.members[1].task == (label ? "parity" : "reconstruct"));
  }
  CHECK(compat_key(four[0], o) == compat_key(four[2], o));
  CHECK(compat_key(four[0], o) != compat_key(four[1], o));
}

TEST_CASE("grouping: consolidation rounds", "[grouping]") {
  CHECK(consolidation_rounds(20, 0.25) == 5);
  CHECK(consolidation_rounds(6, 0.34) == 3);
  CHECK(consolidation_rounds(1, 0.25) == 1);
  CHECK(consolidation_rounds(10, 1.0) == 10);
}

TEST_CASE("grouping: a group holds at most max_members activities", "[grouping]") {
  auto o = with(GroupingPolicy::kMufl);
  o.max_members = 2;
  auto d = plan_groups({act("a", 0), act("b", 0), act("c", 0), act("d", 0), act("e", 0)}, {}, o, 1000, ids());
  REQUIRE(d.plan.new_groups.size() == 3);
  CHECK(d.plan.new_groups[0].members.size() == 2);
  CHECK(d.plan.new_groups[1].members.size() == 2);
  CHECK(d.plan.new_groups[2].members.size() == 1);
  // A full live group takes no join; one with room takes one, then is full.
  Group live;
  live.id = "grp_live";
  live.phase = GroupPhase::kConsolidating;
  live.policy = "mufl";
  live.compat_key = compat_key(act("x", 0), o);
  live.consolidation_rounds = 4;
  live.members = {GroupMember{"x", "ten_a", "class", 0, std::nullopt, {}}};
  auto j = plan_groups({act("f", 0), act("g", 0)}, {live}, o, 1000, ids());
  REQUIRE(j.plan.joins.size() == 1);
  CHECK(j.plan.joins[0].second.activity_id == "f");
  REQUIRE(j.plan.new_groups.size() == 1);
  CHECK(j.plan.new_groups[0].members[0].activity_id == "g");
}

TEST_CASE("grouping: members that disagree on local_update or its lambda are not compatible", "[grouping]") {
  auto o = with(GroupingPolicy::kMufl);
  const Activity plain = act("a", 0);
  Activity ema = act("b", 0, "parity");
  ema.spec.local_update = "fedema";
  Activity ema2 = act("c", 0, "edges");
  ema2.spec.local_update = "fedema";
  CHECK(compat_key(plain, o) != compat_key(ema, o));
  CHECK(compat_key(ema, o) == compat_key(ema2, o));  // both "auto"
  ema2.spec.ema_lambda = 0.5;
  CHECK(compat_key(ema, o) != compat_key(ema2, o));
  // FedAvg's key is what it was before the option existed.
  CHECK(!shared_config(plain.spec).contains("local_update"));
  CHECK(shared_config(ema.spec).at("local_update") == "fedema");
}

TEST_CASE("grouping: ssl activities merge with each other only, other keys stay as they were", "[grouping]") {
  auto d = plan_groups({act("a", 0, "ssl"), act("b", 10, "class"), act("c", 20, "ssl"), act("d", 30, "segment")}, {},
                       with(GroupingPolicy::kMufl), 1000, ids());
  REQUIRE(d.plan.new_groups.size() == 2);
  std::vector<std::string> ssl_members, other_members;
  for (const auto& g : d.plan.new_groups) {
    const bool ssl = g.members.front().task == "ssl";
    for (const auto& m : g.members) (ssl ? ssl_members : other_members).push_back(m.activity_id);
  }
  CHECK(ssl_members == std::vector<std::string>{"a", "c"});
  CHECK(other_members == std::vector<std::string>{"b", "d"});
  // The key is added only for ssl: a class activity's shared config has no such entry.
  CHECK_FALSE(shared_config(act("b", 0).spec).contains("input"));
  CHECK(shared_config(act("a", 0, "ssl").spec).at("input") == "paired_views");
}

TEST_CASE("grouping: clustered activities merge with those that cluster alike, never with others", "[grouping]") {
  Activity a = act("a", 0);
  a.spec.client_clusters = 3;
  a.spec.cluster_round = 2;
  Activity b = act("b", 10, "parity");
  b.spec.client_clusters = 3;
  b.spec.cluster_round = 2;
  Activity other_k = act("k", 15, "edges");  // clusters otherwise: another key
  other_k.spec.client_clusters = 2;
  other_k.spec.cluster_round = 2;
  auto d = plan_groups({a, b, other_k, act("c", 20, "segment")}, {}, with(GroupingPolicy::kMufl), 1000, ids());
  REQUIRE(d.plan.new_groups.size() == 3);
  const Group* merged = nullptr;
  for (const auto& g : d.plan.new_groups)
    if (g.members.size() == 2) merged = &g;
  REQUIRE(merged);
  CHECK(merged->members[0].activity_id == "a");
  CHECK(merged->members[1].activity_id == "b");
  CHECK(merged->phase == GroupPhase::kConsolidating);
  const auto config = nlohmann::json::parse(merged->config_json);  // what the executor reads
  CHECK(config.at("client_clusters") == 3);
  CHECK(config.at("cluster_round") == 2);
  for (const auto& g : d.plan.new_groups)
    if (&g != merged) CHECK(g.members.size() == 1);  // k = 2 and the unclustered one: alone
  auto o = with(GroupingPolicy::kMufl);
  CHECK(compat_key(a, o) != compat_key(act("a", 0), o));
  CHECK(compat_key(a, o) != compat_key(other_k, o));
  // Without clustering the key is what it was before the option existed.
  CHECK_FALSE(shared_config(act("c", 0).spec).contains("client_clusters"));
}
