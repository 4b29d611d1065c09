// Federations and their clients through the REST API (App over an in-memory store): who sees
// what, enrollment with its token and expiry, client tokens and their routes, presence,
// revocation, rotation and deletion.
#include <catch2/catch.hpp>

#include <cmath>
#include <nlohmann/json.hpp>
#include <optional>

#include "federation/update_check.h"
#include "protocol/safetensors.h"
#include "service/deferred_response.h"
#include "tests/service/api_fixture.h"

using namespace mufl;
using namespace mufl::test;
using nlohmann::json;

namespace {

json fed_body(const std::string& name = "hospitals", json tenants = json::array()) {
  return {{"name", name},
          {"schema", {{"channels", 1}, {"height", 28}, {"width", 28}, {"labels", 10}}},
          {"tenants", tenants}};
}

// Creates a federation as `token` and returns its reply (with the enrollment token).
json create_fed(Api& api, const std::string& token, json body = fed_body()) {
  auto r = api.call("POST", "/v1/federations", body.dump(), token);
  REQUIRE(r.status == 201);
  return json::parse(r.body);
}

HttpResponse enroll(Api& api, const std::string& enroll_token, const std::string& name, int64_t samples = 600) {
  return api.call("POST", "/v1/clients", json{{"name", name}, {"train_samples", samples}, {"test_samples", 100}}.dump(),
                  enroll_token);
}

// Enrolls a client and returns its token.
std::string enrolled(Api& api, const std::string& enroll_token, const std::string& name) {
  auto r = enroll(api, enroll_token, name);
  REQUIRE(r.status == 201);
  return json::parse(r.body)["token"];
}

json clients_of(Api& api, const std::string& fed, const std::string& token) {
  auto r = api.call("GET", "/v1/federations/" + fed + "/clients", "", token);
  REQUIRE(r.status == 200);
  return json::parse(r.body)["items"];
}

}  // namespace

TEST_CASE("federations: a tenant creates one and gets its enrollment token once") {
  Api api;
  auto [tid, tok] = api.tenant("acme");
  auto r = api.call("POST", "/v1/federations", fed_body().dump(), tok);
  REQUIRE(r.status == 201);
  CHECK(header(r, "Cache-Control") == "no-store");
  json f = json::parse(r.body);
  CHECK(header(r, "Location") == "/v1/federations/" + f["id"].get<std::string>());
  CHECK(f["id"].get<std::string>().rfind("fed_", 0) == 0);
  CHECK(f["owner"] == tid);
  CHECK(f["schema"] == json{{"channels", 1}, {"height", 28}, {"width", 28}, {"labels", 10}});
  CHECK(f["enrollment_token"].get<std::string>().rfind("mufle_", 0) == 0);
  CHECK(f["enrollment_expires_at"].is_string());

  // Reads never show the token again.
  json got = json::parse(api.call("GET", "/v1/federations/" + f["id"].get<std::string>(), "", tok).body);
  CHECK_FALSE(got.contains("enrollment_token"));
  CHECK(got["name"] == "hospitals");
  json list = json::parse(api.call("GET", "/v1/federations", "", tok).body)["items"];
  REQUIRE(list.size() == 1);
  CHECK(list[0]["id"] == f["id"]);

  // 3x32x32 with 10 labels is a schema too; the admin may own federations.
  json rgb = fed_body("cameras");
  rgb["schema"] = {{"channels", 3}, {"height", 32}, {"width", 32}, {"labels", 10}};
  json admin_fed = create_fed(api, kAdmin, rgb);
  CHECK(admin_fed["owner"].is_null());
  CHECK(admin_fed["schema"]["channels"] == 3);
}

