// LeaseStore on SQLite: leases survive a reopen, a report is recorded once, and a round's
// open leases close as expired or abandoned.
#include <catch2/catch.hpp>

#include "tests/storage/store_fixtures.h"
#include "tests/support/temp_dir.h"

using namespace mufl;
using namespace mufl::storage;

namespace {

Lease make_lease(const std::string& id, const std::string& client, int64_t index, int64_t attempt = 0) {
  Lease l;
  l.id = id;
  l.group_id = "grp_1";
  l.round = 3;
  l.attempt = attempt;
  l.client_id = client;
  l.client_index = index;
  l.assignment_json = R"({"id":")" + id + R"("})";
  l.deadline_unix_ms = 9000;
  l.created_unix_ms = 1000;
  return l;
}

// A federation with clients cli_0 … cli_{n-1}, for the leases' foreign keys.
void enroll(SqliteStore& store, int n) {
  Federation f;
  f.id = "fed_1";
  f.name = "f";
  f.created_unix_ms = f.updated_unix_ms = 1000;
  REQUIRE(store.create_federation(f, "e").ok());
  for (int i = 0; i < n; ++i) {
    Client c;
    c.id = "cli_" + std::to_string(i);
    c.federation_id = "fed_1";
    c.name = "c" + std::to_string(i);
    c.train_samples = 10;
    REQUIRE(store.enroll_client(c, "t" + std::to_string(i)).ok());
  }
}

}  // namespace

TEST_CASE("lease store: leases and their reports survive a reopen, and a report is taken once") {
  mufl::testing::TempDir dir;
  ManualClock clock;
  const std::string path = dir.path() + "/mufl.db";
  {
    auto store = open_store(path, clock);
    enroll(*store, 2);
    REQUIRE(store->create_leases({make_lease("lea_a", "cli_0", 0), make_lease("lea_b", "cli_1", 1)}).is_ok());
    CHECK(store->create_leases({make_lease("lea_a", "cli_0", 0)}).code() == Status::Code::kAlreadyExists);
    auto reported = store->record_lease_report("lea_a", R"({"samples":10})", "var/u/lea_a", "abc", 2000);
    REQUIRE(reported.ok());
    CHECK(reported->state == LeaseState::kReported);
    auto again = store->record_lease_report("lea_a", "{}", "other", "def", 2500);
    CHECK(again.status().code() == Status::Code::kFailedPrecondition);
    CHECK(store->record_lease_report("lea_zz", "{}", "p", "s", 2500).status().is_not_found());
  }
  auto store = open_store(path, clock);
  auto a = store->get_lease("lea_a");
  REQUIRE(a.ok());
  CHECK(a->report_json == R"({"samples":10})");
  CHECK(a->update_path == "var/u/lea_a");
  CHECK(a->update_sha256 == "abc");
  CHECK(a->updated_unix_ms == 2000);
  auto open = store->list_open_leases();
  REQUIRE(open.ok());
  REQUIRE(open->size() == 1);
  CHECK((*open)[0].id == "lea_b");
  CHECK((*open)[0].assignment_json == R"({"id":"lea_b"})");
  CHECK((*open)[0].client_index == 1);
}

TEST_CASE("lease store: a draw's open leases close as expired or abandoned, and only that draw's") {
  ManualClock clock;
  auto store = open_store(":memory:", clock);
  enroll(*store, 3);
  REQUIRE(store->create_leases({make_lease("lea_0", "cli_0", 0), make_lease("lea_1", "cli_1", 1),
                                make_lease("lea_2", "cli_2", 2, /*attempt=*/1)})
              .is_ok());
  REQUIRE(store->record_lease_report("lea_0", "{}", "p", "s", 2000).ok());
  auto closed = store->close_round_leases("grp_1", 3, 0, LeaseState::kExpired, 3000);
  REQUIRE(closed.ok());
  CHECK(*closed == 1);
  auto draw = store->list_round_leases("grp_1", 3, 0);
  REQUIRE(draw.ok());
  REQUIRE(draw->size() == 2);
  CHECK((*draw)[0].state == LeaseState::kReported);
  CHECK((*draw)[1].state == LeaseState::kExpired);
  CHECK(store->get_lease("lea_2")->state == LeaseState::kOpen);  // another draw
  CHECK(store->close_round_leases("grp_1", 3, 1, LeaseState::kOpen, 3000).status().is_invalid_argument());
  CHECK(*store->close_round_leases("grp_1", 3, 1, LeaseState::kAbandoned, 3000) == 1);
  CHECK(store->list_open_leases()->empty());
  CHECK(store->record_lease_report("lea_1", "{}", "p", "s", 4000).status().code() == Status::Code::kFailedPrecondition);
}
