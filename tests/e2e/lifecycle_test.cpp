// End to end against the real mufld binary: the lifecycle a tenant drives with curl, the
// dashboard files, and /metrics through promtool when it is installed.
#include <catch2/catch.hpp>

#include <signal.h>

#include <nlohmann/json.hpp>
#include <fstream>
#include <regex>

#include "tests/support/http_client.h"
#include "tests/support/mufld_process.h"
#include "tests/support/temp_dir.h"

using namespace mufl::testing;
using nlohmann::json;

namespace {
const std::string kAdmin = "e2e-admin-token";
}

TEST_CASE("e2e: a tenant submits, lists and cancels, then SIGTERM exits 0") {
  TempDir dir;
  MufldProcess mufld(MUFLD_PATH, dir.path(), kAdmin, {"--threads", "2"});
  HttpClient c("127.0.0.1", mufld.port());

  REQUIRE(c.get("/healthz").status == 200);
  REQUIRE(c.get("/readyz").status == 200);

  auto t = c.post("/v1/tenants", R"({"name":"vision","quotas":{"max_active_activities":10}})", kAdmin);
  REQUIRE(t.status == 201);
  const std::string token = json::parse(t.body)["token"];

  auto a = c.post("/v1/activities", R"({"name":"digits","dataset":"synthetic","task":"class","rounds":1000})", token);
  REQUIRE(a.status == 201);
  const std::string id = json::parse(a.body)["id"];
  CHECK(a.header("location") == "/v1/activities/" + id);
  CHECK(a.header("content-type") == "application/json");

  auto list = c.get("/v1/activities", token);
  REQUIRE(list.status == 200);
  REQUIRE(json::parse(list.body)["items"].size() == 1);
  CHECK(json::parse(list.body)["items"][0]["id"] == id);

  auto c1 = c.del("/v1/activities/" + id, token);
  REQUIRE(c1.status == 200);
  CHECK(json::parse(c1.body)["state"] == "cancelled");
  auto c2 = c.del("/v1/activities/" + id, token);
  CHECK(c2.status == 200);
  CHECK(json::parse(c2.body)["state"] == "cancelled");

  auto unauth = c.get("/v1/activities", "wrong");
  CHECK(unauth.status == 401);
  CHECK(unauth.header("www-authenticate").rfind("Bearer", 0) == 0);
  CHECK(unauth.header("content-type") == "application/problem+json");

  CHECK(mufld.stop(SIGTERM) == 0);
}

TEST_CASE("e2e: the dashboard page and every file it loads are served") {
  TempDir dir;
  MufldProcess mufld(MUFLD_PATH, dir.path(), kAdmin);
  HttpClient c("127.0.0.1", mufld.port());
  auto page = c.get("/");
  REQUIRE(page.status == 200);
  CHECK(page.header("content-type").rfind("text/html", 0) == 0);
  std::regex ref(R"re((?:src|href)="(/assets/[^"]+)")re");
  int loaded = 0;
  for (std::sregex_iterator it(page.body.begin(), page.body.end(), ref), end; it != end; ++it) {
    std::string path = (*it)[1];
    auto asset = c.get(path);
    INFO(path);
    CHECK(asset.status == 200);
    CHECK_FALSE(asset.body.empty());
    ++loaded;
  }
  CHECK(loaded >= 2);  // the script and the style sheet
}

TEST_CASE("e2e: /metrics passes promtool check metrics") {
  TempDir dir;
  // No training device: the activity must still be queued when /metrics is read (with one, a
  // group could form and start between the submit and the scrape).
  MufldProcess mufld(MUFLD_PATH, dir.path(), kAdmin, {"--devices", "none"});
  HttpClient c("127.0.0.1", mufld.port());
  auto t = c.post("/v1/tenants", R"({"name":"m"})", kAdmin);
  REQUIRE(t.status == 201);
  c.post("/v1/activities", R"({"name":"x","dataset":"synthetic","task":"class","rounds":1})",
         json::parse(t.body)["token"]);
  c.get("/nowhere");
  auto m = c.get("/metrics");
  REQUIRE(m.status == 200);
  CHECK(m.body.find("mufl_http_requests_total{") != std::string::npos);
  CHECK(m.body.find("mufl_activities{state=\"queued\"} 1") != std::string::npos);

  std::string out;
  if (run_command("command -v promtool", out) != 0) {
    WARN("promtool is not installed (Debian package prometheus): metrics not linted");
    return;
  }
  const std::string file = dir.file("metrics.txt");
  std::ofstream(file) << m.body;
  int rc = run_command("promtool check metrics < " + file, out);
  INFO(out);
  CHECK(rc == 0);
  CHECK(out.find("ERROR") == std::string::npos);
}