TEST_CASE("federations: bad requests name every bad field and create nothing") {
  Api api;
  auto [tid, tok] = api.tenant("acme");
  json bad = {{"name", "has space"},
              {"schema", {{"channels", 0}, {"height", 4}, {"width", "28"}}},
              {"tenants", {"ten_nosuchtenant0000000000"}},
              {"enrollment_ttl_seconds", 5},
              {"colour", "red"}};
  json p = problem(api.call("POST", "/v1/federations", bad.dump(), tok), 400);
  auto fields = error_fields(p);
  for (const char* f : {"name", "schema.channels", "schema.height", "schema.width", "schema.labels",
                        "enrollment_ttl_seconds", "colour"})
    CHECK(has(fields, f));

  // A listed tenant that does not exist is the request's fault too.
  problem(api.call("POST", "/v1/federations", fed_body("x", {"ten_nosuchtenant0000000000"}).dump(), tok), 400);
  problem(api.call("POST", "/v1/federations", "{not json", tok), 400);
  problem(api.call("POST", "/v1/federations", "\xff\xfe", tok), 400);
  CHECK(json::parse(api.call("GET", "/v1/federations", "", kAdmin).body)["items"].empty());

  create_fed(api, tok);
  problem(api.call("POST", "/v1/federations", fed_body().dump(), tok), 409);  // the owner's names are unique
  auto [tid2, tok2] = api.tenant("globex");
  create_fed(api, tok2);  // another owner may use the name
}

TEST_CASE("federations: a listed tenant sees id, name and schema, and others nothing") {
  Api api;
  auto [owner, otok] = api.tenant("acme");
  auto [listed, ltok] = api.tenant("globex");
  auto [other, xtok] = api.tenant("initech");
  json f = create_fed(api, otok, fed_body("hospitals", {listed}));
  const std::string id = f["id"];
  CHECK(f["tenants"] == json{listed});

  json seen = json::parse(api.call("GET", "/v1/federations/" + id, "", ltok).body);
  CHECK(seen == json{{"id", id}, {"name", "hospitals"}, {"schema", f["schema"]}});
  CHECK(json::parse(api.call("GET", "/v1/federations", "", ltok).body)["items"].size() == 1);
  // Its clients, its token and its settings are the owner's.
  problem(api.call("GET", "/v1/federations/" + id + "/clients", "", ltok), 403);
  problem(api.call("PATCH", "/v1/federations/" + id, json{{"name", "mine"}}.dump(), ltok), 403);
  problem(api.call("POST", "/v1/federations/" + id + "/enrollment-token", "", ltok), 403);
  problem(api.call("DELETE", "/v1/federations/" + id, "", ltok), 403);

  problem(api.call("GET", "/v1/federations/" + id, "", xtok), 404);
  problem(api.call("GET", "/v1/federations/" + id + "/clients", "", xtok), 404);
  problem(api.call("DELETE", "/v1/federations/" + id, "", xtok), 404);
  CHECK(json::parse(api.call("GET", "/v1/federations", "", xtok).body)["items"].empty());
  problem(api.call("GET", "/v1/federations/fed_nosuchfederation0000", "", otok), 404);
  problem(api.call("GET", "/v1/federations/not-an-id", "", otok), 404);

  // The owner shares it with a third tenant and stops sharing with the first.
  auto r = api.call("PATCH", "/v1/federations/" + id, json{{"tenants", {other}}}.dump(), otok);
  REQUIRE(r.status == 200);
  CHECK(json::parse(r.body)["tenants"] == json{other});
  problem(api.call("GET", "/v1/federations/" + id, "", ltok), 404);
  CHECK(api.call("GET", "/v1/federations/" + id, "", xtok).status == 200);
  // The schema is what the clients' data is: it cannot change.
  json p = problem(api.call("PATCH", "/v1/federations/" + id, json{{"schema", f["schema"]}}.dump(), otok), 400);
  CHECK(error_fields(p) == std::vector<std::string>{"schema"});
}

