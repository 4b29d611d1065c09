// /metrics on the real mufld: public on the main port by default; on a listener of its own with
// --metrics-listen (the main port then answers 404 for it); behind a bearer token with
// --metrics-token, MUFL_METRICS_TOKEN or --metrics-token-file (401 problem+json without it or
// with another token); and a token file that is not usable stops mufld at start.
#include <catch2/catch.hpp>

#include <signal.h>

#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <string>

#include "tests/support/http_client.h"
#include "tests/support/mufld_process.h"
#include "tests/support/temp_dir.h"

using namespace mufl::testing;
using nlohmann::json;

namespace {

const std::string kAdmin = "metrics-admin-token";

bool is_exposition(const ClientResponse& r) {
  return r.status == 200 && r.header("content-type").rfind("text/plain", 0) == 0 &&
         r.body.find("# TYPE mufl_build_info gauge") != std::string::npos;
}

// A 401 problem+json that asks for a bearer token.
void check_unauthorized(const ClientResponse& r) {
  CHECK(r.status == 401);
  CHECK(r.header("content-type") == "application/problem+json");
  CHECK(r.header("www-authenticate").rfind("Bearer", 0) == 0);
  CHECK(r.body.find("mufl_") == std::string::npos);  // no series leak out
  const json p = json::parse(r.body);
  CHECK(p["status"] == 401);
  CHECK(p["detail"].is_string());
}

// GET /metrics with `authorization` as the whole header value ("" sends none).
ClientResponse scrape(uint16_t port, const std::string& authorization) {
  HttpClient c("127.0.0.1", port);
  std::map<std::string, std::string> headers;
  if (!authorization.empty()) headers["Authorization"] = authorization;
  auto r = c.send("GET", "/metrics", "", headers);
  REQUIRE(r.ok());
  return *r;
}

}  // namespace

TEST_CASE("e2e metrics: by default /metrics is public on the main port") {
  TempDir dir;
  MufldProcess mufld(MUFLD_PATH, dir.path(), kAdmin, {"--devices", "none"});
  CHECK(mufld.metrics_port() == 0);
  CHECK(is_exposition(scrape(mufld.port(), "")));
  CHECK(is_exposition(scrape(mufld.port(), "Bearer anything")));  // a token is not looked at
}

TEST_CASE("e2e metrics: --metrics-listen moves /metrics to its own port and the main port answers 404") {
  TempDir dir;
  MufldProcess mufld(MUFLD_PATH, dir.path(), kAdmin, {"--devices", "none", "--metrics-listen", "127.0.0.1:0"});
  REQUIRE(mufld.metrics_port() != 0);
  CHECK(mufld.metrics_port() != mufld.port());

  HttpClient api("127.0.0.1", mufld.port());
  CHECK(api.get("/healthz").status == 200);
  auto moved = api.get("/metrics");
  CHECK(moved.status == 404);
  CHECK(moved.header("content-type") == "application/problem+json");

  // The metrics port serves /metrics, counts the API's requests, and serves nothing else.
  const auto m = scrape(mufld.metrics_port(), "");
  REQUIRE(is_exposition(m));
  CHECK(m.body.find("route=\"/healthz\"") != std::string::npos);
  HttpClient metrics("127.0.0.1", mufld.metrics_port());
  CHECK(metrics.get("/healthz").status == 404);
  CHECK(metrics.get("/v1/me", kAdmin).status == 404);
  CHECK(metrics.post("/metrics", "", "").status == 405);

  CHECK(mufld.stop(SIGTERM) == 0);  // both listeners stop cleanly
}

TEST_CASE("e2e metrics: --metrics-token makes /metrics require the bearer token") {
  TempDir dir;
  const std::string token = "scrape-secret-1234";
  SECTION("on the main port, from the flag") {
    MufldProcess mufld(MUFLD_PATH, dir.path(), kAdmin, {"--devices", "none", "--metrics-token", token});
    check_unauthorized(scrape(mufld.port(), ""));
    check_unauthorized(scrape(mufld.port(), "Bearer wrong-token"));
    check_unauthorized(scrape(mufld.port(), "Bearer " + token + "x"));
    check_unauthorized(scrape(mufld.port(), "Bearer " + kAdmin));  // the admin token is not the metrics token
    check_unauthorized(scrape(mufld.port(), "Basic " + token));
    CHECK(is_exposition(scrape(mufld.port(), "Bearer " + token)));
    HttpClient api("127.0.0.1", mufld.port());
    CHECK(api.get("/healthz").status == 200);  // the rest of the API is as it was
    CHECK(api.get("/v1/me", kAdmin).status == 200);
  }
  SECTION("on its own port, from a file with a trailing newline") {
    const std::string file = dir.file("metrics.token");
    std::ofstream(file) << token << "\n";
    MufldProcess mufld(MUFLD_PATH, dir.path(), kAdmin,
                       {"--devices", "none", "--metrics-listen", "127.0.0.1:0", "--metrics-token-file", file});
    REQUIRE(mufld.metrics_port() != 0);
    check_unauthorized(scrape(mufld.metrics_port(), ""));
    check_unauthorized(scrape(mufld.metrics_port(), "Bearer nope"));
    CHECK(is_exposition(scrape(mufld.metrics_port(), "Bearer " + token)));
    CHECK(scrape(mufld.port(), "Bearer " + token).status == 404);
  }
}

TEST_CASE("e2e metrics: an empty or missing --metrics-token-file stops mufld with a message") {
  TempDir dir;
  const std::string empty = dir.file("empty.token");
  std::ofstream(empty) << "\n";
  for (const std::string& file : {empty, dir.file("missing.token")}) {
    INFO(file);
    std::string output;
    const int rc = run_command(std::string(MUFLD_PATH) + " --listen 127.0.0.1:0 --devices none --data-dir " +
                                   dir.path() + " --metrics-token-file " + file,
                               output);
    CHECK(rc != 0);
    CHECK(output.find("--metrics-token-file") != std::string::npos);
  }
}
