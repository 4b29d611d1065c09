// The REST API end to end in one process: App over an in-memory store, no sockets. Every kind
// of bad input gets its status and problem+json, and none of them changes any state.
#include "service/app.h"

#include <catch2/catch.hpp>

#include <map>
#include <nlohmann/json.hpp>

#include "scheduler/placement/waiting.h"
#include "storage/sqlite_store.h"
#include "tenants/token.h"
#include "tests/service/api_fixture.h"

using namespace mufl;
using namespace mufl::service;
using namespace mufl::test;
using nlohmann::json;

namespace {

json submit_body(const std::string& name = "digits") {
  return {{"name", name}, {"dataset", "synthetic"}, {"task", "class"}, {"rounds", 5}};
}

}  // namespace

TEST_CASE("api: a tenant submits, reads, lists and cancels an activity") {
  Api api;
  auto [tenant_id, token] = api.tenant("vision");

  auto me = api.call("GET", "/v1/me", "", token);
  REQUIRE(me.status == 200);
  CHECK(json::parse(me.body)["tenant"]["id"] == tenant_id);
  CHECK(json::parse(api.call("GET", "/v1/me", "", kAdmin).body)["kind"] == "admin");

  auto created = api.call("POST", "/v1/activities", submit_body().dump(), token);
  REQUIRE(created.status == 201);
  json act = json::parse(created.body);
  CHECK(act["state"] == "queued");
  CHECK(act["tenant_id"] == tenant_id);
  CHECK(act["clients"] == 32);
  CHECK(header(created, "Location") == "/v1/activities/" + act["id"].get<std::string>());

  auto got = api.call("GET", "/v1/activities/" + act["id"].get<std::string>(), "", token);
  REQUIRE(got.status == 200);
  // GET adds the groups it has trained in (none yet), its energy (none yet), whether its
  // budget pauses it and why its group waits (no group yet); the rest is what POST returned.
  json got_json = json::parse(got.body);
  CHECK(got_json["groups"] == json::array());
  CHECK(got_json["energy"]["joules"] == 0);
  CHECK(got_json["paused"].is_null());
  CHECK(got_json["waiting"].is_null());
  CHECK(got_json["waiting_reason"].is_null());
  for (const char* added : {"groups", "energy", "paused", "waiting", "waiting_reason"}) got_json.erase(added);
  CHECK(got_json == act);

  auto list = api.call("GET", "/v1/activities?state=queued", "", token);
  REQUIRE(list.status == 200);
  CHECK(json::parse(list.body)["items"].size() == 1);

  auto cancelled = api.call("DELETE", "/v1/activities/" + act["id"].get<std::string>(), "", token);
  REQUIRE(cancelled.status == 200);
  CHECK(json::parse(cancelled.body)["state"] == "cancelled");
  auto again = api.call("DELETE", "/v1/activities/" + act["id"].get<std::string>(), "", token);
  CHECK(again.status == 200);
  CHECK(json::parse(again.body) == json::parse(cancelled.body));
  CHECK(json::parse(api.call("GET", "/v1/activities?state=queued", "", token).body)["items"].empty());

  auto catalog = api.call("GET", "/v1/catalog", "", token);
  REQUIRE(catalog.status == 200);
  CHECK(json::parse(catalog.body).contains("datasets"));
}

TEST_CASE("api: pagination walks every activity once, newest first") {
  Api api;
  auto [id, token] = api.tenant("pager");
  for (int i = 0; i < 7; ++i)
    REQUIRE(api.call("POST", "/v1/activities", submit_body("a" + std::to_string(i)).dump(), token).status == 201);
  std::vector<std::string> names;
  std::string target = "/v1/activities?limit=3";
  for (int pages = 0; pages < 10; ++pages) {
    json page = json::parse(api.call("GET", target, "", token).body);
    for (const auto& a : page["items"]) names.push_back(a["name"]);
    if (page["next_cursor"].is_null()) break;
    target = "/v1/activities?limit=3&cursor=" + page["next_cursor"].get<std::string>();
  }
  CHECK(names == std::vector<std::string>{"a6", "a5", "a4", "a3", "a2", "a1", "a0"});
}