TEST_CASE("federations: a client enrolls with the enrollment token and uses only the client routes") {
  Api api;
  auto [owner, otok] = api.tenant("acme");
  json f = create_fed(api, otok);
  const std::string id = f["id"];

  auto r = enroll(api, f["enrollment_token"], "ward-1");
  REQUIRE(r.status == 201);
  CHECK(header(r, "Cache-Control") == "no-store");
  json c = json::parse(r.body);
  const std::string ctok = c["token"];
  CHECK(ctok.rfind("muflc_", 0) == 0);
  CHECK(c["id"].get<std::string>().rfind("cli_", 0) == 0);
  CHECK(c["state"] == "online");
  CHECK(c["train_samples"] == 600);
  CHECK(c["federation"] == json{{"id", id}, {"name", "hospitals"}, {"schema", f["schema"]}});

  auto me = api.call("GET", "/v1/clients/me", "", ctok);
  REQUIRE(me.status == 200);
  CHECK(json::parse(me.body)["id"] == c["id"]);
  // A client token opens no tenant route, and no tenant or admin token opens a client route.
  problem(api.call("GET", "/v1/activities", "", ctok), 403);
  problem(api.call("GET", "/v1/federations", "", ctok), 403);
  problem(api.call("GET", "/v1/tenants", "", ctok), 403);
  problem(api.call("GET", "/v1/clients/me", "", otok), 403);
  problem(api.call("GET", "/v1/clients/me", "", kAdmin), 403);
  auto wrong = api.call("GET", "/v1/clients/me", "", "muflc_not-a-real-token");
  problem(wrong, 401);
  CHECK_FALSE(header(wrong, "WWW-Authenticate").empty());

  // Enrollment's own failures.
  auto no_token = enroll(api, "", "ward-2");
  problem(no_token, 401);
  auto bad_token = enroll(api, "mufle_wrong", "ward-2");
  problem(bad_token, 401);
  CHECK_FALSE(header(bad_token, "WWW-Authenticate").empty());
  problem(enroll(api, otok, "ward-2"), 401);  // a tenant token is not an enrollment token
  problem(enroll(api, f["enrollment_token"], "ward-1"), 409);  // the name is taken
  json p = problem(api.call("POST", "/v1/clients", json{{"name", "x y"}, {"train_samples", 0}, {"extra", 1}}.dump(),
                            f["enrollment_token"]),
                   400);
  CHECK(has(error_fields(p), "name"));
  CHECK(has(error_fields(p), "train_samples"));
  CHECK(has(error_fields(p), "extra"));
  // Samples that cannot train the federation's model are refused before enrolling.
  json misfit = {{"name", "ward-3"},
                 {"train_samples", 10},
                 {"data", {{"channels", 3}, {"height", 28}, {"width", 28}, {"max_label", 10}}}};
  json mp = problem(api.call("POST", "/v1/clients", misfit.dump(), f["enrollment_token"]), 400);
  CHECK(has(error_fields(mp), "data"));
  CHECK(has(error_fields(mp), "data.max_label"));
  CHECK(clients_of(api, id, otok).size() == 1);
  misfit["data"] = {{"channels", 1}, {"height", 28}, {"width", 28}, {"max_label", 9}};
  CHECK(api.call("POST", "/v1/clients", misfit.dump(), f["enrollment_token"]).status == 201);
}

TEST_CASE("federations: the enrollment token expires and rotates") {
  Api api;
  auto [owner, otok] = api.tenant("acme");
  json f = create_fed(api, otok, [] {
    json b = fed_body();
    b["enrollment_ttl_seconds"] = 3600;
    return b;
  }());
  const std::string id = f["id"];
  api.clock.advance_ms(3600 * 1000);
  json p = problem(enroll(api, f["enrollment_token"], "late"), 401);
  CHECK(p["detail"].get<std::string>().find("expired") != std::string::npos);

  auto r = api.call("POST", "/v1/federations/" + id + "/enrollment-token", json{{"enrollment_ttl_seconds", 60}}.dump(),
                    otok);
  REQUIRE(r.status == 200);
  CHECK(header(r, "Cache-Control") == "no-store");
  const std::string fresh = json::parse(r.body)["enrollment_token"];
  CHECK(fresh != f["enrollment_token"]);
  CHECK(enroll(api, fresh, "late").status == 201);
  problem(enroll(api, f["enrollment_token"], "later"), 401);  // the old token is gone
  problem(api.call("POST", "/v1/federations/" + id + "/enrollment-token", json{{"enrollment_ttl_seconds", 1}}.dump(),
                   otok),
          400);
}

