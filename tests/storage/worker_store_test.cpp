// WorkerStore on SQLite: the cluster's worker records survive a reopen, in the order they were
// saved, a save replaces the record of its id, and a delete (also of an unknown id) is OK.
#include <catch2/catch.hpp>

#include "tests/storage/store_fixtures.h"
#include "tests/support/temp_dir.h"

using namespace mufl;
using namespace mufl::storage;

TEST_CASE("worker store: records survive a reopen, a save replaces, a delete removes") {
  mufl::testing::TempDir dir;
  const std::string path = dir.file("mufl.db");
  {
    auto store = open_store(path, SystemClock::instance());
    REQUIRE(store->save_worker({"wrk_a", std::string(64, 'a'), "grp_1", "slurm:n1:v100:0", "41", 1000}).is_ok());
    REQUIRE(store->save_worker({"wrk_b", std::string(64, 'b'), "grp_2", "slurm:n2:v100:0", "42", 2000}).is_ok());
    REQUIRE(store->save_worker({"wrk_a", std::string(64, 'c'), "grp_1", "slurm:n1:v100:1", "43", 3000}).is_ok());
    REQUIRE(store->delete_worker("wrk_unknown").is_ok());
  }
  auto store = open_store(path, SystemClock::instance());
  auto all = store->list_workers();
  REQUIRE(all.ok());
  REQUIRE(all->size() == 2);
  CHECK((*all)[0].id == "wrk_b");  // the replaced record is the newest
  CHECK((*all)[1].id == "wrk_a");
  CHECK((*all)[1].token_sha256 == std::string(64, 'c'));
  CHECK((*all)[1].device == "slurm:n1:v100:1");
  CHECK((*all)[1].slurm_job_id == "43");
  CHECK((*all)[1].created_unix_ms == 3000);
  REQUIRE(store->delete_worker("wrk_b").is_ok());
  all = store->list_workers();
  REQUIRE(all.ok());
  REQUIRE(all->size() == 1);
  CHECK(all->front().id == "wrk_a");
}
