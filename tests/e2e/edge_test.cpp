// The edge of the real binary: sizes and bytes no well-behaved client sends.
#include <catch2/catch.hpp>

#include <nlohmann/json.hpp>

#include "tests/support/http_client.h"
#include "tests/support/mufld_process.h"
#include "tests/support/temp_dir.h"

using namespace mufl::testing;
using nlohmann::json;

TEST_CASE("e2e edge: a body over 1 MiB is 413, malformed HTTP is 400, and the server stays up") {
  TempDir dir;
  const std::string admin = "edge-admin";
  MufldProcess mufld(MUFLD_PATH, dir.path(), admin);
  HttpClient c("127.0.0.1", mufld.port());
  auto t = c.post("/v1/tenants", R"({"name":"edge"})", admin);
  REQUIRE(t.status == 201);
  const std::string token = json::parse(t.body)["token"];

  std::string big = R"({"name":")" + std::string((1 << 20) + 10, 'x') + R"(","dataset":"synthetic","task":"class","rounds":1})";
  std::string raw = "POST /v1/activities HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " + token +
                    "\r\nContent-Type: application/json\r\nContent-Length: " + std::to_string(big.size()) + "\r\n\r\n" + big;
  std::string reply = raw_exchange("127.0.0.1", mufld.port(), raw);
  CHECK(reply.rfind("HTTP/1.1 413", 0) == 0);
  CHECK(reply.find("application/problem+json") != std::string::npos);

  CHECK(raw_exchange("127.0.0.1", mufld.port(), "\x16\x03\x01 not http\r\n\r\n").rfind("HTTP/1.1 400", 0) == 0);
  CHECK(raw_exchange("127.0.0.1", mufld.port(), "GET /v1/activities?state=%zz HTTP/1.1\r\nHost: x\r\n\r\n")
            .rfind("HTTP/1.1 400", 0) == 0);

  // Nothing was stored, and the server still answers.
  HttpClient after("127.0.0.1", mufld.port());
  auto list = after.get("/v1/activities", token);
  REQUIRE(list.status == 200);
  CHECK(json::parse(list.body)["items"].empty());
}