TEST_CASE("federations: clients go offline when silent, and a revoked client gets 401") {
  Api api;
  auto [owner, otok] = api.tenant("acme");
  json f = create_fed(api, otok);
  const std::string id = f["id"];
  const std::string a = enrolled(api, f["enrollment_token"], "a");
  const std::string b = enrolled(api, f["enrollment_token"], "b");

  api.clock.advance_ms(60'000);
  REQUIRE(api.call("GET", "/v1/clients/me", "", a).status == 200);  // a calls; b is silent
  api.clock.advance_ms(31'000);
  json items = clients_of(api, id, otok);
  REQUIRE(items.size() == 2);
  CHECK(items[0]["name"] == "a");
  CHECK(items[0]["state"] == "online");
  CHECK(items[1]["state"] == "offline");
  // a's last sighting was written to the database (more than 30 s after enrollment).
  auto stored = api.store->list_clients({id, 0, 10});
  REQUIRE(stored.ok());
  CHECK(stored->items[0].last_seen_unix_ms == stored->items[0].created_unix_ms + 60'000);

  const std::string a_id = items[0]["id"];
  auto r = api.call("DELETE", "/v1/federations/" + id + "/clients/" + a_id, "", otok);
  REQUIRE(r.status == 200);
  CHECK(json::parse(r.body)["state"] == "revoked");
  CHECK(json::parse(r.body)["revoked_at"].is_string());
  problem(api.call("GET", "/v1/clients/me", "", a), 401);
  CHECK(api.call("GET", "/v1/clients/me", "", b).status == 200);
  CHECK(enroll(api, f["enrollment_token"], "a").status == 201);  // the name is free again
  problem(api.call("DELETE", "/v1/federations/" + id + "/clients/cli_nosuchclient000000000", "", otok), 404);

  // Pages of clients, oldest first.
  auto page = api.call("GET", "/v1/federations/" + id + "/clients?limit=2", "", otok);
  json pj = json::parse(page.body);
  REQUIRE(pj["items"].size() == 2);
  REQUIRE(pj["next_cursor"].is_string());
  json rest = json::parse(
      api.call("GET", "/v1/federations/" + id + "/clients?cursor=" + pj["next_cursor"].get<std::string>(), "", otok)
          .body);
  CHECK(rest["items"].size() == 1);
  CHECK(rest["next_cursor"].is_null());
  problem(api.call("GET", "/v1/federations/" + id + "/clients?limit=0&sort=name", "", otok), 400);
}

TEST_CASE("federations: deleting a federation or its owner revokes every client") {
  Api api;
  auto [owner, otok] = api.tenant("acme");
  json f1 = create_fed(api, otok, fed_body("one"));
  json f2 = create_fed(api, otok, fed_body("two"));
  const std::string c1 = enrolled(api, f1["enrollment_token"], "c");
  const std::string c2 = enrolled(api, f2["enrollment_token"], "c");

  REQUIRE(api.call("DELETE", "/v1/federations/" + f1["id"].get<std::string>(), "", otok).status == 204);
  problem(api.call("GET", "/v1/clients/me", "", c1), 401);
  problem(enroll(api, f1["enrollment_token"], "d"), 401);
  problem(api.call("GET", "/v1/federations/" + f1["id"].get<std::string>(), "", otok), 404);
  CHECK(api.call("GET", "/v1/clients/me", "", c2).status == 200);

  REQUIRE(api.call("DELETE", "/v1/tenants/" + owner, "", kAdmin).status == 204);
  problem(api.call("GET", "/v1/clients/me", "", c2), 401);
  problem(api.call("GET", "/v1/federations/" + f2["id"].get<std::string>(), "", kAdmin), 404);
}

namespace {

// A tiny "model" for lease tests: what an update must hold.
const std::vector<protocol::TensorSpec> kSpecs = {{"w", {2, 2}}, {"b", {2}}};

std::string tensors_bytes(float w, float b, std::map<std::string, std::string> metadata = {{"mufl.report", "{}"}}) {
  protocol::TensorFile f;
  f.tensors.push_back({"w", {2, 2}, std::vector<float>(4, w)});
  f.tensors.push_back({"b", {2}, std::vector<float>(2, b)});
  f.metadata = std::move(metadata);
  auto bytes = protocol::encode_safetensors(f);
  REQUIRE(bytes.ok());
  return *bytes;
}

// Opens a draw of group grp_test round 1 for `clients` (ids), deadline in 60 s; returns the lease ids.
std::vector<std::string> open_draw(Api& api, const std::vector<std::string>& clients, int64_t attempt = 0) {
  federation::DrawRequest d;
  d.group_id = "grp_test";
  d.round = 1;
  d.attempt = attempt;
  d.global_weights = tensors_bytes(1, 0, {});
  d.tensors = kSpecs;
  for (size_t i = 0; i < clients.size(); ++i)
    d.slots.push_back({clients[i], static_cast<int64_t>(i), json{{"seed", std::to_string(i)}}});
  d.deadline_unix_ms = api.clock.now_unix_ms() + 60'000;
  auto opened = api.app->leases().open_draw(d);
  REQUIRE(opened.ok());
  return opened->lease_ids;
}

double rejected(Api& api, const std::string& reason) {
  const std::string text = api.call("GET", "/metrics").body;
  const std::string key = "mufl_client_updates_rejected_total{reason=\"" + reason + "\"} ";
  const auto at = text.find(key);
  REQUIRE(at != std::string::npos);
  return std::stod(text.substr(at + key.size()));
}

}  // namespace

TEST_CASE("federations: a lease goes to its client only, with its weights, and takes one good update") {
  Api api;
  auto [owner, otok] = api.tenant("acme");
  json f = create_fed(api, otok);
  auto ra = enroll(api, f["enrollment_token"], "a");
  auto rb = enroll(api, f["enrollment_token"], "b");
  const std::string a = json::parse(ra.body)["token"], b = json::parse(rb.body)["token"];
  const std::string a_id = json::parse(ra.body)["id"];
  const std::string lease = open_draw(api, {a_id})[0];

  auto work = api.call("GET", "/v1/clients/me/work?wait=0", "", a);
  REQUIRE(work.deferred);
  std::optional<HttpResponse> reply;
  work.deferred->start([&](HttpResponse r) { reply = std::move(r); });
  REQUIRE(reply);
  REQUIRE(reply->status == 200);
  json l = json::parse(reply->body);
  CHECK(l["id"] == lease);
  CHECK(l["assignment"]["seed"] == "0");
  CHECK(l.contains("created"));
  CHECK_FALSE(l.contains("tensors"));  // an update holds the weights' own tensors
  std::optional<HttpResponse> none;
  api.call("GET", "/v1/clients/me/work?wait=0", "", b).deferred->start([&](HttpResponse r) { none = std::move(r); });
  REQUIRE(none);
  CHECK(none->status == 204);
  problem(api.call("GET", "/v1/clients/me/work?wait=61", "", a), 400);

  auto weights = api.call("GET", "/v1/work/" + lease + "/weights", "", a);
  REQUIRE(weights.status == 200);
  CHECK(weights.content_type == "application/octet-stream");
  CHECK(header(weights, "X-Content-SHA256") == l["weights"]["sha256"]);
  CHECK(tenants::sha256_hex(std::string(service::body_of(weights))) == l["weights"]["sha256"]);
  problem(api.call("GET", "/v1/work/" + lease + "/weights", "", b), 404);  // another client's lease
  problem(api.call("GET", "/v1/work/" + lease + "/weights", "", otok), 403);

  // Every bad update is refused with its reason, counted, and changes nothing.
  problem(api.call("PUT", "/v1/work/" + lease + "/update", tensors_bytes(2, 2), b), 404);
  CHECK(rejected(api, "unknown_lease") == 1);
  problem(api.call("PUT", "/v1/work/" + lease + "/update", "garbage", a), 400);
  CHECK(rejected(api, "malformed") == 1);
  problem(api.call("PUT", "/v1/work/" + lease + "/update", tensors_bytes(std::nanf(""), 0), a), 400);
  CHECK(rejected(api, "non_finite") == 1);
  protocol::TensorFile wrong;
  wrong.tensors.push_back({"w", {4}, std::vector<float>(4, 1)});
  wrong.tensors.push_back({"b", {2}, std::vector<float>(2, 1)});
  problem(api.call("PUT", "/v1/work/" + lease + "/update", *protocol::encode_safetensors(wrong), a), 400);
  CHECK(rejected(api, "tensors") == 1);
  problem(api.call("PUT", "/v1/work/" + lease + "/update", std::string(400 * 1024, 'x'), a), 413);
  CHECK(rejected(api, "too_large") == 1);
  problem(api.call("PUT", "/v1/work/" + lease + "/update", tensors_bytes(2, 2, {}), a), 400);
  CHECK(rejected(api, "report") == 1);
  CHECK(api.store->get_lease(lease)->state == storage::LeaseState::kOpen);

  const std::string good = tensors_bytes(2, 3, {{"mufl.report", R"({"num_samples": 5})"}});
  auto ok = api.call("PUT", "/v1/work/" + lease + "/update", good, a);
  REQUIRE(ok.status == 200);
  CHECK(json::parse(ok.body)["state"] == "reported");
  CHECK(api.call("PUT", "/v1/work/" + lease + "/update", good, a).status == 200);  // the same again
  problem(api.call("PUT", "/v1/work/" + lease + "/update", tensors_bytes(9, 9), a), 409);
  CHECK(rejected(api, "conflict") == 1);
  auto stored = api.store->get_lease(lease);
  REQUIRE(stored.ok());
  CHECK(stored->report_json == R"({"num_samples": 5})");
  CHECK(*api.app->leases().read_update(*stored) == good);
  CHECK_FALSE(api.app->work().peek(a_id));  // off the board once reported

  // A draw waits for its reports: here every lease reported, so it ends at once.
  bool stopped = true;
  auto draw = api.app->leases().wait_draw("grp_test", 1, 0, api.clock.now_unix_ms() + 60'000, {}, stopped);
  REQUIRE(draw.ok());
  CHECK_FALSE(stopped);
  CHECK(draw->at(0).state == storage::LeaseState::kReported);
}

TEST_CASE("federations: the HTTP body limit of an update is what its open lease's model implies") {
  Api api;
  auto [owner, otok] = api.tenant("acme");
  json f = create_fed(api, otok);
  auto ra = enroll(api, f["enrollment_token"], "a");
  const std::string a_id = json::parse(ra.body)["id"];
  const std::string lease = open_draw(api, {a_id})[0];
  auto& leases = api.app->leases();
  const auto limit = service::work_body_limit(leases, "PUT", "/v1/work/" + lease + "/update");
  REQUIRE(limit);
  CHECK(*limit == federation::max_update_bytes(kSpecs));
  CHECK(service::work_body_limit(leases, "PUT", "/v1/work/" + lease + "/update?x=1") == limit);
  CHECK_FALSE(service::work_body_limit(leases, "GET", "/v1/work/" + lease + "/update"));
  CHECK_FALSE(service::work_body_limit(leases, "PUT", "/v1/work/" + lease + "/weights"));
  CHECK_FALSE(service::work_body_limit(leases, "PUT", "/v1/work/lea_unknown/update"));
  CHECK_FALSE(service::work_body_limit(leases, "PUT", "/v1/work/a/b/update"));
  CHECK_FALSE(service::work_body_limit(leases, "PUT", "/v1/work//update"));
  // Once the draw ends, the lease no longer opens a larger limit.
  bool stopped = false;
  REQUIRE(leases.wait_draw("grp_test", 1, 0, api.clock.now_unix_ms(), {}, stopped).ok());
  CHECK_FALSE(service::work_body_limit(leases, "PUT", "/v1/work/" + lease + "/update"));
}

TEST_CASE("federations: after its deadline a lease's update is a straggler's, refused with 409") {
  Api api;
  auto [owner, otok] = api.tenant("acme");
  json f = create_fed(api, otok);
  auto ra = enroll(api, f["enrollment_token"], "a");
  const std::string a = json::parse(ra.body)["token"], a_id = json::parse(ra.body)["id"];
  const std::string lease = open_draw(api, {a_id}, 1)[0];
  api.clock.advance_ms(60'000);
  json p = problem(api.call("PUT", "/v1/work/" + lease + "/update", tensors_bytes(2, 2), a), 409);
  CHECK(p["detail"].get<std::string>().find("straggler") != std::string::npos);
  CHECK(rejected(api, "late") == 1);
  bool stopped = true;
  auto draw = api.app->leases().wait_draw("grp_test", 1, 1, api.clock.now_unix_ms(), {}, stopped);
  REQUIRE(draw.ok());
  CHECK(draw->at(0).state == storage::LeaseState::kExpired);
  CHECK_FALSE(api.app->work().peek(a_id));
}

namespace {

// The fields a 400 names (its "errors"), in order.
std::vector<std::string> bad_fields(const HttpResponse& r) {
  std::vector<std::string> out;
  if (r.status != 400) return {"status " + std::to_string(r.status)};
  const json problem = json::parse(r.body);
  for (const auto& e : problem["errors"]) out.push_back(e["field"]);
  return out;
}

}  // namespace

TEST_CASE("federations: an activity on a federation is checked against who may use it and its schema") {
  Api api;
  auto [owner_id, owner] = api.tenant("hospital");
  auto [guest_id, guest] = api.tenant("insurer");
  auto [stranger_id, stranger] = api.tenant("stranger");
  json shared = fed_body("wards", json::array({guest_id}));
  const std::string fed = create_fed(api, owner, shared)["id"];
  json odd_body = fed_body("odd");
  odd_body["schema"] = {{"channels", 3}, {"height", 30}, {"width", 30}, {"labels", 1}};
  const std::string odd = create_fed(api, owner, odd_body)["id"];
  auto submit = [&](const std::string& token, const json& extra) {
    json body = {{"name", "a"}, {"task", "class"}, {"rounds", 2}};
    body.update(extra);
    return api.call("POST", "/v1/activities", body.dump(), token);
  };

  // The owner and a listed tenant may; the reply shows the federation and its schema.
  for (const auto& token : {owner, guest}) {
    auto ok = submit(token, {{"federation", fed}, {"clients_per_round", 3}, {"round_timeout_seconds", 30}});
    REQUIRE(ok.status == 201);
    json a = json::parse(ok.body);
    CHECK(a["federation"] == fed);
    CHECK_FALSE(a.contains("dataset"));
    CHECK(a["schema"] == json{{"channels", 1}, {"height", 28}, {"width", 28}, {"labels", 10}});
    CHECK(a["round_timeout_seconds"] == 30);
  }
  const auto activities_before = json::parse(api.call("GET", "/v1/activities", "", owner).body)["items"].size();

  // Anyone else, an unknown id, both sources, neither, and fields that do not apply: 400 naming them.
  CHECK(bad_fields(submit(stranger, {{"federation", fed}})) == std::vector<std::string>{"federation"});
  CHECK(bad_fields(submit(owner, {{"federation", "fed_nope"}})) == std::vector<std::string>{"federation"});
  CHECK(bad_fields(submit(owner, {{"federation", fed}, {"dataset", "synthetic"}})) ==
        std::vector<std::string>{"federation"});
  CHECK(bad_fields(submit(owner, json::object())) == std::vector<std::string>{"dataset"});
  CHECK(bad_fields(submit(owner, {{"federation", fed}, {"clients", 4}, {"partition", {{"kind", "iid"}}}})) ==
        std::vector<std::string>{"clients", "partition"});
  CHECK(bad_fields(submit(owner, {{"dataset", "synthetic"}, {"round_timeout_seconds", 30}})) ==
        std::vector<std::string>{"round_timeout_seconds"});
  CHECK(bad_fields(submit(owner, {{"federation", fed}, {"round_timeout_seconds", 1}})) ==
        std::vector<std::string>{"round_timeout_seconds"});
  // Tasks must fit the schema: dense maps need sides that are multiples of 4, parity two labels.
  auto dense = submit(owner, {{"federation", odd}, {"task", "segment"}});
  CHECK(bad_fields(dense) == std::vector<std::string>{"task"});
  CHECK_THAT(dense.body, Catch::Contains("multiples of 4"));
  CHECK(bad_fields(submit(owner, {{"federation", odd}, {"task", "parity"}})) == std::vector<std::string>{"task"});
  CHECK(json::parse(api.call("GET", "/v1/activities", "", owner).body)["items"].size() == activities_before);
}
