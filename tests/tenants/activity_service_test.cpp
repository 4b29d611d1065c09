#include "tenants/activity_service.h"

#include <catch2/catch.hpp>

#include <nlohmann/json.hpp>

#include "storage/sqlite_store.h"
#include "tenants/tenant_registry.h"
#include "tenants/token.h"

using namespace mufl;
using namespace mufl::tenants;
using nlohmann::json;

namespace {

struct Fixture {
  ManualClock clock;
  SeededRandom rng{5};
  Catalog catalog = Catalog::builtin();
  std::unique_ptr<storage::SqliteStore> store;
  std::unique_ptr<TenantRegistry> registry;
  std::unique_ptr<ActivityService> service;
  Principal a, b;
  Fixture() {
    storage::StoreOptions o;
    o.path = ":memory:";
    auto s = storage::SqliteStore::open(o, clock);
    REQUIRE(s.ok());
    store = std::move(*s);
    registry = std::make_unique<TenantRegistry>(*store, clock, rng, sha256_hex("admin"));
    service = std::make_unique<ActivityService>(*store, catalog, clock, rng);
    a = Principal::tenant(registry->create({{"name", "a"}, {"quotas", {{"max_active_activities", 2}}}})->tenant.id);
    b = Principal::tenant(registry->create({{"name", "b"}})->tenant.id);
  }
};

json body(const std::string& name) { return {{"name", name}, {"dataset", "synthetic"}, {"task", "class"}, {"rounds", 2}}; }

}  // namespace

TEST_CASE("activities: submit, get, list and cancel, isolated per tenant") {
  Fixture f;
  auto s = f.service->submit(f.a, body("one"), std::nullopt);
  REQUIRE(s.ok());
  const Activity& act = s->activity;
  CHECK(act.state == ActivityState::kQueued);
  CHECK(act.tenant_id == f.a.tenant_id);
  CHECK(act.id.rfind("act_", 0) == 0);

  CHECK(f.service->get(f.a, act.id).ok());
  CHECK(f.service->get(f.b, act.id).status().is_not_found());
  CHECK(f.service->get(Principal::admin(), act.id).ok());
  CHECK(f.service->cancel(f.b, act.id).status().is_not_found());
  CHECK(f.service->get(f.a, act.id)->state == ActivityState::kQueued);

  storage::ActivityQuery q;
  q.scope = storage::Scope::all();  // replaced by the principal's scope
  CHECK(f.service->list(f.b, q)->items.empty());
  CHECK(f.service->list(f.a, q)->items.size() == 1);

  auto c = f.service->cancel(f.a, act.id);
  REQUIRE(c.ok());
  CHECK(c->state == ActivityState::kCancelled);
  auto again = f.service->cancel(f.a, act.id);
  REQUIRE(again.ok());
  CHECK(again->state == ActivityState::kCancelled);
  CHECK(again->updated_unix_ms == c->updated_unix_ms);

  json j = activity_to_json(*c, 0);
  for (const char* k : {"id", "tenant_id", "state", "created_at", "updated_at", "name", "rounds", "partition"})
    CHECK(j.contains(k));
  CHECK(j["state"] == "cancelled");
}

TEST_CASE("activities: the admin cannot submit, and quota and idempotency are enforced") {
  Fixture f;
  CHECK(f.service->submit(Principal::admin(), body("x"), std::nullopt).status().code() ==
        Status::Code::kPermissionDenied);

  auto first = f.service->submit(f.a, body("one"), std::string("k1"));
  REQUIRE(first.ok());
  auto replay = f.service->submit(f.a, body("one"), std::string("k1"));
  REQUIRE(replay.ok());
  CHECK(replay->replayed);
  CHECK(replay->activity.id == first->activity.id);
  CHECK(f.service->submit(f.a, body("two"), std::string("k1")).status().code() == Status::Code::kConflict);
  CHECK(f.service->submit(f.a, body("x"), std::string("")).status().is_invalid_argument());
  CHECK(f.service->submit(f.a, body("x"), std::string("bad key\n")).status().is_invalid_argument());

  REQUIRE(f.service->submit(f.a, body("two"), std::nullopt).ok());
  auto over = f.service->submit(f.a, body("three"), std::nullopt);
  CHECK(over.status().code() == Status::Code::kResourceExhausted);
  CHECK_FALSE(over.status().message().empty());
  // A replay of an accepted request still succeeds at the quota: it creates nothing.
  CHECK(f.service->submit(f.a, body("one"), std::string("k1")).ok());

  auto bad = f.service->submit(f.a, json{{"name", "x"}}, std::nullopt);
  CHECK(bad.status().is_invalid_argument());
  storage::ActivityQuery q;
  CHECK(f.service->list(f.a, q)->items.size() == 2);
}
