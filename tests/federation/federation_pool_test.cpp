// FederationPool over a real store: what it tells a job about the federation's clients.
#include "federation/federation_pool.h"

#include <catch2/catch.hpp>

#include "core/random.h"
#include "tests/storage/store_fixtures.h"
#include "tests/support/temp_dir.h"

using namespace mufl;
using namespace mufl::federation;

namespace {

// A client of fed_1 holding `train_samples`.
Client client_with(const std::string& id, int64_t train_samples) {
  Client c = storage::make_client(id, "fed_1", id);
  c.train_samples = train_samples;
  return c;
}

}  // namespace

TEST_CASE("federation pool: the largest train_samples is a live client's, revoked ones left out") {
  mufl::testing::TempDir dir;
  ManualClock clock;
  auto store = storage::open_store(":memory:", clock);
  REQUIRE(store->create_tenant(storage::make_tenant("ten_a", "a"), "ha").ok());
  REQUIRE(store->create_federation(storage::make_federation("fed_1", "ten_a", "wards"), "enroll").ok());
  SeededRandom rng(1);
  ClientRegistry clients(*store, clock, rng);
  WorkBoard board;
  LeaseDesk leases(*store, board, clock, rng, dir.path());
  FederationPool pool("fed_1", *store, clients, leases, clock);

  CHECK(*pool.largest_train_samples() == 0);  // nobody enrolled yet
  REQUIRE(store->enroll_client(client_with("cli_1", 300), "t1").ok());
  REQUIRE(store->enroll_client(client_with("cli_2", 900), "t2").ok());
  REQUIRE(store->enroll_client(client_with("cli_3", 500), "t3").ok());
  CHECK(*pool.largest_train_samples() == 900);
  REQUIRE(store->revoke_client("fed_1", "cli_2", 3000).ok());
  CHECK(*pool.largest_train_samples() == 500);
}