TEST_CASE("api: bad activity requests name each field and change nothing") {
  Api api;
  auto [id, token] = api.tenant("strict");
  REQUIRE(api.call("POST", "/v1/activities", submit_body("keep").dump(), token).status == 201);
  const json before = api.snapshot();

  SECTION("malformed JSON") {
    json p = problem(api.call("POST", "/v1/activities", "{\"name\": ", token), 400);
    CHECK(p["detail"].get<std::string>().find("JSON") != std::string::npos);
  }
  SECTION("not an object") { problem(api.call("POST", "/v1/activities", "[1,2]", token), 400); }
  SECTION("empty body") { problem(api.call("POST", "/v1/activities", "", token), 400); }
  SECTION("wrong types") {
    json b = submit_body();
    b["rounds"] = "5";
    b["merge"] = "yes";
    auto f = error_fields(problem(api.call("POST", "/v1/activities", b.dump(), token), 400));
    CHECK(has(f, "rounds"));
    CHECK(has(f, "merge"));
  }
  SECTION("unknown fields") {
    json b = submit_body();
    b["gpu_count"] = 8;
    CHECK(error_fields(problem(api.call("POST", "/v1/activities", b.dump(), token), 400)) ==
          std::vector<std::string>{"gpu_count"});
  }
  SECTION("missing required fields") {
    auto f = error_fields(problem(api.call("POST", "/v1/activities", R"({"name":"x"})", token), 400));
    CHECK(f == std::vector<std::string>{"dataset", "task", "rounds"});
  }
  SECTION("out of range numbers") {
    json b = submit_body();
    b["rounds"] = 0;
    b["clients"] = 4;
    b["clients_per_round"] = 9;
    auto f = error_fields(problem(api.call("POST", "/v1/activities", b.dump(), token), 400));
    CHECK(has(f, "rounds"));
    CHECK(has(f, "clients_per_round"));
    b["rounds"] = 10001;
    CHECK(has(error_fields(problem(api.call("POST", "/v1/activities", b.dump(), token), 400)), "rounds"));
  }
  SECTION("unknown data set and task") {
    json b = submit_body();
    b["dataset"] = "imagenet-22k";
    b["task"] = "haiku";
    auto f = error_fields(problem(api.call("POST", "/v1/activities", b.dump(), token), 400));
    CHECK(has(f, "dataset"));
    CHECK(has(f, "task"));
  }
  SECTION("bad client clustering") {
    json b = submit_body();
    b["client_clusters"] = 17;
    b["cluster_round"] = 0;
    auto f = error_fields(problem(api.call("POST", "/v1/activities", b.dump(), token), 400));
    CHECK(f == std::vector<std::string>{"client_clusters", "cluster_round"});
  }
  SECTION("bad list parameters") {
    auto f = error_fields(problem(api.call("GET", "/v1/activities?state=done&limit=0&cursor=abc&sort=x", "", token), 400));
    CHECK(f.size() == 4);
    for (const char* k : {"state", "limit", "cursor", "sort"}) CHECK(has(f, k));
  }
  SECTION("bad Idempotency-Key") {
    auto r = api.call("POST", "/v1/activities", submit_body().dump(), token, {{"idempotency-key", std::string(300, 'k')}});
    CHECK(has(error_fields(problem(r, 400)), "Idempotency-Key"));
  }
  SECTION("bad tenant bodies") {
    auto f = error_fields(problem(api.call("POST", "/v1/tenants", R"({"name":"a b","quotas":{"max_active_activities":"x"}})", kAdmin), 400));
    CHECK(f == std::vector<std::string>{"name", "quotas.max_active_activities"});
    problem(api.call("PATCH", "/v1/tenants/" + id, R"({"quotas":{"max_active_activities":-5}})", kAdmin), 400);
    problem(api.call("POST", "/v1/tenants", "nope", kAdmin), 400);
    problem(api.call("POST", "/v1/tenants", R"({"name":"strict"})", kAdmin), 409);
  }
  CHECK(api.snapshot() == before);
}

