#include <catch2/catch.hpp>

#include "core/strings.h"

using mufl::split_fields;

TEST_CASE("split_fields: empty fields are kept, and a line without a separator is one field") {
  using V = std::vector<std::string_view>;
  CHECK(split_fields("a,,b", ',') == V{"a", "", "b"});
  CHECK(split_fields("", ',') == V{""});
  CHECK(split_fields("abc", ',') == V{"abc"});
  CHECK(split_fields(",x,", ',') == V{"", "x", ""});
  CHECK(split_fields("T4|A10", '|') == V{"T4", "A10"});
}
