// FederationPool over a real store: what it tells a job about the federation's clients.
#include "federation/federation_pool.h"

#include <catch2/catch.hpp>

#include "core/random.h"
#include "tests/storage/store_fixtures.h"
#include "tests/support/temp_dir.h"

using namespace mufl;
using namespace mufl::federation;

namespace {

Client make_client(const std::string& id, const std::string& name, int64_t train_samples) {
  Client c;
  c.id = id;
  c.federation_id = "fed_1";
  c.name = name;
  c.train_samples = train_samples;
  c.test_samples = 10;
  c.created_unix_ms = c.last_seen_unix_ms = 2000;
  return c;
}

}  // namespace

TEST_CASE("federation pool: the largest train_samples is a live client's, revoked ones left out") {
  mufl::testing::TempDir dir;
  ManualClock clock;
  auto store = storage::open_store(":memory:", clock);
  REQUIRE(store->create_tenant(storage::make_tenant("ten_a", "a"), "ha").ok());
  Federation f;
  f.id = "fed_1";
  f.owner_tenant_id = "ten_a";
  f.name = "wards";
  f.schema = {1, 28, 28, 10};
  f.enrollment_expires_unix_ms = 9000;
  f.created_unix_ms = f.updated_unix_ms = 1000;
  REQUIRE(store->create_federation(f, "enroll").ok());
  SeededRandom rng(1);
  ClientRegistry clients(*store, clock, rng);
  WorkBoard board;
  LeaseDesk leases(*store, board, clock, rng, dir.path());
  FederationPool pool("fed_1", *store, clients, leases, clock);

  CHECK(*pool.largest_train_samples() == 0);  // nobody enrolled yet
  REQUIRE(store->enroll_client(make_client("cli_1", "small", 300), "t1").ok());
  REQUIRE(store->enroll_client(make_client("cli_2", "large", 900), "t2").ok());
  REQUIRE(store->enroll_client(make_client("cli_3", "middle", 500), "t3").ok());
  CHECK(*pool.largest_train_samples() == 900);
  REQUIRE(store->revoke_client("fed_1", "cli_2", 3000).ok());
  CHECK(*pool.largest_train_samples() == 500);
}
