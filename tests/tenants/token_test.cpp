#include "tenants/token.h"

#include <catch2/catch.hpp>

#include <set>

#include "core/random.h"

using namespace mufl;
using namespace mufl::tenants;

TEST_CASE("token: mufl_ prefix and 43 base64url characters (256 bits)") {
  SecureRandom rng;
  std::set<std::string> seen;
  for (int i = 0; i < 200; ++i) {
    std::string t = generate_token(rng);
    REQUIRE(t.size() == 5 + 43);
    CHECK(t.rfind("mufl_", 0) == 0);
    for (char c : t.substr(5)) CHECK((std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_'));
    seen.insert(t);
  }
  CHECK(seen.size() == 200);
}

TEST_CASE("token: sha256_hex matches the standard test vectors") {
  CHECK(sha256_hex("") == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  CHECK(sha256_hex("abc") == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
}

TEST_CASE("token: constant_time_equal compares content and length") {
  CHECK(constant_time_equal("abc", "abc"));
  CHECK_FALSE(constant_time_equal("abc", "abd"));
  CHECK_FALSE(constant_time_equal("abc", "abcd"));
  CHECK(constant_time_equal("", ""));
}