TEST_CASE("api: tokens, admin routes, other tenants, unknown routes and methods") {
  Api api;
  auto [a_id, a_token] = api.tenant("a");
  auto [b_id, b_token] = api.tenant("b");
  json act = json::parse(api.call("POST", "/v1/activities", submit_body().dump(), a_token).body);
  const std::string act_path = "/v1/activities/" + act["id"].get<std::string>();
  const json before = api.snapshot();

  auto no_token = api.call("POST", "/v1/activities", submit_body().dump());
  problem(no_token, 401);
  CHECK(header(no_token, "WWW-Authenticate").rfind("Bearer", 0) == 0);
  auto wrong = api.call("DELETE", act_path, "", "mufl_wrong");
  problem(wrong, 401);
  CHECK(header(wrong, "WWW-Authenticate").rfind("Bearer", 0) == 0);

  problem(api.call("POST", "/v1/tenants", R"({"name":"evil"})", a_token), 403);
  problem(api.call("GET", "/v1/tenants", "", a_token), 403);
  problem(api.call("DELETE", "/v1/tenants/" + b_id, "", a_token), 403);
  problem(api.call("POST", "/v1/activities", submit_body().dump(), kAdmin), 403);

  problem(api.call("GET", act_path, "", b_token), 404);
  problem(api.call("DELETE", act_path, "", b_token), 404);
  problem(api.call("GET", "/v1/activities/act_00000000000000000000", "", a_token), 404);
  problem(api.call("GET", "/v1/tenants/ten_00000000000000000000", "", kAdmin), 404);
  problem(api.call("GET", "/v1/nothing", "", a_token), 404);

  auto put = api.call("PUT", act_path, "{}", a_token);
  problem(put, 405);
  CHECK(header(put, "Allow") == "GET, HEAD, DELETE");
  auto del = api.call("DELETE", "/v1/activities", "", a_token);
  problem(del, 405);
  CHECK(header(del, "Allow") == "POST, GET, HEAD");

  CHECK(json::parse(api.call("GET", "/v1/activities", "", b_token).body)["items"].empty());
  CHECK(api.snapshot() == before);
}

TEST_CASE("api: Idempotency-Key replays the first activity, another body is 409") {
  Api api;
  auto [id, token] = api.tenant("idem");
  auto first = api.call("POST", "/v1/activities", submit_body("x").dump(), token, {{"idempotency-key", "k-1"}});
  REQUIRE(first.status == 201);
  CHECK(header(first, "Idempotent-Replayed").empty());
  auto replay = api.call("POST", "/v1/activities", submit_body("x").dump(), token, {{"idempotency-key", "k-1"}});
  REQUIRE(replay.status == 201);
  CHECK(header(replay, "Idempotent-Replayed") == "true");
  CHECK(json::parse(replay.body) == json::parse(first.body));
  const json before = api.snapshot();
  problem(api.call("POST", "/v1/activities", submit_body("y").dump(), token, {{"idempotency-key", "k-1"}}), 409);
  CHECK(api.snapshot() == before);
  CHECK(json::parse(api.call("GET", "/v1/activities", "", token).body)["items"].size() == 1);
}

TEST_CASE("api: the quota gives 429 with a clear detail, and raising it lets the next one in") {
  Api api;
  auto [id, token] = api.tenant("small", 2);
  REQUIRE(api.call("POST", "/v1/activities", submit_body("1").dump(), token).status == 201);
  REQUIRE(api.call("POST", "/v1/activities", submit_body("2").dump(), token).status == 201);
  const json before = api.snapshot();
  json p = problem(api.call("POST", "/v1/activities", submit_body("3").dump(), token), 429);
  CHECK(p["detail"].get<std::string>().find("max_active_activities") != std::string::npos);
  CHECK(api.snapshot() == before);

  auto patched = api.call("PATCH", "/v1/tenants/" + id, R"({"quotas":{"max_active_activities":3}})", kAdmin);
  REQUIRE(patched.status == 200);
  CHECK(json::parse(patched.body)["quotas"]["max_active_activities"] == 3);
  CHECK(api.call("POST", "/v1/activities", submit_body("3").dump(), token).status == 201);
}

TEST_CASE("api: deleting a tenant revokes its token and cancels its activities") {
  Api api;
  auto [id, token] = api.tenant("gone");
  json act = json::parse(api.call("POST", "/v1/activities", submit_body().dump(), token).body);
  REQUIRE(api.call("DELETE", "/v1/tenants/" + id, "", kAdmin).status == 204);
  problem(api.call("GET", "/v1/me", "", token), 401);
  auto seen = api.call("GET", "/v1/activities/" + act["id"].get<std::string>(), "", kAdmin);
  REQUIRE(seen.status == 200);
  CHECK(json::parse(seen.body)["state"] == "cancelled");
  problem(api.call("DELETE", "/v1/tenants/" + id, "", kAdmin), 404);
}

