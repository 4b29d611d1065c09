// Merge and split end to end against the real mufld: three compatible activities that arrive
// within the merge window train as one group, the group measures their affinity, splits (or
// keeps them together) after its consolidation rounds, and every activity ends with its own
// model. Tenancy: another tenant sees neither the group nor the activities in it.
#include <catch2/catch.hpp>

#include <signal.h>

#include <chrono>
#include <nlohmann/json.hpp>
#include <thread>

#include "tests/support/http_client.h"
#include "tests/support/json_poll.h"
#include "tests/support/mufld_process.h"
#include "tests/support/temp_dir.h"

using namespace mufl::testing;
using nlohmann::json;

namespace {

const std::string kAdmin = "group-admin";

std::string make_tenant(HttpClient& c, const std::string& name) {
  auto t = c.post("/v1/tenants", R"({"name":")" + name + R"("})", kAdmin);
  REQUIRE(t.status == 201);
  return json::parse(t.body)["token"];
}

bool terminal(const json& a) { return a["state"] == "succeeded" || a["state"] == "failed" || a["state"] == "cancelled"; }

json wait_terminal(HttpClient& c, const std::string& token, const std::string& id) {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(180);
  json a;
  while (std::chrono::steady_clock::now() < deadline) {
    a = json::parse(c.get("/v1/activities/" + id, token).body);
    if (terminal(a)) return a;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  FAIL("activity " << id << " did not finish in 180 s: " << a.dump());
  return a;
}

std::string spec(const std::string& task) {
  return R"({"name":")" + task + R"(","dataset":"synthetic","task":")" + task +
         R"(","rounds":6,"clients":4,"clients_per_round":1,"seed":3})";
}

}  // namespace

TEST_CASE("e2e groups: compatible activities merge, measure affinity, split, and each gets its model") {
  TempDir dir;
  MufldProcess mufld(MUFLD_PATH, dir.path(), kAdmin,
                     {"--devices", "cpu:1", "--torch-threads", "1", "--merge-window", "1", "--affinity-every", "4",
                      "--consolidation-fraction", "0.34"});
  HttpClient c("127.0.0.1", mufld.port());
  const std::string token = make_tenant(c, "merger");
  std::vector<std::string> ids;
  for (const char* task : {"class", "class", "segment"}) {
    auto r = c.post("/v1/activities", spec(task), token);
    REQUIRE(r.status == 201);
    ids.push_back(json::parse(r.body)["id"]);
  }
  // A merge: false activity trains alone, in a group of its own.
  auto alone = c.post("/v1/activities",
                      R"({"name":"alone","dataset":"synthetic","task":"parity","rounds":2,"clients":4,"merge":false})",
                      token);
  REQUIRE(alone.status == 201);
  const std::string alone_id = json::parse(alone.body)["id"];

  std::vector<json> done;
  for (const auto& id : ids) done.push_back(wait_terminal(c, token, id));
  const json alone_done = wait_terminal(c, token, alone_id);
  for (const auto& a : done) {
    REQUIRE(a["state"] == "succeeded");
    CHECK(a["progress"]["round"] == 6);
    REQUIRE(a["groups"].is_array());
    REQUIRE(a["groups"].size() >= 1);
  }
  // All three started in the same group.
  const std::string root = done[0]["groups"][0];
  for (const auto& a : done) CHECK(a["groups"][0] == root);
  REQUIRE(alone_done["state"] == "succeeded");
  CHECK(alone_done["groups"].size() == 1);
  CHECK(alone_done["groups"][0] != root);

  auto g = c.get("/v1/groups/" + root, token);
  REQUIRE(g.status == 200);
  const json group = json::parse(g.body);
  CHECK(group["activities"].size() == 3);
  CHECK(group["other_activities"] == 0);
  CHECK(group["consolidation_rounds"] == 3);  // ceil(0.34 · 6)
  CHECK(group["policy"] == "mufl");
  REQUIRE(group["affinity"]["tasks"].size() == 3);
  REQUIRE(group["affinity"]["matrix"].size() == 3);
  CHECK(group["affinity"]["rounds_measured"] == 3);
  for (const auto& row : group["affinity"]["matrix"]) CHECK(row.size() == 3);
  // The two `class` activities help each other.
  CHECK(group["affinity"]["matrix"][0][1].get<double>() > 0);
  CHECK(group["affinity"]["matrix"][1][0].get<double>() > 0);
  REQUIRE(group["split"].is_object());
  CHECK(group["split"]["round"] == 3);
  const size_t parts = group["split"]["groups"].size();
  CHECK(parts >= 1);
  CHECK(parts <= 3);
  if (parts > 1) {
    CHECK(group["phase"] == "split");
    CHECK(group["split"]["child_groups"].size() == parts);
    for (const auto& child : group["split"]["child_groups"]) {
      auto cg = json::parse(c.get("/v1/groups/" + child.get<std::string>(), token).body);
      CHECK(cg["parent"] == root);
      CHECK(cg["phase"] == "done");
      CHECK(cg["round"] == 6);
    }
    for (const auto& a : done) CHECK(a["groups"].size() == 2);
  } else {
    CHECK(group["phase"] == "done");
  }
  // Every activity has its rounds and its own model.
  for (const auto& id : ids) {
    auto rounds = get_all_items(c, "/v1/activities/" + id + "/rounds", token);
    CHECK(rounds.size() == 6);
    CHECK(c.get("/v1/activities/" + id + "/model", token).status == 200);
  }

  // The list shows the groups; another tenant sees none of them.
  auto list = json::parse(c.get("/v1/groups", token).body)["items"];
  CHECK(list.size() >= 2);
  const std::string other = make_tenant(c, "outsider");
  CHECK(c.get("/v1/groups/" + root, other).status == 404);
  CHECK(json::parse(c.get("/v1/groups", other).body)["items"].empty());
  CHECK(c.get("/v1/groups?phase=nope", token).status == 400);
  // The admin sees every member with its tenant.
  auto admin_view = json::parse(c.get("/v1/groups/" + root, kAdmin).body);
  CHECK(admin_view["activities"][0].contains("tenant_id"));

  auto metrics = c.get("/metrics").body;
  CHECK(metrics.find("mufl_group_events_total{event=\"merge\"} 1") != std::string::npos);
  CHECK(metrics.find("mufl_groups{phase=\"done\"}") != std::string::npos);
  CHECK(mufld.stop(SIGTERM) == 0);
}

