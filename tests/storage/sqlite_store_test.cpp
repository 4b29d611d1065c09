#include "storage/sqlite_store.h"

#include <catch2/catch.hpp>

#include <set>
#include <thread>

#include "core/clock.h"
#include "tests/storage/store_fixtures.h"
#include "tests/support/temp_dir.h"

using namespace mufl;
using namespace mufl::storage;

namespace {

Activity make_activity(const std::string& id, const std::string& tenant, const std::string& name = "job") {
  Activity a;
  a.id = id;
  a.tenant_id = tenant;
  a.spec.name = name;
  a.spec.dataset = "synthetic";
  a.spec.task = "class";
  a.spec.rounds = 3;
  a.created_unix_ms = a.updated_unix_ms = 2000;
  return a;
}

}  // namespace

TEST_CASE("store: tenants are created, found by token hash, listed and soft-deleted") {
  ManualClock clock;
  auto store = open_store(":memory:", clock);
  REQUIRE(store->check_ready().is_ok());

  REQUIRE(store->create_tenant(make_tenant("ten_a", "alpha"), "hash-a").ok());
  REQUIRE(store->create_tenant(make_tenant("ten_b", "beta"), "hash-b").ok());
  auto dup = store->create_tenant(make_tenant("ten_c", "alpha"), "hash-c");
  CHECK(dup.status().code() == Status::Code::kAlreadyExists);

  auto by_hash = store->find_tenant_by_token_hash("hash-b");
  REQUIRE(by_hash.ok());
  CHECK(by_hash->id == "ten_b");
  CHECK(store->find_tenant_by_token_hash("nope").status().is_not_found());

  auto list = store->list_tenants();
  REQUIRE(list.ok());
  REQUIRE(list->size() == 2);
  CHECK((*list)[0].id == "ten_a");  // oldest first

  Quotas seven;
  seven.max_active_activities = 7;
  auto upd = store->update_tenant_quotas("ten_a", seven, 5000);
  REQUIRE(upd.ok());
  CHECK(upd->quotas.max_active_activities == 7);
  CHECK(upd->updated_unix_ms == 5000);
  CHECK(store->get_tenant("ten_a")->quotas.max_active_activities == 7);

  REQUIRE(store->submit_activity(make_activity("act_1", "ten_a"), 100, std::nullopt).ok());
  REQUIRE(store->delete_tenant("ten_a", 6000).is_ok());
  CHECK(store->get_tenant("ten_a").status().is_not_found());
  CHECK(store->find_tenant_by_token_hash("hash-a").status().is_not_found());
  CHECK(store->delete_tenant("ten_a", 7000).is_not_found());
  // Its active activity was cancelled in the same transaction.
  auto act = store->get_activity("act_1", Scope::all());
  REQUIRE(act.ok());
  CHECK(act->state == ActivityState::kCancelled);
  CHECK(act->state_reason == "tenant deleted");
  // The name is free again for a new tenant.
  CHECK(store->create_tenant(make_tenant("ten_d", "alpha"), "hash-d").ok());
}

TEST_CASE("store: submitting honours quotas and tenant existence") {
  ManualClock clock;
  auto store = open_store(":memory:", clock);
  REQUIRE(store->create_tenant(make_tenant("ten_a", "alpha"), "h").ok());

  REQUIRE(store->submit_activity(make_activity("act_1", "ten_a"), 2, std::nullopt).ok());
  REQUIRE(store->submit_activity(make_activity("act_2", "ten_a"), 2, std::nullopt).ok());
  auto over = store->submit_activity(make_activity("act_3", "ten_a"), 2, std::nullopt);
  CHECK(over.status().code() == Status::Code::kResourceExhausted);
  CHECK(store->get_activity("act_3", Scope::all()).status().is_not_found());

  // A cancelled activity no longer counts against the quota.
  REQUIRE(store->cancel_activity("act_1", Scope::of("ten_a"), "by user", 3000).ok());
  CHECK(store->submit_activity(make_activity("act_3", "ten_a"), 2, std::nullopt).ok());

  auto orphan = store->submit_activity(make_activity("act_4", "ten_zzz"), 2, std::nullopt);
  CHECK(orphan.status().is_not_found());
}