TEST_CASE("api: health, readiness and metrics are public, and metrics count requests by route") {
  Api api;
  CHECK(api.call("GET", "/healthz").status == 200);
  CHECK(api.call("GET", "/readyz").status == 200);
  auto [id, token] = api.tenant("m");
  auto posted = api.call("POST", "/v1/activities", submit_body().dump(), token);
  api.call("GET", "/v1/activities/act_00000000000000000000", "", token);
  // Read twice with no write between: the database answers the first, the read cache the second.
  const std::string path = "/v1/activities/" + json::parse(posted.body)["id"].get<std::string>();
  CHECK(api.call("GET", path, "", token).body == api.call("GET", path, "", token).body);
  auto m = api.call("GET", "/metrics");
  REQUIRE(m.status == 200);
  CHECK(m.content_type.rfind("text/plain; version=0.0.4", 0) == 0);
  for (const char* line : {
           R"(mufl_http_requests_total{code="201",method="POST",route="/v1/activities"} 1)",
           R"(mufl_http_requests_total{code="404",method="GET",route="/v1/activities/{id}"} 1)",
           R"(mufl_activities{state="queued"} 1)",
           R"(mufl_activities{state="cancelled"} 0)",
           R"(mufl_tenants 1)",
           R"(mufl_read_cache_requests_total{result="hit"} 1)",
           R"(mufl_read_cache_requests_total{result="miss"} 2)",
           "mufl_http_request_duration_seconds_bucket{",
           "mufl_build_info{"}) {
    INFO(line);
    CHECK(m.body.find(line) != std::string::npos);
  }
}

TEST_CASE("api: the dashboard page and its assets are served with a CSP") {
  Api api;
  auto page = api.call("GET", "/");
  REQUIRE(page.status == 200);
  CHECK(page.content_type.rfind("text/html", 0) == 0);
  CHECK(header(page, "Content-Security-Policy").find("default-src 'self'") != std::string::npos);
  CHECK(api.call("GET", "/assets/app.js").status == 200);
  CHECK(api.call("GET", "/assets/style.css").status == 200);
  problem(api.call("GET", "/assets/../mufl.db"), 404);
  problem(api.call("GET", "/assets/nope.js"), 404);
}

TEST_CASE("api: bytes that are not UTF-8 anywhere in a request are a 400 that changes nothing") {
  Api api;
  auto [ten, token] = api.tenant("utf8-team");
  const json before = api.snapshot();

  // GET /\xff killed the process before (the 404's detail held the raw byte).
  HttpRequest raw;
  raw.method = "GET";
  raw.path = "/\xff";
  auto target = api.app->handle(std::move(raw));
  CHECK(problem(target, 400)["detail"].get<std::string>().find("path") != std::string::npos);

  auto query = api.call("GET", "/v1/groups?phase=%ff", "", token);
  CHECK(problem(query, 400)["detail"].get<std::string>().find("query parameter 'phase'") != std::string::npos);

  for (const std::string body : {"\xff\xfe", "{\"name\": \"caf\xe9\"}", "{\"name\": \"\xed\xa0\x80\"}"}) {
    auto act = api.call("POST", "/v1/activities", body, token);
    CHECK(problem(act, 400)["detail"].get<std::string>().find("not valid UTF-8") != std::string::npos);
    auto ten_post = api.call("POST", "/v1/tenants", body, kAdmin);
    CHECK(problem(ten_post, 400)["detail"].get<std::string>().find("not valid UTF-8") != std::string::npos);
  }
  auto hdr = api.call("GET", "/v1/activities", "", token, {{"x-trace", "\x80"}});
  CHECK(problem(hdr, 400)["detail"].get<std::string>().find("header 'x-trace'") != std::string::npos);

  // Escaped code points are fine: JSON's \u escapes are decoded into valid UTF-8.
  json named = submit_body("caf\u00e9 \u2603");
  CHECK(api.call("POST", "/v1/tenants", json{{"name", "second-team"}}.dump(), kAdmin).status == 201);
  CHECK(api.call("POST", "/v1/activities", named.dump(), token).status == 201);
  // A number beyond a double (found by the fuzzer: it was a 500) is malformed JSON too.
  CHECK(problem(api.call("POST", "/v1/activities", "{\"name\": 1" + std::string(60, '0') + "E0000300}", token), 400)["detail"]
            .get<std::string>()
            .find("number overflow") != std::string::npos);
  // A lone surrogate in an escape is refused by the JSON parser, as malformed JSON.
  CHECK(problem(api.call("POST", "/v1/activities", "{\"name\": \"\\udc00\"}", token), 400)["detail"]
            .get<std::string>()
            .find("malformed JSON") != std::string::npos);

  json after = api.snapshot();
  CHECK(after["activities"]["items"].size() == before["activities"]["items"].size() + 1);
  CHECK(after["tenants"]["items"].size() == before["tenants"]["items"].size() + 1);
}