namespace {

// Submits the three-activity workload and returns the ids.
std::vector<std::string> submit_workload(HttpClient& c, const std::string& token) {
  std::vector<std::string> ids;
  for (const char* task : {"class", "parity", "segment"}) {
    auto r = c.post("/v1/activities", spec(task), token);
    REQUIRE(r.status == 201);
    ids.push_back(json::parse(r.body)["id"]);
  }
  return ids;
}

const std::vector<std::string> kGroupArgs = {"--devices", "cpu:1", "--torch-threads", "1", "--merge-window", "1",
                                             "--affinity-every", "4", "--consolidation-fraction", "0.5"};

}  // namespace

TEST_CASE("e2e groups: kill -9 during consolidation, restart, same split and final metrics as an unbroken run") {
  // The unbroken run.
  std::vector<json> unbroken;
  json unbroken_split;
  {
    TempDir dir;
    MufldProcess mufld(MUFLD_PATH, dir.path(), kAdmin, kGroupArgs);
    HttpClient c("127.0.0.1", mufld.port());
    const std::string token = make_tenant(c, "steady");
    for (const auto& id : submit_workload(c, token)) unbroken.push_back(wait_terminal(c, token, id));
    unbroken_split = json::parse(c.get("/v1/groups/" + unbroken[0]["groups"][0].get<std::string>(), token).body);
    CHECK(mufld.stop(SIGTERM) == 0);
  }
  // The same workload, killed while its group consolidates.
  TempDir dir;
  std::string token;
  std::vector<std::string> ids;
  {
    MufldProcess mufld(MUFLD_PATH, dir.path(), kAdmin, kGroupArgs);
    HttpClient c("127.0.0.1", mufld.port());
    token = make_tenant(c, "crashy");
    ids = submit_workload(c, token);
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(120);
    json a;
    do {
      a = json::parse(c.get("/v1/activities/" + ids[0], token).body);
      if (a["progress"]["round"].get<int>() >= 1) break;
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    } while (std::chrono::steady_clock::now() < deadline);
    REQUIRE(a["state"] == "consolidating");
    CHECK(mufld.stop(SIGKILL) == 128 + SIGKILL);
  }
  MufldProcess again(MUFLD_PATH, dir.path(), kAdmin, kGroupArgs);
  HttpClient c("127.0.0.1", again.port());
  for (size_t i = 0; i < ids.size(); ++i) {
    const json a = wait_terminal(c, token, ids[i]);
    REQUIRE(a["state"] == "succeeded");
    const std::string task = a["task"];
    const json m = a["progress"]["latest"]["metrics"][task], u = unbroken[i]["progress"]["latest"]["metrics"][task];
    CHECK(m["loss"].get<double>() == Approx(u["loss"].get<double>()).margin(1e-5));
    CHECK(get_all_items(c, "/v1/activities/" + ids[i] + "/rounds", token).size() == 6);
  }
  const json resumed = json::parse(c.get("/v1/groups/" + json::parse(c.get("/v1/activities/" + ids[0], token).body)["groups"][0].get<std::string>(), token).body);
  CHECK(resumed["split"]["score"].get<double>() == Approx(unbroken_split["split"]["score"].get<double>()).margin(1e-9));
  CHECK(resumed["split"]["groups"].size() == unbroken_split["split"]["groups"].size());
  CHECK(again.stop(SIGTERM) == 0);
}

