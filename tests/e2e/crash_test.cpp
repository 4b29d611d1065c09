// kill -9 at any moment loses nothing that was acknowledged: many clients submit at once, the
// server is killed mid-stream, and after a restart on the same data dir every activity that got
// a 201 is there, with the same tenants and the same generated admin token.
#include <catch2/catch.hpp>

#include <signal.h>

#include <atomic>
#include <fstream>
#include <mutex>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>
#include <thread>

#include "tests/support/http_client.h"
#include "tests/support/mufld_process.h"
#include "tests/support/temp_dir.h"

using namespace mufl::testing;
using nlohmann::json;

namespace {

std::string read_file(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  std::string s = ss.str();
  while (!s.empty() && s.back() == '\n') s.pop_back();
  return s;
}

}  // namespace

TEST_CASE("e2e crash: SIGKILL during concurrent submits loses no acknowledged activity") {
  TempDir dir;
  std::string admin, token, tenant_id;
  std::set<std::string> acknowledged;
  {
    MufldProcess mufld(MUFLD_PATH, dir.path(), "");  // no env token: it writes admin.token
    admin = read_file(dir.file("admin.token"));
    REQUIRE(admin.rfind("mufl_", 0) == 0);
    HttpClient c("127.0.0.1", mufld.port());
    auto t = c.post("/v1/tenants", R"({"name":"crashy","quotas":{"max_active_activities":1000000}})", admin);
    REQUIRE(t.status == 201);
    token = json::parse(t.body)["token"];
    tenant_id = json::parse(t.body)["id"];

    std::mutex mu;
    std::atomic<int> acked{0};
    std::atomic<bool> stop{false};
    std::vector<std::thread> clients;
    for (int w = 0; w < 4; ++w) {
      clients.emplace_back([&, w] {
        try {
          HttpClient mine("127.0.0.1", mufld.port());
          for (int i = 0; !stop; ++i) {
            std::string body = json{{"name", "w" + std::to_string(w) + "-" + std::to_string(i)},
                                    {"dataset", "synthetic"}, {"task", "class"}, {"rounds", 1}}.dump();
            auto r = mine.post("/v1/activities", body, token);
            if (r.status != 201) continue;
            std::lock_guard lock(mu);
            acknowledged.insert(json::parse(r.body)["id"].get<std::string>());
            ++acked;
          }
        } catch (const std::exception&) {
          // The server died under us: expected once it is killed.
        }
      });
    }
    // Kill once a good number of submits were acknowledged, while the clients keep going.
    while (acked < 200) std::this_thread::yield();
    CHECK(mufld.stop(SIGKILL) == 128 + SIGKILL);
    stop = true;
    for (auto& th : clients) th.join();
  }
  REQUIRE(acknowledged.size() >= 200);

  MufldProcess again(MUFLD_PATH, dir.path(), "");
  HttpClient c("127.0.0.1", again.port());
  CHECK(read_file(dir.file("admin.token")) == admin);
  auto me = c.get("/v1/me", token);
  REQUIRE(me.status == 200);
  CHECK(json::parse(me.body)["tenant"]["id"] == tenant_id);

  std::set<std::string> found;
  std::string target = "/v1/activities?limit=1000";
  while (true) {
    auto page = c.get(target, token);
    REQUIRE(page.status == 200);
    json j = json::parse(page.body);
    for (const auto& a : j["items"]) found.insert(a["id"].get<std::string>());
    if (j["next_cursor"].is_null()) break;
    target = "/v1/activities?limit=1000&cursor=" + j["next_cursor"].get<std::string>();
  }
  size_t missing = 0;
  for (const auto& id : acknowledged) missing += found.count(id) == 0;
  INFO(acknowledged.size() << " acknowledged, " << found.size() << " found after restart");
  CHECK(missing == 0);
  CHECK(c.get("/v1/tenants", admin).status == 200);  // the generated admin token still works

  CHECK(again.stop(SIGTERM) == 0);
}

TEST_CASE("e2e crash: SIGTERM sent the moment mufld says it listens stops it cleanly") {
  // The listening line is printed before the server's loop runs; a signal in between must
  // still take the clean path (exit 0), not the default action (128 + SIGTERM).
  TempDir dir;
  for (int i = 0; i < 5; ++i) {
    MufldProcess mufld(MUFLD_PATH, dir.path(), "admin-token", {"--devices", "none"});
    CHECK(mufld.stop(SIGTERM) == 0);
  }
}