TEST_CASE("api: a tenant may hold max_per_tenant open event streams, and one more is a 429") {
  Api api;
  EventStreamOptions events;
  events.max_per_tenant = 2;
  api.app.reset();  // one App per store: it is the store's event listener
  api.app = std::make_unique<App>(*api.store, api.clock, api.rng, tenants::sha256_hex(kAdmin),
                                  tenants::ActivityHooks{}, EnergyOptions{}, events);
  auto [a_id, a_token] = api.tenant("streams-a");
  auto [b_id, b_token] = api.tenant("streams-b");
  auto first = api.call("GET", "/v1/events", "", a_token);
  auto second = api.call("GET", "/v1/events", "", a_token);
  REQUIRE(first.stream);
  REQUIRE(second.stream);
  auto third = api.call("GET", "/v1/events", "", a_token);
  CHECK(problem(third, 429)["type"] == "/problems/quota-exceeded");
  CHECK(header(third, "Retry-After") == "5");
  CHECK_FALSE(third.stream);
  // Another tenant and the admin are not held by tenant a's streams.
  auto other = api.call("GET", "/v1/events", "", b_token);
  CHECK(other.stream);
  auto admin1 = api.call("GET", "/v1/events", "", kAdmin);
  auto admin2 = api.call("GET", "/v1/events", "", kAdmin);
  auto admin3 = api.call("GET", "/v1/events", "", kAdmin);
  CHECK((admin1.stream && admin2.stream && admin3.stream));
  // A stream that ends frees its place.
  first.stream->cancel();
  first.stream.reset();
  auto again = api.call("GET", "/v1/events", "", a_token);
  CHECK(again.status == 200);
  CHECK(again.stream);
}

TEST_CASE("api: a tenant's priority and the cost of one activity are bounded by its quotas") {
  Api api;
  auto [id, token] = api.tenant("bounded-team");
  const json quotas = json::parse(api.call("GET", "/v1/tenants/" + id, "", kAdmin).body)["quotas"];
  CHECK(quotas["max_priority"] == 0);
  CHECK(quotas["max_client_updates"] == 1000000);

  json high = submit_body("urgent");
  high["priority"] = 1000;  // it went before every other tenant's work under fifo
  auto refused = api.call("POST", "/v1/activities", high.dump(), token);
  json p = problem(refused, 400);
  REQUIRE(p["errors"].size() == 1);
  CHECK(p["errors"][0]["field"] == "priority");
  CHECK(p["errors"][0]["detail"].get<std::string>().find("max_priority (0)") != std::string::npos);
  json low = submit_body("background");
  low["priority"] = -5;  // lowering one's own priority needs no quota
  CHECK(api.call("POST", "/v1/activities", low.dump(), token).status == 201);

  CHECK(api.call("PATCH", "/v1/tenants/" + id, json{{"quotas", {{"max_priority", 10}}}}.dump(), kAdmin).status == 200);
  high["priority"] = 10;
  CHECK(api.call("POST", "/v1/activities", high.dump(), token).status == 201);
  high["priority"] = 11;
  CHECK(problem(api.call("POST", "/v1/activities", high.dump(), token), 400)["errors"][0]["field"] == "priority");
  CHECK(problem(api.call("PATCH", "/v1/tenants/" + id, json{{"quotas", {{"max_priority", 1001}}}}.dump(), kAdmin),
                400)["errors"][0]["field"] == "quotas.max_priority");
  // A tenant cannot raise its own quota: the route is the admin's.
  CHECK(api.call("PATCH", "/v1/tenants/" + id, json{{"quotas", {{"max_priority", 1000}}}}.dump(), token).status == 403);

  json huge = submit_body("everything");
  huge["rounds"] = 10000;
  huge["clients"] = 10000;
  huge["clients_per_round"] = 10000;
  huge["local_epochs"] = 100;
  auto costly = api.call("POST", "/v1/activities", huge.dump(), token);
  json c = problem(costly, 400);
  REQUIRE(c["errors"].size() == 1);
  CHECK(c["errors"][0]["field"] == "rounds");
  CHECK(c["errors"][0]["detail"].get<std::string>().find("10000000000 client updates") != std::string::npos);
  CHECK(api.call("PATCH", "/v1/tenants/" + id, json{{"quotas", {{"max_client_updates", 20000000000}}}}.dump(), kAdmin)
            .status == 200);
  CHECK(api.call("POST", "/v1/activities", huge.dump(), token).status == 201);
  CHECK(json::parse(api.call("GET", "/v1/activities?limit=100", "", token).body)["items"].size() == 3);
}