TEST_CASE("store: idempotency keys replay the same activity and reject another body") {
  ManualClock clock;
  auto store = open_store(":memory:", clock);
  REQUIRE(store->create_tenant(make_tenant("ten_a", "alpha"), "ha").ok());
  REQUIRE(store->create_tenant(make_tenant("ten_b", "beta"), "hb").ok());

  IdempotencyKey k{"key-1", "body-hash-1"};
  auto first = store->submit_activity(make_activity("act_1", "ten_a"), 100, k);
  REQUIRE(first.ok());
  CHECK_FALSE(first->replayed);

  auto again = store->submit_activity(make_activity("act_2", "ten_a"), 100, k);
  REQUIRE(again.ok());
  CHECK(again->replayed);
  CHECK(again->activity.id == "act_1");
  CHECK(store->get_activity("act_2", Scope::all()).status().is_not_found());

  auto other_body = store->submit_activity(make_activity("act_3", "ten_a"), 100, IdempotencyKey{"key-1", "other"});
  CHECK(other_body.status().code() == Status::Code::kConflict);

  // Keys are per tenant: another tenant may use the same key.
  auto b = store->submit_activity(make_activity("act_4", "ten_b"), 100, k);
  REQUIRE(b.ok());
  CHECK_FALSE(b->replayed);
  CHECK(b->activity.id == "act_4");
}

TEST_CASE("store: activities are scoped to their tenant and paginated newest first") {
  ManualClock clock;
  auto store = open_store(":memory:", clock);
  REQUIRE(store->create_tenant(make_tenant("ten_a", "alpha"), "ha").ok());
  REQUIRE(store->create_tenant(make_tenant("ten_b", "beta"), "hb").ok());
  for (int i = 0; i < 25; ++i) {
    REQUIRE(store->submit_activity(make_activity("act_a" + std::to_string(i), "ten_a"), 100, std::nullopt).ok());
  }
  REQUIRE(store->submit_activity(make_activity("act_b0", "ten_b"), 100, std::nullopt).ok());

  CHECK(store->get_activity("act_b0", Scope::of("ten_a")).status().is_not_found());
  CHECK(store->get_activity("act_b0", Scope::of("ten_b")).ok());
  CHECK(store->cancel_activity("act_b0", Scope::of("ten_a"), "x", 1).status().is_not_found());
  CHECK(store->get_activity("act_b0", Scope::all())->state == ActivityState::kQueued);

  std::vector<std::string> seen;
  ActivityQuery q;
  q.scope = Scope::of("ten_a");
  q.limit = 10;
  int pages = 0;
  while (true) {
    auto page = store->list_activities(q);
    REQUIRE(page.ok());
    ++pages;
    for (const auto& a : page->items) {
      CHECK(a.tenant_id == "ten_a");
      seen.push_back(a.id);
    }
    if (!page->next_before_seq) break;
    q.before_seq = page->next_before_seq;
  }
  CHECK(pages == 3);
  REQUIRE(seen.size() == 25);
  CHECK(seen.front() == "act_a24");
  CHECK(seen.back() == "act_a0");
  CHECK(std::set<std::string>(seen.begin(), seen.end()).size() == 25);

  REQUIRE(store->cancel_activity("act_a3", Scope::of("ten_a"), "stop", 9).ok());
  ActivityQuery cancelled;
  cancelled.state = ActivityState::kCancelled;
  auto cp = store->list_activities(cancelled);
  REQUIRE(cp.ok());
  REQUIRE(cp->items.size() == 1);
  CHECK(cp->items[0].id == "act_a3");
  CHECK(cp->items[0].state_reason == "stop");
  CHECK(cp->items[0].updated_unix_ms == 9);

  auto counts = store->count_activities_by_state();
  REQUIRE(counts.ok());
  CHECK(counts->size() == std::size(kAllActivityStates));
  for (auto [state, n] : *counts) {
    if (state == ActivityState::kQueued) CHECK(n == 25);
    else if (state == ActivityState::kCancelled) CHECK(n == 1);
    else CHECK(n == 0);
  }
}

TEST_CASE("store: cancelling twice keeps the first reason and time") {
  ManualClock clock;
  auto store = open_store(":memory:", clock);
  REQUIRE(store->create_tenant(make_tenant("ten_a", "alpha"), "ha").ok());
  REQUIRE(store->submit_activity(make_activity("act_1", "ten_a"), 100, std::nullopt).ok());
  auto c1 = store->cancel_activity("act_1", Scope::of("ten_a"), "first", 100);
  auto c2 = store->cancel_activity("act_1", Scope::of("ten_a"), "second", 200);
  REQUIRE(c1.ok());
  REQUIRE(c2.ok());
  CHECK(c2->state == ActivityState::kCancelled);
  CHECK(c2->state_reason == "first");
  CHECK(c2->updated_unix_ms == 100);
}

