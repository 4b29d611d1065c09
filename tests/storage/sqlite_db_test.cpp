#include "storage/sqlite_db.h"

#include <catch2/catch.hpp>

using namespace mufl;
using namespace mufl::storage;

namespace {

std::unique_ptr<Connection> open_db() {
  auto c = Connection::open(":memory:", false, "FULL", 1000);
  REQUIRE(c.ok());
  REQUIRE((*c)->exec("CREATE TABLE t(a INTEGER, b TEXT)").is_ok());
  return std::move(*c);
}

int64_t count_rows(Connection& c) {
  auto st = c.prepare("SELECT COUNT(*) FROM t");
  REQUIRE(st.ok());
  auto row = (*st)->step();
  REQUIRE(row.ok());
  return (*st)->column_int64(0);
}

}  // namespace

TEST_CASE("sqlite_db: a bind with an index out of range makes run() fail and runs nothing") {
  auto c = open_db();
  {
    auto st = c->prepare("INSERT INTO t(a, b) VALUES(?, ?)");
    REQUIRE(st.ok());
    Status s = (*st)->bind(1, int64_t{1}).bind(3, "three").bind(2, "two").run();
    CHECK(s.code() == Status::Code::kInternal);
    CHECK_THAT(s.message(), Catch::Contains("bind parameter 3 of 2"));
    CHECK_THAT(s.message(), Catch::Contains("column index out of range"));
    CHECK_THAT(s.message(), Catch::Contains("INSERT INTO t"));
    // step() keeps saying so until the use ends.
    CHECK((*st)->step().status().code() == Status::Code::kInternal);
  }
  CHECK(count_rows(*c) == 0);

  // The next use of the same cached statement starts clean.
  auto st = c->prepare("INSERT INTO t(a, b) VALUES(?, ?)");
  REQUIRE(st.ok());
  CHECK((*st)->bind(1, int64_t{2}).bind(2, "two").run().is_ok());
  CHECK(count_rows(*c) == 1);
}

TEST_CASE("sqlite_db: the first failing bind is the one reported, for every kind of value") {
  auto c = open_db();
  auto st = c->prepare("SELECT ?");
  REQUIRE(st.ok());
  SECTION("int64") { (*st)->bind(0, int64_t{1}).bind(5, int64_t{2}); }
  SECTION("double") { (*st)->bind(0, 1.5).bind(5, int64_t{2}); }
  SECTION("text") { (*st)->bind(0, "x").bind(5, int64_t{2}); }
  SECTION("null") { (*st)->bind_null(0).bind(5, int64_t{2}); }
  auto r = (*st)->step();
  REQUIRE_FALSE(r.ok());
  CHECK(r.status().code() == Status::Code::kInternal);
  CHECK_THAT(r.status().message(), Catch::Contains("bind parameter 0 of 1"));
}