namespace {

// Puts activity `id` of `tenant` alone in a training group and records `rounds` rounds of it,
// as the executor would; round n's report is {"round": n}.
void record_rounds(Api& api, const std::string& id, const std::string& tenant, int rounds) {
  storage::GroupPlan plan;
  Group g;
  g.id = "grp_rounds";
  g.phase = GroupPhase::kTraining;
  g.policy = "mufl";
  g.compat_key = "k";
  g.config_json = "{}";
  g.members.push_back({id, tenant, "class", 0, {}, {}});
  plan.new_groups = {g};
  REQUIRE(api.store->apply_group_plan(plan, api.clock.now_unix_ms()).ok());
  for (int n = 1; n <= rounds; ++n) {
    storage::GroupRoundRecord r;
    r.group_id = g.id;
    r.round = n;
    r.checkpoint = {n, "/ckpt", "sha", 1};
    r.reports.emplace_back(id, json{{"round", n}}.dump());
    REQUIRE(api.store->record_group_round(r, api.clock.now_unix_ms()).is_ok());
  }
}

}  // namespace

TEST_CASE("api: the rounds of an activity come a page at a time, each exactly once and in order") {
  Api api;
  auto [tenant_id, token] = api.tenant("history");
  auto body = submit_body();
  body["rounds"] = 250;
  const std::string id = json::parse(api.call("POST", "/v1/activities", body.dump(), token).body)["id"];
  record_rounds(api, id, tenant_id, 250);
  const std::string path = "/v1/activities/" + id + "/rounds";

  // The default page is 100 rounds; the next cursor leads on.
  json first = json::parse(api.call("GET", path, "", token).body);
  CHECK(first["items"].size() == 100);
  CHECK(first["next_cursor"].is_string());

  for (int limit : {7, 100, 250, 1000}) {
    INFO("limit " << limit);
    std::vector<int> rounds;
    std::string target = path + "?limit=" + std::to_string(limit);
    int pages = 0;
    for (; pages < 100; ++pages) {
      auto r = api.call("GET", target, "", token);
      REQUIRE(r.status == 200);
      json page = json::parse(r.body);
      CHECK(page["items"].size() <= static_cast<size_t>(limit));
      for (const auto& item : page["items"]) rounds.push_back(item["round"]);
      if (page["next_cursor"].is_null()) break;
      target = path + "?limit=" + std::to_string(limit) + "&cursor=" + page["next_cursor"].get<std::string>();
    }
    std::vector<int> expected(250);
    for (int n = 0; n < 250; ++n) expected[static_cast<size_t>(n)] = n + 1;
    CHECK(rounds == expected);
    CHECK(pages + 1 == (250 + limit - 1) / limit);  // no empty page at the end
  }

  // Bad parameters are 400s naming them, on every paginated list; another tenant sees no rounds at all.
  for (const std::string& list : {path, std::string("/v1/activities"), std::string("/v1/groups")})
    for (const std::string q : {"limit=0", "limit=1001", "limit=x", "cursor=abc", "cursor=-1", "cursor="}) {
      INFO(list << "?" << q);
      CHECK(error_fields(problem(api.call("GET", list + "?" + q, "", token), 400)) ==
            std::vector<std::string>{q.substr(0, q.find('='))});
    }
  CHECK(error_fields(problem(api.call("GET", path + "?page=2", "", token), 400)) == std::vector<std::string>{"page"});
  auto [other_id, other_token] = api.tenant("other");
  problem(api.call("GET", path, "", other_token), 404);
}

