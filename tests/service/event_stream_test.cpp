// service/event_stream.h over a SqliteStore and an EventHub that listens to it: replay from
// SQLite and from the ring, the hand-over to live events with no gap and no duplicate, the
// caller's scope, and the ways a stream ends.
#include "service/event_stream.h"

#include <catch2/catch.hpp>

#include <optional>
#include <regex>

#include "core/clock.h"
#include "storage/sqlite_store.h"
#include "tests/support/temp_dir.h"

using namespace mufl;
using namespace mufl::service;

namespace {

struct Fixture {
  mufl::testing::TempDir dir;
  ManualClock clock;
  std::unique_ptr<storage::SqliteStore> store;
  std::unique_ptr<EventHub> hub;
  int next_activity = 0;

  Fixture() {
    storage::StoreOptions o;
    o.path = dir.file("events.db");
    auto s = storage::SqliteStore::open(o, clock);
    REQUIRE(s.ok());
    store = std::move(*s);
    for (const char* id : {"ten_a", "ten_b"}) {
      Tenant t;
      t.id = id;
      t.name = id;
      t.quotas.max_active_activities = 1000;
      REQUIRE(store->create_tenant(t, std::string("hash-") + id).ok());
    }
  }
  ~Fixture() {
    if (hub) store->set_event_listener({});
  }
  void listen(EventHubOptions o = {}) {
    hub = std::make_unique<EventHub>(o);
    auto last = store->set_event_listener([h = hub.get()](const auto& events) { h->publish(events); });
    REQUIRE(last.ok());
    hub->start(*last);
  }
  // Submits an activity: one activity.state event.
  std::string submit(const std::string& tenant = "ten_a") {
    Activity a;
    a.id = "act_" + std::to_string(++next_activity);
    a.tenant_id = tenant;
    a.spec.name = a.id;
    a.spec.dataset = "synthetic";
    a.spec.task = "class";
    a.spec.rounds = 1;
    REQUIRE(store->submit_activity(a, 1000, std::nullopt).ok());
    return a.id;
  }
  std::shared_ptr<EventStream> stream(std::optional<int64_t> after, EventFilter filter = {}, int page = 500) {
    EventStreamOptions o;
    o.page_size = page;
    return std::make_shared<EventStream>(*store, *hub, std::move(filter), after, o);
  }
};

// next() whose `ready` ran before it returned (a replay page, or queued live events).
StreamChunk next_now(EventStream& s) {
  std::optional<StreamChunk> got;
  s.next([&](StreamChunk c) { got = std::move(c); });
  REQUIRE(got.has_value());
  return std::move(*got);
}

std::vector<int64_t> ids_in(const std::string& text) {
  std::vector<int64_t> out;
  static const std::regex id_line("(^|\n)id: ([0-9]+)\n");
  for (auto it = std::sregex_iterator(text.begin(), text.end(), id_line); it != std::sregex_iterator(); ++it)
    out.push_back(std::stoll((*it)[2]));
  return out;
}

std::vector<int64_t> range(int64_t from, int64_t to) {
  std::vector<int64_t> out;
  for (int64_t i = from; i <= to; ++i) out.push_back(i);
  return out;
}

}  // namespace

TEST_CASE("event stream: replay from SQLite and the ring, then live events, with no gap and no duplicate") {
  Fixture f;
  for (int i = 0; i < 3; ++i) f.submit();  // 1-3: before the hub, only in SQLite
  f.listen();
  for (int i = 0; i < 2; ++i) f.submit();  // 4-5: in SQLite and the ring
  auto s = f.stream(0, {}, /*page=*/2);
  for (int i = 0; i < 2; ++i) f.submit();  // 6-7: after the stream subscribed

  std::vector<int64_t> seen;
  for (int i = 0; i < 10 && seen.size() < 7; ++i) {
    StreamChunk c = next_now(*s);
    CHECK_FALSE(c.last);
    for (int64_t id : ids_in(c.data)) seen.push_back(id);
  }
  CHECK(seen == range(1, 7));

  // Nothing queued: ready waits for the next commit and runs on the committing thread.
  std::optional<StreamChunk> later;
  s->next([&](StreamChunk c) { later = std::move(c); });
  CHECK_FALSE(later.has_value());
  f.submit();
  REQUIRE(later.has_value());
  CHECK(ids_in(later->data) == std::vector<int64_t>{8});

  // A stream resuming after 5 replays from the ring alone.
  auto resumed = f.stream(5);
  CHECK(ids_in(next_now(*resumed).data) == range(6, 8));
}

TEST_CASE("event stream: without a resume point it starts live, and a tenant sees only its own") {
  Fixture f;
  f.listen();
  f.submit("ten_a");
  EventFilter b;
  b.tenant_id = "ten_b";
  auto live = f.stream(std::nullopt, b);
  auto replay = f.stream(0, b);
  f.submit("ten_a");
  const std::string mine = f.submit("ten_b");
  CHECK(ids_in(next_now(*live).data) == std::vector<int64_t>{3});
  StreamChunk c = next_now(*replay);
  CHECK(ids_in(c.data) == std::vector<int64_t>{3});
  CHECK(c.data.find(mine) != std::string::npos);
}

TEST_CASE("event stream: cancel ends a waiting stream, and an overflow drops it with a comment") {
  Fixture f;
  EventHubOptions o;
  o.max_queued = 2;
  f.listen(o);
  auto waiting = f.stream(std::nullopt);
  std::optional<StreamChunk> end;
  waiting->next([&](StreamChunk c) { end = std::move(c); });
  waiting->cancel();
  REQUIRE(end.has_value());
  CHECK(end->last);
  CHECK(end->data == std::string(kShutdownComment));
  CHECK(next_now(*waiting).last);  // and every later next() at once

  auto slow = f.stream(std::nullopt);
  for (int i = 0; i < 3; ++i) f.submit();
  StreamChunk dropped = next_now(*slow);
  CHECK(dropped.last);
  CHECK(dropped.data == std::string(kDroppedComment));
  CHECK(f.hub->subscribers() == 0);
}
