#include "storage/detail_cache.h"

#include <catch2/catch.hpp>

#include <atomic>
#include <thread>

#include "core/clock.h"
#include "storage/sqlite_store.h"
#include "tests/storage/store_fixtures.h"
#include "tests/support/temp_dir.h"

using namespace mufl;
using namespace mufl::storage;

namespace {

ActivityDetail detail_of(const std::string& id) {
  ActivityDetail d;
  d.activity.id = id;
  d.activity.tenant_id = "ten_a";
  return d;
}

std::unique_ptr<SqliteStore> open_with_cache(const std::string& path, const Clock& clock, size_t entries) {
  StoreOptions o;
  o.path = path;
  o.detail_cache_entries = entries;
  auto s = SqliteStore::open(o, clock);
  REQUIRE(s.ok());
  return std::move(*s);
}

}  // namespace

TEST_CASE("detail cache: an entry is served only at the generation it was read at") {
  DetailCache cache(8);
  const uint64_t g = cache.generation();
  cache.put("act_1", g, detail_of("act_1"));
  auto hit = cache.find("act_1");
  REQUIRE(hit);
  CHECK(hit->activity.id == "act_1");
  CHECK(cache.hits() == 1);

  cache.invalidate();
  CHECK_FALSE(cache.find("act_1"));
  // A read tagged before a write that ended meanwhile is not kept: it may predate the write.
  cache.put("act_1", g, detail_of("act_1"));
  CHECK_FALSE(cache.find("act_1"));
  CHECK(cache.misses() == 2);
}

TEST_CASE("detail cache: capacity bounds the entries, and 0 keeps none") {
  DetailCache cache(2);
  const uint64_t g = cache.generation();
  cache.put("act_1", g, detail_of("act_1"));
  cache.put("act_2", g, detail_of("act_2"));
  cache.put("act_1", g, detail_of("act_1"));  // a replacement does not count twice
  CHECK(cache.find("act_2"));
  cache.put("act_3", g, detail_of("act_3"));  // the third empties the cache first
  CHECK(cache.find("act_3"));
  CHECK_FALSE(cache.find("act_1"));

  DetailCache off(0);
  off.put("act_1", off.generation(), detail_of("act_1"));
  CHECK_FALSE(off.find("act_1"));
}

TEST_CASE("detail cache: the store serves a repeated read from memory and every write is seen at once") {
  ManualClock clock;
  mufl::testing::TempDir dir;
  auto store = open_with_cache(dir.path() + "/m.db", clock, 16);
  REQUIRE(store->create_tenant(make_tenant("ten_a", "alpha"), "ha").ok());
  REQUIRE(store->create_tenant(make_tenant("ten_b", "beta"), "hb").ok());
  REQUIRE(store->submit_activity(queued_activity("act_1", "ten_a"), 100, std::nullopt).ok());

  auto first = store->get_activity_detail("act_1", Scope::of("ten_a"));
  REQUIRE(first.ok());
  const int64_t statements = store->statements_run();
  auto second = store->get_activity_detail("act_1", Scope::of("ten_a"));
  REQUIRE(second.ok());
  CHECK(store->statements_run() == statements);  // no query at all
  CHECK(store->detail_cache().hits() == 1);
  CHECK(second->activity.state == first->activity.state);
  CHECK(second->tenant->name == "alpha");

  // Another tenant's scope is refused on a hit exactly as by the query.
  CHECK(store->get_activity_detail("act_1", Scope::of("ten_b")).status().is_not_found());
  CHECK(store->get_activity_detail("act_1", Scope::all()).ok());
  CHECK(store->get_activity_detail("act_9", Scope::all()).status().is_not_found());

  // A write to the activity, and one to its tenant only, are both in the next read.
  REQUIRE(store->cancel_activity("act_1", Scope::of("ten_a"), "by test", 3000).ok());
  auto cancelled = store->get_activity_detail("act_1", Scope::of("ten_a"));
  REQUIRE(cancelled.ok());
  CHECK(cancelled->activity.state == ActivityState::kCancelled);
  Quotas q;
  q.max_active_activities = 7;
  REQUIRE(store->update_tenant_quotas("ten_a", q, 4000).ok());
  CHECK(store->get_activity_detail("act_1", Scope::all())->tenant->quotas.max_active_activities == 7);
  // A write that fails (the quota refuses it) changes nothing, and the read still agrees.
  REQUIRE_FALSE(store->submit_activity(queued_activity("act_1", "ten_a"), 100, std::nullopt).ok());
  CHECK(store->get_activity_detail("act_1", Scope::all())->activity.state == ActivityState::kCancelled);
}

TEST_CASE("detail cache: a read that starts after a write returned sees it, under concurrent writes") {
  ManualClock clock;
  mufl::testing::TempDir dir;
  auto store = open_with_cache(dir.path() + "/m.db", clock, 16);
  REQUIRE(store->create_tenant(make_tenant("ten_a", "alpha", 1), "ha").ok());
  REQUIRE(store->submit_activity(queued_activity("act_1", "ten_a"), 100, std::nullopt).ok());

  constexpr int kWrites = 300;
  std::atomic<int64_t> written{1};  // the quota the last returned write set
  std::atomic<bool> done{false};
  std::atomic<int> stale{0}, reads{0};
  std::thread reader([&] {
    while (!done.load()) {
      const int64_t at_least = written.load();
      auto d = store->get_activity_detail("act_1", Scope::all());
      if (!d.ok() || !d->tenant || d->tenant->quotas.max_active_activities < at_least) ++stale;
      ++reads;
    }
  });
  for (int i = 2; i <= kWrites; ++i) {
    Quotas q;
    q.max_active_activities = i;
    REQUIRE(store->update_tenant_quotas("ten_a", q, 1000 + i).ok());
    written.store(i);
  }
  done.store(true);
  reader.join();
  CHECK(stale.load() == 0);
  CHECK(reads.load() > 0);
  CHECK(store->get_activity_detail("act_1", Scope::all())->tenant->quotas.max_active_activities == kWrites);
}
