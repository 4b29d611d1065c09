// service/event_hub.h: filters, subscriptions (queue, wake, overflow, close) and the replay ring.
#include "service/event_hub.h"

#include <catch2/catch.hpp>

using namespace mufl;
using namespace mufl::service;

namespace {

storage::StoredEvent event(int64_t id, std::optional<std::string> tenant, const std::string& activity,
                           const std::string& type = "activity.state") {
  storage::StoredEvent e;
  e.id = id;
  e.time_unix_ms = 1000 + id;
  e.tenant_id = std::move(tenant);
  e.activity_id = activity;
  e.type = type;
  e.data_json = "{}";
  return e;
}

std::vector<int64_t> ids(const std::vector<HubEventPtr>& es) {
  std::vector<int64_t> out;
  for (const auto& e : es) out.push_back(e->id);
  return out;
}

EventFilter tenant(const std::string& t) {
  EventFilter f;
  f.tenant_id = t;
  return f;
}

}  // namespace

TEST_CASE("event hub: a filter keeps the tenant's own and device events, then by activity and type") {
  EventFilter admin;
  CHECK(admin.matches(std::string("ten_a"), "act_1", "activity.state"));
  CHECK(admin.matches(std::nullopt, "", "device.changed"));
  EventFilter a = tenant("ten_a");
  CHECK(a.matches(std::string("ten_a"), "act_1", "activity.state"));
  CHECK_FALSE(a.matches(std::string("ten_b"), "act_2", "activity.state"));
  CHECK(a.matches(std::nullopt, "", "device.changed"));
  a.activity_id = "act_1";
  CHECK(a.matches(std::string("ten_a"), "act_1", "round.finished"));
  CHECK_FALSE(a.matches(std::string("ten_a"), "act_3", "round.finished"));
  CHECK_FALSE(a.matches(std::nullopt, "", "device.changed"));  // a device event is about no activity
  a.types = {"round.finished"};
  CHECK_FALSE(a.matches(std::string("ten_a"), "act_1", "activity.state"));
  CHECK(a.matches(std::string("ten_a"), "act_1", "round.finished"));
}

TEST_CASE("event hub: a subscription gets what is published after it, and its wake once when idle") {
  EventHub hub;
  hub.start(10);
  hub.publish({event(11, "ten_a", "act_1")});
  auto sub = hub.subscribe(tenant("ten_a"));
  CHECK(sub->head() == 11);
  CHECK(hub.subscribers() == 1);

  int woken = 0;
  auto first = sub->take_or_notify([&] { ++woken; });
  CHECK(first.events.empty());
  CHECK_FALSE(first.closed);
  hub.publish({event(12, "ten_b", "act_2")});  // not its tenant's: no wake
  CHECK(woken == 0);
  hub.publish({event(13, "ten_a", "act_1"), event(14, std::nullopt, "", "device.changed")});
  CHECK(woken == 1);
  hub.publish({event(15, "ten_a", "act_1")});
  CHECK(woken == 1);  // the wake is called once
  auto batch = sub->take_or_notify([&] { ++woken; });
  CHECK(ids(batch.events) == std::vector<int64_t>{13, 14, 15});
  hub.publish({event(15, "ten_a", "act_1")});  // an id already published is ignored
  CHECK(woken == 1);
  CHECK(hub.last_id() == 15);

  CHECK(sub->take_or_notify([&] { ++woken; }).events.empty());  // waits again
  sub->close();  // wakes the waiting reader, and the hub forgets it
  CHECK(woken == 2);
  CHECK(sub->take_or_notify([] {}).closed);
  CHECK(hub.subscribers() == 0);
}

TEST_CASE("event hub: a subscription that holds too many events is dropped") {
  EventHubOptions o;
  o.max_queued = 2;
  EventHub hub(o);
  hub.start(0);
  auto sub = hub.subscribe({});
  auto other = hub.subscribe({});
  hub.publish({event(1, "ten_a", "act_1"), event(2, "ten_a", "act_1")});
  CHECK(ids(other->take_or_notify([] {}).events) == std::vector<int64_t>{1, 2});
  hub.publish({event(3, "ten_a", "act_1")});
  auto b = sub->take_or_notify([] {});
  CHECK(b.overflowed);
  CHECK(b.events.empty());
  CHECK(hub.subscribers() == 1);  // the one that keeps up
  CHECK(ids(other->take_or_notify([] {}).events) == std::vector<int64_t>{3});
}

TEST_CASE("event hub: the ring replays a range it still holds, filtered and in pages") {
  EventHubOptions o;
  o.ring_capacity = 4;
  EventHub hub(o);
  hub.publish({event(6, "ten_a", "act_1")});  // before start(): kept, and newer than the start
  hub.start(5);
  hub.publish({event(7, "ten_b", "act_2"), event(8, "ten_a", "act_1"), event(9, "ten_a", "act_1")});

  CHECK_FALSE(hub.replay(4, 9, {}, 100).has_value());  // event 5 was never in the ring
  auto all = hub.replay(5, 9, {}, 100);
  REQUIRE(all.has_value());
  CHECK(ids(all->events) == std::vector<int64_t>{6, 7, 8, 9});
  CHECK(all->scanned_to == 9);
  auto mine = hub.replay(5, 8, tenant("ten_a"), 100);
  REQUIRE(mine.has_value());
  CHECK(ids(mine->events) == std::vector<int64_t>{6, 8});
  CHECK(mine->scanned_to == 8);
  auto page = hub.replay(5, 9, tenant("ten_a"), 2);
  REQUIRE(page.has_value());
  CHECK(ids(page->events) == std::vector<int64_t>{6, 8});
  CHECK(page->scanned_to == 8);

  hub.publish({event(10, "ten_a", "act_1")});  // 6 leaves the ring
  CHECK_FALSE(hub.replay(5, 10, {}, 100).has_value());
  auto rest = hub.replay(6, 10, {}, 100);
  REQUIRE(rest.has_value());
  CHECK(ids(rest->events) == std::vector<int64_t>{7, 8, 9, 10});
}
