#include "core/ids.h"

#include <catch2/catch.hpp>

#include <set>

using namespace mufl;

TEST_CASE("ids: prefix and 20 base32 characters, recognised by looks_like_id") {
  SeededRandom rng(1);
  std::string id = new_id("act", rng);
  CHECK(id.size() == 24);
  CHECK(id.rfind("act_", 0) == 0);
  CHECK(looks_like_id(id, "act"));
  CHECK_FALSE(looks_like_id(id, "ten"));
  CHECK_FALSE(looks_like_id("act_" + std::string(20, 'u'), "act"));  // 'u' is not Crockford base32
  CHECK_FALSE(looks_like_id("act_123", "act"));
  CHECK_FALSE(looks_like_id("../../etc/passwd", "act"));
}

TEST_CASE("ids: the same seed gives the same ids, draws differ") {
  SeededRandom a(42), b(42);
  std::set<std::string> seen;
  for (int i = 0; i < 1000; ++i) {
    std::string x = new_id("t", a);
    CHECK(x == new_id("t", b));
    seen.insert(x);
  }
  CHECK(seen.size() == 1000);
}
