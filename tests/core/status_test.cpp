#include "core/status.h"

#include <catch2/catch.hpp>

#include "core/result.h"

using mufl::Result;
using mufl::Status;

TEST_CASE("Status: ok is ok and carries no message") {
  Status s;
  CHECK(s.is_ok());
  CHECK(s.to_string() == "OK");
}

TEST_CASE("Status: failures keep code, message and field errors") {
  Status s = Status::invalid_argument("bad", {{"rounds", "too big"}, {"name", "missing"}});
  CHECK_FALSE(s.is_ok());
  CHECK(s.is_invalid_argument());
  REQUIRE(s.field_errors().size() == 2);
  CHECK(s.field_errors()[0].field == "rounds");
  CHECK(s.to_string() == "InvalidArgument: bad; rounds: too big; name: missing");
  CHECK(Status::not_found("x").is_not_found());
  CHECK(Status::resource_exhausted("q").code() == Status::Code::kResourceExhausted);
}

TEST_CASE("Result: holds a value or a failure") {
  Result<int> good = 7;
  REQUIRE(good.ok());
  CHECK(*good == 7);
  CHECK(good.status().is_ok());
  Result<int> bad = Status::conflict("taken");
  CHECK_FALSE(bad.ok());
  CHECK(bad.status().code() == Status::Code::kConflict);
  CHECK(bad.status().message() == "taken");
}