TEST_CASE("store: a file database keeps everything across reopen, the spec round-trips") {
  testing::TempDir dir;
  ManualClock clock;
  Activity a = make_activity("act_1", "ten_a", "full spec");
  a.spec.partition = Partition{"dirichlet", 0.25};
  a.spec.deadline_unix_ms = 1'900'000'000'000;
  a.spec.learning_rate = 0.125;
  a.spec.merge = false;
  a.spec.priority = -3;
  {
    auto store = open_store(dir.file("m.db"), clock);
    REQUIRE(store->create_tenant(make_tenant("ten_a", "alpha"), "ha").ok());
    REQUIRE(store->submit_activity(a, 100, std::nullopt).ok());
  }
  auto store = open_store(dir.file("m.db"), clock);
  auto got = store->get_activity("act_1", Scope::of("ten_a"));
  REQUIRE(got.ok());
  CHECK(got->spec == a.spec);
  CHECK(got->created_unix_ms == a.created_unix_ms);
  CHECK(store->find_tenant_by_token_hash("ha").ok());
}

TEST_CASE("store: concurrent submits and reads from many threads lose nothing") {
  testing::TempDir dir;
  ManualClock clock;
  auto store = open_store(dir.file("c.db"), clock);
  REQUIRE(store->create_tenant(make_tenant("ten_a", "alpha", 1'000'000), "ha").ok());
  constexpr int kThreads = 6, kEach = 40;
  std::atomic<int> failures{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kEach; ++i) {
        std::string id = "act_" + std::to_string(t) + "_" + std::to_string(i);
        if (!store->submit_activity(make_activity(id, "ten_a"), 1'000'000, std::nullopt).ok()) ++failures;
        if (!store->get_activity(id, Scope::of("ten_a")).ok()) ++failures;
      }
    });
  }
  for (auto& th : threads) th.join();
  CHECK(failures == 0);
  ActivityQuery q;
  q.limit = 1000;
  auto page = store->list_activities(q);
  REQUIRE(page.ok());
  CHECK(page->items.size() == kThreads * kEach);
  // seq is strictly decreasing along the page: creation order is total.
  for (size_t i = 1; i < page->items.size(); ++i) CHECK(page->items[i - 1].seq > page->items[i].seq);
}

TEST_CASE("store: opening in a directory that does not exist fails with a status") {
  ManualClock clock;
  StoreOptions o;
  o.path = "/nonexistent-dir-for-mufl/x.db";
  auto s = SqliteStore::open(o, clock);
  CHECK_FALSE(s.ok());
}

TEST_CASE("store: a transaction body that throws leaves the store writable and nothing of it visible") {
  mufl::testing::TempDir dir;
  ManualClock clock;
  auto store = open_store(dir.file("mufl.db"), clock);
  REQUIRE(store->create_tenant(make_tenant("ten_a", "alpha"), "h").ok());

  // The spec's JSON cannot be written (invalid UTF-8): nlohmann throws inside submit's
  // transaction, after its reads and its first binds.
  Activity bad = make_activity("act_bad", "ten_a");
  bad.spec.dataset = "synth\xff";
  CHECK_THROWS(store->submit_activity(bad, 100, IdempotencyKey{"k-bad", "h-bad"}));

  // The writer has no transaction left open: the next writes commit.
  auto next = store->submit_activity(make_activity("act_1", "ten_a"), 100, IdempotencyKey{"k-bad", "h-1"});
  REQUIRE(next.ok());
  CHECK_FALSE(next->replayed);  // the thrown submit's key was not recorded
  REQUIRE(store->cancel_activity("act_1", Scope::of("ten_a"), "by user", 3000).ok());
  CHECK(store->get_activity("act_bad", Scope::all()).status().is_not_found());

  // A second store on the file (another process) sees only the committed ones.
  store.reset();
  auto again = open_store(dir.file("mufl.db"), clock);
  CHECK(again->get_activity("act_bad", Scope::all()).status().is_not_found());
  auto act = again->get_activity("act_1", Scope::all());
  REQUIRE(act.ok());
  CHECK(act->state == ActivityState::kCancelled);
}
