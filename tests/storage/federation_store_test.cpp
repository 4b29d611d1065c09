// FederationStore on SQLite: federations survive a reopen with their tenants, names are
// unique per owner, clients' tokens stop working when revoked or when their federation goes,
// and last-seen times only move forward.
#include <catch2/catch.hpp>

#include "tests/storage/store_fixtures.h"
#include "tests/support/temp_dir.h"

using namespace mufl;
using namespace mufl::storage;

TEST_CASE("federation store: federations, tenants lists and names survive a reopen") {
  mufl::testing::TempDir dir;
  ManualClock clock;
  const std::string path = dir.path() + "/mufl.db";
  {
    auto store = open_store(path, clock);
    REQUIRE(store->create_tenant(make_tenant("ten_a", "a"), "ha").ok());
    REQUIRE(store->create_tenant(make_tenant("ten_b", "b"), "hb").ok());
    Federation f = make_federation("fed_1", "ten_a", "cams");
    f.tenants = {"ten_b"};
    auto made = store->create_federation(f, "enroll1");
    REQUIRE(made.ok());
    CHECK(made->seq > 0);
    CHECK(store->create_federation(make_federation("fed_2", "ten_a", "cams"), "enroll2").status().code() ==
          Status::Code::kAlreadyExists);
    CHECK(store->create_federation(make_federation("fed_3", "ten_b", "cams"), "enroll3").ok());
    CHECK(store->create_federation(make_federation("fed_4", "ten_zz", "x"), "enroll4").status().is_not_found());
    Federation bad = make_federation("fed_5", "ten_a", "y");
    bad.tenants = {"ten_zz"};
    CHECK(store->create_federation(bad, "enroll5").status().is_not_found());
    CHECK(store->get_federation("fed_5", Scope::all()).status().is_not_found());  // nothing of it stayed
  }
  auto store = open_store(path, clock);
  auto f = store->get_federation("fed_1", Scope::all());
  REQUIRE(f.ok());
  CHECK(f->schema == DataSchema{3, 32, 32, 10});
  CHECK(f->tenants == std::vector<std::string>{"ten_b"});
  CHECK(store->get_federation("fed_1", Scope::of("ten_b")).ok());
  CHECK(store->list_federations(Scope::of("ten_b"))->size() == 2);  // listed on one, owns the other
  CHECK(store->list_federations(Scope::of("ten_a"))->size() == 1);
  CHECK(store->find_federation_by_enrollment("enroll1")->id == "fed_1");

  auto renamed = store->update_federation("fed_1", "cams2", {}, 5000);
  REQUIRE(renamed.ok());
  CHECK(renamed->tenants.empty());
  CHECK(store->get_federation("fed_1", Scope::of("ten_b")).status().is_not_found());
  auto rotated = store->rotate_enrollment_token("fed_1", "enroll9", 7000, 6000);
  REQUIRE(rotated.ok());
  CHECK(rotated->enrollment_expires_unix_ms == 7000);
  CHECK(store->find_federation_by_enrollment("enroll1").status().is_not_found());
  CHECK(store->find_federation_by_enrollment("enroll9").ok());
}

TEST_CASE("federation store: client tokens end with revocation, the federation, or its owner") {
  ManualClock clock;
  auto store = open_store(":memory:", clock);
  REQUIRE(store->create_tenant(make_tenant("ten_a", "a"), "ha").ok());
  REQUIRE(store->create_federation(make_federation("fed_1", "ten_a", "f1"), "e1").ok());
  REQUIRE(store->create_federation(make_federation("fed_2", "ten_a", "f2"), "e2").ok());
  REQUIRE(store->enroll_client(make_client("cli_1", "fed_1", "n"), "t1").ok());
  CHECK(store->enroll_client(make_client("cli_2", "fed_1", "n"), "t2").status().code() ==
        Status::Code::kAlreadyExists);
  REQUIRE(store->enroll_client(make_client("cli_3", "fed_2", "n"), "t3").ok());
  CHECK(store->find_client_by_token("t1")->id == "cli_1");

  auto revoked = store->revoke_client("fed_1", "cli_1", 3000);
  REQUIRE(revoked.ok());
  CHECK(revoked->revoked_unix_ms == 3000);
  CHECK(store->revoke_client("fed_1", "cli_1", 4000)->revoked_unix_ms == 3000);  // revoked once
  CHECK(store->revoke_client("fed_2", "cli_1", 4000).status().is_not_found());  // another federation's
  CHECK(store->find_client_by_token("t1").status().is_not_found());
  CHECK(store->enroll_client(make_client("cli_4", "fed_1", "n"), "t4").ok());  // its name is free

  REQUIRE(store->delete_federation("fed_1", 5000).is_ok());
  CHECK(store->find_client_by_token("t4").status().is_not_found());
  CHECK(store->enroll_client(make_client("cli_5", "fed_1", "m"), "t5").status().is_not_found());
  CHECK(store->delete_federation("fed_1", 5000).is_not_found());
  CHECK(store->find_client_by_token("t3").ok());
  REQUIRE(store->delete_tenant("ten_a", 6000).is_ok());
  CHECK(store->find_client_by_token("t3").status().is_not_found());
  CHECK(store->list_federations(Scope::all())->empty());
  auto page = store->list_clients({"fed_2", 0, 10});
  REQUIRE(page.ok());
  REQUIRE(page->items.size() == 1);
  CHECK(page->items[0].revoked_unix_ms == 6000);
}

TEST_CASE("federation store: last seen only moves forward, and clients page in enrollment order") {
  ManualClock clock;
  auto store = open_store(":memory:", clock);
  REQUIRE(store->create_federation(make_federation("fed_1", "", "f"), "e").ok());  // the admin's
  for (int i = 0; i < 5; ++i)
    REQUIRE(store->enroll_client(make_client("cli_" + std::to_string(i), "fed_1", "c" + std::to_string(i)),
                                 "t" + std::to_string(i))
                .ok());
  REQUIRE(store->touch_clients({{"cli_0", 8000}, {"cli_1", 1000}, {"cli_nope", 9000}}).is_ok());
  auto first = store->list_clients({"fed_1", 0, 2});
  REQUIRE(first.ok());
  REQUIRE(first->items.size() == 2);
  CHECK(first->items[0].last_seen_unix_ms == 8000);
  CHECK(first->items[1].last_seen_unix_ms == 2000);  // 1000 is older than what it holds
  REQUIRE(first->next_after_seq);
  auto second = store->list_clients({"fed_1", *first->next_after_seq, 2});
  auto third = store->list_clients({"fed_1", *second->next_after_seq, 2});
  CHECK(second->items[0].name == "c2");
  REQUIRE(third->items.size() == 1);
  CHECK(third->items[0].name == "c4");
  CHECK_FALSE(third->next_after_seq);
}
