#include "core/time_format.h"

#include <catch2/catch.hpp>

using mufl::format_rfc3339;
using mufl::parse_rfc3339;

TEST_CASE("time: formats UTC with milliseconds") {
  CHECK(format_rfc3339(0) == "1970-01-01T00:00:00.000Z");
  CHECK(format_rfc3339(1'767'225'600'123) == "2026-01-01T00:00:00.123Z");
  CHECK(format_rfc3339(951'782'400'000) == "2000-02-29T00:00:00.000Z");
}

TEST_CASE("time: parses what it formats, and offsets") {
  CHECK(parse_rfc3339("2026-01-01T00:00:00.123Z") == 1'767'225'600'123);
  CHECK(parse_rfc3339("2026-01-01T00:00:00Z") == 1'767'225'600'000);
  CHECK(parse_rfc3339("2026-01-01T01:30:00+01:30") == 1'767'225'600'000);
  CHECK(parse_rfc3339("2025-12-31T19:00:00-05:00") == 1'767'225'600'000);
  CHECK(parse_rfc3339("2026-01-01t00:00:00.5z") == 1'767'225'600'500);
  CHECK(parse_rfc3339("2000-02-29T00:00:00Z") == 951'782'400'000);
}

TEST_CASE("time: rejects what is not a timestamp") {
  for (const char* bad : {"", "2026-01-01", "2026-01-01T00:00:00", "2026-13-01T00:00:00Z", "2026-02-30T00:00:00Z",
                          "2025-02-29T00:00:00Z", "2026-01-01T24:00:00Z", "2026-01-01T00:00:00.Z",
                          "2026-01-01T00:00:00Zjunk", "tomorrow at noon", "2026-01-01T00:00:00+0100"}) {
    INFO(bad);
    CHECK_FALSE(parse_rfc3339(bad).has_value());
  }
}