TEST_CASE("e2e groups: the four policies train the same workload, each activity reports its metric") {
  for (const std::string policy : {"mufl", "all_in_one", "independent", "sequential"}) {
    INFO("policy " << policy);
    TempDir dir;
    MufldProcess mufld(MUFLD_PATH, dir.path(), kAdmin,
                       {"--devices", "cpu:2", "--torch-threads", "1", "--merge-window", "1", "--grouping", policy,
                        "--affinity-every", "4", "--consolidation-fraction", "0.5"});
    HttpClient c("127.0.0.1", mufld.port());
    const std::string token = make_tenant(c, "policy");
    std::vector<std::string> ids;
    for (const char* task : {"class", "reconstruct"}) {
      auto r = c.post("/v1/activities",
                      R"({"name":"p","dataset":"synthetic","task":")" + std::string(task) +
                          R"(","rounds":2,"clients":4,"clients_per_round":1,"seed":1})",
                      token);
      REQUIRE(r.status == 201);
      ids.push_back(json::parse(r.body)["id"]);
    }
    std::vector<json> done;
    for (const auto& id : ids) done.push_back(wait_terminal(c, token, id));
    for (const auto& a : done) {
      REQUIRE(a["state"] == "succeeded");
      const std::string task = a["task"];
      CHECK(a["progress"]["latest"]["metrics"][task]["loss"].is_number());
      CHECK(c.get("/v1/activities/" + a["id"].get<std::string>() + "/model", token).status == 200);
    }
    const bool merged = done[0]["groups"][0] == done[1]["groups"][0];
    CHECK(merged == (policy == "mufl" || policy == "all_in_one"));
    const json root = json::parse(c.get("/v1/groups/" + done[0]["groups"][0].get<std::string>(), token).body);
    CHECK(root["policy"] == policy);
    if (policy == "all_in_one") {
      CHECK(root["split"].is_null());
      CHECK(done[0]["groups"].size() == 1);
    }
    if (policy == "mufl") CHECK(root["split"].is_object());
    CHECK(mufld.stop(SIGTERM) == 0);
  }
}

TEST_CASE("e2e groups: cancelling one member of a merged group leaves the others training") {
  TempDir dir;
  MufldProcess mufld(MUFLD_PATH, dir.path(), kAdmin, kGroupArgs);
  HttpClient c("127.0.0.1", mufld.port());
  const std::string token = make_tenant(c, "canceller");
  const auto ids = submit_workload(c, token);
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(120);
  while (json::parse(c.get("/v1/activities/" + ids[1], token).body)["progress"]["round"].get<int>() < 1 &&
         std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  auto cancelled = c.del("/v1/activities/" + ids[1], token);
  REQUIRE(cancelled.status == 200);
  CHECK(json::parse(cancelled.body)["state"] == "cancelled");
  CHECK(wait_terminal(c, token, ids[0])["state"] == "succeeded");
  CHECK(wait_terminal(c, token, ids[2])["state"] == "succeeded");
  const json gone = json::parse(c.get("/v1/activities/" + ids[1], token).body);
  CHECK(gone["state"] == "cancelled");
  CHECK(gone["progress"]["round"].get<int>() < 6);
  const json root = json::parse(c.get("/v1/groups/" + gone["groups"][0].get<std::string>(), token).body);
  bool left = false;
  for (const auto& m : root["activities"])
    if (m["id"] == ids[1]) left = m["left_round"].is_number();
  CHECK(left);
  CHECK(mufld.stop(SIGTERM) == 0);
}

TEST_CASE("e2e groups: tenants share a group but see only their own activities in it") {
  TempDir dir;
  MufldProcess mufld(MUFLD_PATH, dir.path(), kAdmin, kGroupArgs);
  HttpClient c("127.0.0.1", mufld.port());
  const std::string alice = make_tenant(c, "alice"), bob = make_tenant(c, "bob");
  const auto body = [](const char* task) {
    return R"({"name":"t","dataset":"synthetic","task":")" + std::string(task) +
           R"(","rounds":2,"clients":4,"clients_per_round":1,"seed":3})";
  };
  const std::string a = json::parse(c.post("/v1/activities", body("class"), alice).body)["id"];
  const std::string b = json::parse(c.post("/v1/activities", body("parity"), bob).body)["id"];
  const json da = wait_terminal(c, alice, a), db = wait_terminal(c, bob, b);
  REQUIRE(da["state"] == "succeeded");
  REQUIRE(db["state"] == "succeeded");
  const std::string root = da["groups"][0];
  CHECK(db["groups"][0] == root);  // merged across tenants (the default)

  const json seen_by_alice = json::parse(c.get("/v1/groups/" + root, alice).body);
  REQUIRE(seen_by_alice["activities"].size() == 1);
  CHECK(seen_by_alice["activities"][0]["id"] == a);
  CHECK_FALSE(seen_by_alice["activities"][0].contains("tenant_id"));
  CHECK(seen_by_alice["other_activities"] == 1);
  for (const auto& t : seen_by_alice["affinity"]["tasks"]) CHECK((t["activity_id"] == a || t["activity_id"] == "other"));
  CHECK(seen_by_alice.dump().find(b) == std::string::npos);  // bob's id appears nowhere
  // Alice cannot read bob's activity through the group either.
  CHECK(c.get("/v1/activities/" + b, alice).status == 404);

  const json seen_by_admin = json::parse(c.get("/v1/groups/" + root, kAdmin).body);
  CHECK(seen_by_admin["activities"].size() == 2);
  CHECK(seen_by_admin["other_activities"] == 0);
  CHECK(mufld.stop(SIGTERM) == 0);
}

