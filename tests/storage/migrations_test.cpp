#include "storage/migrations.h"

#include <catch2/catch.hpp>

#include "storage/sqlite_db.h"
#include "storage/sqlite_store.h"
#include "tests/support/temp_dir.h"

using namespace mufl;
using namespace mufl::storage;

TEST_CASE("migrations: numbered from 1 without gaps") {
  const auto& all = all_migrations();
  REQUIRE_FALSE(all.empty());
  for (size_t i = 0; i < all.size(); ++i) CHECK(all[i].version == static_cast<int>(i + 1));
  CHECK(latest_schema_version() == all.back().version);
}

TEST_CASE("migrations: applied once, and a second run is a no-op") {
  auto conn = Connection::open(":memory:", false, "FULL", 1000);
  REQUIRE(conn.ok());
  CHECK(current_schema_version(**conn) == 0);
  REQUIRE(migrate(**conn, 1).is_ok());
  CHECK(current_schema_version(**conn) == latest_schema_version());
  REQUIRE(migrate(**conn, 2).is_ok());
  auto st = (*conn)->prepare("SELECT COUNT(*) FROM schema_migrations");
  REQUIRE(st.ok());
  REQUIRE(*(*st)->step());
  CHECK((*st)->column_int64(0) == latest_schema_version());
}

TEST_CASE("migrations: a database from a newer mufld is refused, not touched") {
  testing::TempDir dir;
  std::string path = dir.file("newer.db");
  {
    auto conn = Connection::open(path, false, "FULL", 1000);
    REQUIRE(conn.ok());
    REQUIRE(migrate(**conn, 1).is_ok());
    std::string sql = "INSERT INTO schema_migrations(version, name, applied_ms) VALUES (" +
                      std::to_string(latest_schema_version() + 1) + ", 'from the future', 0)";
    REQUIRE((*conn)->exec(sql).is_ok());
  }
  ManualClock clock;
  StoreOptions o;
  o.path = path;
  auto store = SqliteStore::open(o, clock);
  REQUIRE_FALSE(store.ok());
  CHECK(store.status().code() == Status::Code::kFailedPrecondition);
}
