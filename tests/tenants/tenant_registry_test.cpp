#include "tenants/tenant_registry.h"

#include <catch2/catch.hpp>

#include <nlohmann/json.hpp>

#include "storage/sqlite_store.h"
#include "tenants/token.h"

using namespace mufl;
using namespace mufl::tenants;
using nlohmann::json;

namespace {

struct Fixture {
  ManualClock clock;
  SeededRandom rng{3};
  std::unique_ptr<storage::SqliteStore> store;
  std::unique_ptr<TenantRegistry> registry;
  Fixture() {
    storage::StoreOptions o;
    o.path = ":memory:";
    auto s = storage::SqliteStore::open(o, clock);
    REQUIRE(s.ok());
    store = std::move(*s);
    registry = std::make_unique<TenantRegistry>(*store, clock, rng, sha256_hex("admin-secret"));
  }
};

}  // namespace

TEST_CASE("registry: the admin token and a tenant's token authenticate, others do not") {
  Fixture f;
  auto admin = f.registry->authenticate("admin-secret");
  REQUIRE(admin.ok());
  CHECK(admin->is_admin());

  auto created = f.registry->create({{"name", "vision"}, {"quotas", {{"max_active_activities", 3}}}});
  REQUIRE(created.ok());
  CHECK(created->tenant.quotas.max_active_activities == 3);
  CHECK(created->token.rfind("mufl_", 0) == 0);

  auto who = f.registry->authenticate(created->token);
  REQUIRE(who.ok());
  CHECK_FALSE(who->is_admin());
  CHECK(who->tenant_id == created->tenant.id);

  CHECK(f.registry->authenticate("").status().code() == Status::Code::kUnauthenticated);
  CHECK(f.registry->authenticate("admin-secreT").status().code() == Status::Code::kUnauthenticated);
  CHECK(f.registry->authenticate(created->token + "x").status().code() == Status::Code::kUnauthenticated);

  // The second time the token comes from the cache; deleting the tenant must still revoke it.
  auto again = f.registry->authenticate(created->token);
  REQUIRE(again.ok());
  CHECK(again->tenant_id == created->tenant.id);
  REQUIRE(f.registry->remove(created->tenant.id).is_ok());
  CHECK(f.registry->authenticate(created->token).status().code() == Status::Code::kUnauthenticated);
}

TEST_CASE("registry: bad tenant bodies name their fields and create nothing") {
  Fixture f;
  auto fields = [&](const json& body) {
    auto r = f.registry->create(body);
    REQUIRE_FALSE(r.ok());
    REQUIRE(r.status().is_invalid_argument());
    std::vector<std::string> out;
    const Status st = r.status();
    for (const auto& e : st.field_errors()) out.push_back(e.field);
    return out;
  };
  CHECK(fields(json::object()) == std::vector<std::string>{"name"});
  CHECK(fields({{"name", "has space"}}) == std::vector<std::string>{"name"});
  CHECK(fields({{"name", std::string(65, 'a')}}) == std::vector<std::string>{"name"});
  CHECK(fields({{"name", 5}}) == std::vector<std::string>{"name"});
  CHECK(fields({{"name", "ok"}, {"quotas", {{"max_active_activities", -1}}}}) ==
        std::vector<std::string>{"quotas.max_active_activities"});
  CHECK(fields({{"name", "ok"}, {"quotas", {{"max_jobs", 1}}}}) == std::vector<std::string>{"quotas.max_jobs"});
  CHECK(fields({{"name", "ok"}, {"owner", "me"}}) == std::vector<std::string>{"owner"});
  CHECK(f.registry->list()->empty());
}

TEST_CASE("registry: names are unique, quotas can be changed") {
  Fixture f;
  auto a = f.registry->create({{"name", "team-a"}});
  REQUIRE(a.ok());
  CHECK(a->tenant.quotas.max_active_activities == Quotas{}.max_active_activities);
  CHECK(f.registry->create({{"name", "team-a"}}).status().code() == Status::Code::kAlreadyExists);

  auto u = f.registry->update(a->tenant.id, {{"quotas", {{"max_active_activities", 9}}}});
  REQUIRE(u.ok());
  CHECK(u->quotas.max_active_activities == 9);
  CHECK(f.registry->get(a->tenant.id)->quotas.max_active_activities == 9);
  CHECK(f.registry->update(a->tenant.id, json::object()).status().is_invalid_argument());
  CHECK(f.registry->update("ten_00000000000000000000", {{"quotas", json::object()}}).status().is_not_found());
  CHECK(f.registry->remove("ten_00000000000000000000").is_not_found());

  json j = tenant_to_json(*u);
  CHECK(j["name"] == "team-a");
  CHECK(j["quotas"]["max_active_activities"] == 9);
  CHECK(j["created_at"].get<std::string>().back() == 'Z');
}