namespace {

// SQL statements the store runs for one request (authentication included).
int64_t statements_for(Api& api, const std::string& target, const std::string& token, json& body) {
  const int64_t before = api.store->statements_run();
  auto r = api.call("GET", target, "", token);
  const int64_t used = api.store->statements_run() - before;
  REQUIRE(r.status == 200);
  body = json::parse(r.body);
  return used;
}

// `n` waiting training groups grp_0… of two activities each, one of tenant a and one of tenant b.
void make_groups(Api& api, int n, const std::pair<std::string, std::string>& a,
                 const std::pair<std::string, std::string>& b) {
  storage::GroupPlan plan;
  for (int i = 0; i < n; ++i) {
    Group g;
    g.id = "grp_" + std::to_string(i);
    g.phase = GroupPhase::kTraining;
    g.policy = "mufl";
    g.compat_key = "k";
    g.config_json = "{}";
    for (const auto& [tenant_id, token] : {a, b}) {
      const std::string id = json::parse(api.call("POST", "/v1/activities", submit_body().dump(), token).body)["id"];
      g.members.push_back({id, tenant_id, "class", 0, {}, {}});
    }
    plan.new_groups.push_back(g);
  }
  REQUIRE(api.store->apply_group_plan(plan, api.clock.now_unix_ms()).ok());
}

}  // namespace

TEST_CASE("api: GET /v1/groups runs the same few SQL statements for a page of 2 groups and of 60") {
  std::map<int, int64_t> admin_statements, tenant_statements;
  for (int n : {2, 60}) {
    INFO(n << " groups");
    Api api(/*explain_waiting=*/true);
    const auto a = api.tenant("a"), b = api.tenant("b");
    make_groups(api, n, a, b);
    json page;
    admin_statements[n] = statements_for(api, "/v1/groups?limit=1000", kAdmin, page);
    REQUIRE(page["items"].size() == static_cast<size_t>(n));
    for (const auto& g : page["items"]) {
      // Every group with both its members, each with its tenant, and why it waits.
      REQUIRE(g["activities"].size() == 2);
      CHECK(g["activities"][0]["tenant_id"] == a.first);
      CHECK(g["activities"][1]["tenant_id"] == b.first);
      CHECK(g["other_activities"] == 0);
      CHECK(g["waiting_reason"] == "no_free_device");
    }
    tenant_statements[n] = statements_for(api, "/v1/groups?limit=1000", a.second, page);
    REQUIRE(page["items"].size() == static_cast<size_t>(n));
    for (const auto& g : page["items"]) {
      CHECK(g["activities"].size() == 1);  // its own; the other tenant's only as a count
      CHECK(g["other_activities"] == 1);
    }
  }
  // Authentication, BEGIN, the page, its members, COMMIT and why groups wait: a bound, not n.
  CHECK(admin_statements[60] == admin_statements[2]);
  CHECK(tenant_statements[60] == tenant_statements[2]);
  CHECK(admin_statements[60] <= 8);
  CHECK(tenant_statements[60] <= 8);
}

TEST_CASE("api: GET /v1/activities/{id} reads its groups, energy, tenant and wait in one snapshot") {
  Api api(/*explain_waiting=*/true);
  const auto a = api.tenant("a"), b = api.tenant("b");
  make_groups(api, 3, a, b);
  json page;
  statements_for(api, "/v1/groups?limit=1000", kAdmin, page);
  const std::string id = page["items"][0]["activities"][0]["id"];
  const std::string group = page["items"][0]["id"];

  json got;
  const int64_t statements = statements_for(api, "/v1/activities/" + id, a.second, got);
  CHECK(got["id"] == id);
  CHECK(got["groups"] == json::array({group}));
  CHECK(got["energy"]["joules"] == 0);
  CHECK(got["paused"].is_null());
  CHECK(got["waiting_reason"] == "no_free_device");  // its group waits: mufld has no device here
  CHECK(got["waiting"].is_string());
  // Authentication, then BEGIN, activity, groups, energy, tenant, its group's wait, COMMIT.
  CHECK(statements <= 8);

  // Another tenant's activity is a 404, as before.
  problem(api.call("GET", "/v1/activities/" + id, "", b.second), 404);
  // Cancelled: no wait is explained for it any more.
  REQUIRE(api.call("DELETE", "/v1/activities/" + id, "", a.second).status == 200);
  statements_for(api, "/v1/activities/" + id, a.second, got);
  CHECK(got["state"] == "cancelled");
  CHECK(got["waiting_reason"].is_null());
}