TEST_CASE("e2e groups: with merging across tenants off, tenants train apart") {
  TempDir dir;
  auto args = kGroupArgs;
  args.insert(args.end(), {"--merge-across-tenants", "false"});
  MufldProcess mufld(MUFLD_PATH, dir.path(), kAdmin, args);
  HttpClient c("127.0.0.1", mufld.port());
  const std::string alice = make_tenant(c, "alice"), bob = make_tenant(c, "bob");
  const std::string body = R"({"name":"t","dataset":"synthetic","task":"class","rounds":1,"clients":4,"clients_per_round":1})";
  const std::string a = json::parse(c.post("/v1/activities", body, alice).body)["id"];
  const std::string b = json::parse(c.post("/v1/activities", body, bob).body)["id"];
  const json da = wait_terminal(c, alice, a), db = wait_terminal(c, bob, b);
  CHECK(da["groups"][0] != db["groups"][0]);
  CHECK(mufld.stop(SIGTERM) == 0);
}

TEST_CASE("e2e groups: a late compatible arrival joins a consolidating group with a fresh head") {
  TempDir dir;
  MufldProcess mufld(MUFLD_PATH, dir.path(), kAdmin,
                     {"--devices", "cpu:1", "--torch-threads", "1", "--affinity-every", "4",
                      "--consolidation-fraction", "0.5"});
  HttpClient c("127.0.0.1", mufld.port());
  const std::string token = make_tenant(c, "late");
  const auto body = [](const char* task, int rounds) {
    return R"({"name":"t","dataset":"synthetic","task":")" + std::string(task) + R"(","rounds":)" +
           std::to_string(rounds) + R"(,"clients":4,"clients_per_round":1,"seed":3})";
  };
  const std::string first = json::parse(c.post("/v1/activities", body("class", 8), token).body)["id"];
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(120);
  while (json::parse(c.get("/v1/activities/" + first, token).body)["progress"]["round"].get<int>() < 1 &&
         std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  // The only device is busy with the first activity's group: the late one joins it.
  const std::string late = json::parse(c.post("/v1/activities", body("segment", 3), token).body)["id"];
  const json a = wait_terminal(c, token, first), b = wait_terminal(c, token, late);
  REQUIRE(a["state"] == "succeeded");
  REQUIRE(b["state"] == "succeeded");
  CHECK(b["groups"][0] == a["groups"][0]);
  CHECK(b["progress"]["round"] == 3);
  const json g = json::parse(c.get("/v1/groups/" + a["groups"][0].get<std::string>(), token).body);
  REQUIRE(g["activities"].size() == 2);
  CHECK(g["activities"][1]["id"] == late);
  CHECK(g["activities"][1]["joined_round"].get<int>() >= 1);
  CHECK(g["activities"][1]["joined_round"].get<int>() < 4);
  CHECK(json::parse(c.get("/v1/groups", token).body)["items"].size() >= 1);
  CHECK(c.get("/metrics").body.find("mufl_group_events_total{event=\"join\"} 1") != std::string::npos);
  CHECK(mufld.stop(SIGTERM) == 0);
}
