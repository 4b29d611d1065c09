#include "storage/transaction.h"

#include <catch2/catch.hpp>

#include <stdexcept>

#include "storage/sqlite_db.h"
#include "tests/support/temp_dir.h"

using namespace mufl;
using namespace mufl::storage;

namespace {

std::unique_ptr<Connection> open_db(const std::string& path) {
  auto c = Connection::open(path, false, "FULL", 1000);
  REQUIRE(c.ok());
  REQUIRE((*c)->exec("CREATE TABLE IF NOT EXISTS t(v INTEGER)").is_ok());
  return std::move(*c);
}

std::vector<int64_t> values(Connection& c) {
  std::vector<int64_t> out;
  auto st = c.prepare("SELECT v FROM t ORDER BY v");
  REQUIRE(st.ok());
  for (;;) {
    auto row = (*st)->step();
    REQUIRE(row.ok());
    if (!*row) break;
    out.push_back((*st)->column_int64(0));
  }
  return out;
}

Status insert(Connection& c, int64_t v) {
  auto st = c.prepare("INSERT INTO t(v) VALUES(?)");
  if (!st.ok()) return st.status();
  return (*st)->bind(1, v).run();
}

}  // namespace

TEST_CASE("transaction: a committed one is kept, one left without commit is rolled back") {
  auto c = open_db(":memory:");
  {
    Transaction txn(*c);
    REQUIRE(txn.begin(Transaction::Mode::kWrite).is_ok());
    REQUIRE(insert(*c, 1).is_ok());
    REQUIRE(txn.commit().is_ok());
  }
  CHECK_FALSE(c->in_transaction());
  {
    Transaction txn(*c);
    REQUIRE(txn.begin(Transaction::Mode::kWrite).is_ok());
    REQUIRE(insert(*c, 2).is_ok());
    CHECK(c->in_transaction());
  }  // returns early: rolled back
  CHECK_FALSE(c->in_transaction());
  CHECK(values(*c) == std::vector<int64_t>{1});
}

TEST_CASE("transaction: a body that throws is rolled back and the connection stays writable") {
  mufl::testing::TempDir dir;
  auto c = open_db(dir.path() + "/t.db");
  auto body = [&] {
    Transaction txn(*c);
    REQUIRE(txn.begin(Transaction::Mode::kWrite).is_ok());
    REQUIRE(insert(*c, 7).is_ok());
    throw std::runtime_error("the body broke");
  };
  CHECK_THROWS_AS(body(), std::runtime_error);
  CHECK_FALSE(c->in_transaction());

  // The next write transaction begins and commits; nothing of the thrown one is visible, also
  // to another connection.
  Transaction txn(*c);
  REQUIRE(txn.begin(Transaction::Mode::kWrite).is_ok());
  REQUIRE(insert(*c, 8).is_ok());
  REQUIRE(txn.commit().is_ok());
  auto other = open_db(dir.path() + "/t.db");
  CHECK(values(*other) == std::vector<int64_t>{8});
}

TEST_CASE("transaction: rollback() ends it at once and the destructor then does nothing") {
  auto c = open_db(":memory:");
  Transaction txn(*c);
  REQUIRE(txn.begin(Transaction::Mode::kRead).is_ok());
  REQUIRE(insert(*c, 3).is_ok());
  txn.rollback();
  CHECK_FALSE(c->in_transaction());
  txn.rollback();  // a no-op
  CHECK(values(*c).empty());
}

TEST_CASE("transaction: begin fails with kUnavailable while another connection holds the write lock") {
  mufl::testing::TempDir dir;
  auto a = open_db(dir.path() + "/t.db");
  auto b = Connection::open(dir.path() + "/t.db", false, "FULL", 10);
  REQUIRE(b.ok());
  Transaction held(*a);
  REQUIRE(held.begin(Transaction::Mode::kWrite).is_ok());
  {
    Transaction txn(**b);
    Status s = txn.begin(Transaction::Mode::kWrite);
    CHECK(s.code() == Status::Code::kUnavailable);
    CHECK_FALSE((*b)->in_transaction());
  }
  held.rollback();
  Transaction txn(**b);
  CHECK(txn.begin(Transaction::Mode::kWrite).is_ok());
}
