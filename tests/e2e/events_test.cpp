// GET /v1/events against the real mufld (docs/events.md): the order of one activity's events
// while it trains, resuming with Last-Event-ID and after=, tenant isolation, bad requests,
// a client resuming on the same port after kill -9 and after SIGTERM, SIGTERM with open streams,
// and the keep-alive.
#include <catch2/catch.hpp>

#include <signal.h>

#include <algorithm>
#include <chrono>
#include <functional>
#include <memory>
#include <nlohmann/json.hpp>
#include <set>
#include <thread>

#include "tests/support/http_client.h"
#include "tests/support/json_poll.h"
#include "tests/support/metrics_text.h"
#include "tests/support/mufld_process.h"
#include "tests/support/sse_client.h"
#include "tests/support/temp_dir.h"

using namespace mufl::testing;
using namespace std::chrono_literals;
using nlohmann::json;

namespace {

const std::string kAdmin = "mufl_events_admin_token_for_tests";
// Small and quick: 4 synthetic clients, 2 a round, trained alone.
const std::string kActivity =
    R"({"name":"ev","dataset":"synthetic","task":"class","rounds":3,"clients":4,"clients_per_round":2,"merge":false})";

struct Tenant {
  std::string id, token;
};

Tenant create_tenant(HttpClient& c, const std::string& name) {
  auto r = c.post("/v1/tenants", json{{"name", name}}.dump(), kAdmin);
  REQUIRE(r.status == 201);
  auto j = json::parse(r.body);
  return {j["id"], j["token"]};
}

std::string submit(HttpClient& c, const std::string& token, const std::string& body = kActivity) {
  auto r = c.post("/v1/activities", body, token);
  REQUIRE(r.status == 201);
  return json::parse(r.body)["id"];
}

json data(const SseEvent& e) { return json::parse(e.data); }

bool is_state(const SseEvent& e, const std::string& state) {
  return e.type == "activity.state" && data(e)["state"] == state;
}

// Events from `s` up to and including the first that `last` accepts; FAILs after `timeout`.
std::vector<SseEvent> read_until(SseClient& s, const std::function<bool(const SseEvent&)>& last,
                                 std::chrono::seconds timeout = 240s) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  std::vector<SseEvent> out;
  while (std::chrono::steady_clock::now() < deadline) {
    auto e = s.next(std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now()));
    if (!e) break;
    out.push_back(*e);
    if (last(*e)) return out;
  }
  FAIL("the awaited event did not come; got " << out.size() << " events");
  return out;
}

bool same(const std::vector<SseEvent>& a, const std::vector<SseEvent>& b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i)
    if (a[i].id != b[i].id || a[i].type != b[i].type || a[i].data != b[i].data) return false;
  return true;
}

std::vector<SseEvent> slice(const std::vector<SseEvent>& v, size_t from) {
  return std::vector<SseEvent>(v.begin() + static_cast<std::ptrdiff_t>(std::min(from, v.size())), v.end());
}

size_t index_of(const std::vector<SseEvent>& v, const std::function<bool(const SseEvent&)>& pred) {
  for (size_t i = 0; i < v.size(); ++i)
    if (pred(v[i])) return i;
  FAIL("no such event among " << v.size());
  return v.size();
}

}  // namespace

TEST_CASE("e2e events: a subscriber sees an activity's states, its group and its rounds in order while it trains") {
  TempDir dir;
  MufldProcess mufld(MUFLD_PATH, dir.path(), kAdmin, {"--devices", "cpu:1"});
  HttpClient c("127.0.0.1", mufld.port());
  Tenant t = create_tenant(c, "watcher");
  SseClient live(mufld.port(), "/v1/events", t.token);
  REQUIRE(live.status() == 200);
  CHECK(live.header("content-type") == "text/event-stream");
  CHECK(live.header("cache-control") == "no-store");

  const std::string id = submit(c, t.token);
  auto events = read_until(live, [](const SseEvent& e) { return is_state(e, "succeeded"); });

  int64_t previous_id = 0;
  for (const auto& e : events) {
    const json d = data(e);
    CHECK(std::stoll(e.id) > previous_id);  // strictly increasing
    previous_id = std::stoll(e.id);
    CHECK(d["id"] == previous_id);
    CHECK(d["type"] == e.type);
    CHECK(d["time"].get<std::string>().size() == 24);  // 2026-12-01T08:00:00.123Z
    if (e.type == "device.changed")  // the device taking the group (no activity: every tenant sees it)
      CHECK(d == json{{"id", d["id"]}, {"type", e.type}, {"time", d["time"]}, {"device", "cpu:0"}, {"state", "busy"},
                      {"reason", "took a group"}});
    else
      CHECK(d["activity_id"] == id);
  }
  const size_t busy = index_of(events, [](const SseEvent& e) { return e.type == "device.changed"; });
  const json queued = data(events.at(0));
  CHECK(events[0].type == "activity.state");
  CHECK(queued["state"] == "queued");
  CHECK(queued["previous"].is_null());
  const size_t merged = index_of(events, [](const SseEvent& e) { return e.type == "group.merged"; });
  const std::string group = data(events[merged])["group_id"];
  const size_t training = index_of(events, [](const SseEvent& e) { return is_state(e, "training"); });
  CHECK(data(events[training])["previous"] == "queued");
  CHECK(merged < training);
  CHECK(merged < busy);

  std::vector<int> rounds;
  size_t first_round = events.size();
  for (size_t i = 0; i < events.size(); ++i) {
    if (events[i].type != "round.finished") continue;
    first_round = std::min(first_round, i);
    const json d = data(events[i]);
    rounds.push_back(d["round"]);
    CHECK(d["rounds"] == 3);
    CHECK(d["group_id"] == group);
    CHECK(d["phase"] == "training");
    CHECK(d["metrics"].contains("loss"));
    CHECK(d["metrics"].contains("accuracy"));
  }
  CHECK(rounds == std::vector<int>{1, 2, 3});
  CHECK(training < first_round);
  CHECK(data(events.back())["previous"] == "training");
  // The rounds carry what GET /v1/activities/{id}/rounds says.
  auto history = get_all_items(c, "/v1/activities/" + id + "/rounds", t.token);
  CHECK(history[2]["metrics"]["class"] == data(events[events.size() - 2])["metrics"]);
}

TEST_CASE("e2e events: a reconnect with Last-Event-ID or after= replays exactly the missed events") {
  TempDir dir;
  MufldProcess mufld(MUFLD_PATH, dir.path(), kAdmin, {"--devices", "cpu:1"});
  HttpClient c("127.0.0.1", mufld.port());
  Tenant t = create_tenant(c, "resumer");
  std::vector<SseEvent> early;
  std::string id;
  {
    SseClient first(mufld.port(), "/v1/events", t.token);
    id = submit(c, t.token);
    early = first.take(2, 60s);
    REQUIRE(early.size() == 2);
  }  // disconnected while the activity trains on
  wait_for(c, "/v1/activities/" + id, t.token, [](const json& a) { return a["state"] == "succeeded"; }, 240);

  SseClient full_stream(mufld.port(), "/v1/events?after=0", t.token);
  const auto full = read_until(full_stream, [](const SseEvent& e) { return is_state(e, "succeeded"); }, 30s);
  REQUIRE(full.size() >= 7);  // queued, merged, training, 3 rounds, succeeded
  CHECK(same(std::vector<SseEvent>(full.begin(), full.begin() + 2), early));

  SseClient resumed(mufld.port(), "/v1/events", t.token, {{"Last-Event-ID", early[1].id}});
  CHECK(same(resumed.take(full.size() - 2, 30s), slice(full, 2)));
  // …and then live, with nothing in between: the group letting the device go (its end), then
  // the drain.
  auto released = resumed.next(30s);
  REQUIRE(released.has_value());
  CHECK(released->type == "device.changed");
  CHECK(data(*released)["state"] == "idle");
  CHECK(data(*released)["reason"] == "let its group go");
  REQUIRE(c.post("/v1/devices/cpu:0/drain", "", kAdmin).status == 200);
  auto drained = resumed.next(30s);
  REQUIRE(drained.has_value());
  CHECK(drained->type == "device.changed");
  CHECK(data(*drained)["state"] == "drained");
  CHECK(std::stoll(drained->id) == std::stoll(released->id) + 1);

  SseClient after(mufld.port(), "/v1/events?after=" + full[3].id, t.token);
  CHECK(same(after.take(full.size() - 4, 30s), slice(full, 4)));
  auto next = after.take(2, 30s);  // the release and the drain
  REQUIRE(next.size() == 2);
  CHECK(next[0].id == released->id);
  CHECK(next[1].id == drained->id);

  // Both: Last-Event-ID wins, so an EventSource opened with ?after=0 resumes where it was.
  SseClient both(mufld.port(), "/v1/events?after=0", t.token, {{"Last-Event-ID", full[4].id}});
  auto first_of_both = both.next(30s);
  REQUIRE(first_of_both.has_value());
  CHECK(first_of_both->id == full[5].id);

  // Filters on a replay.
  SseClient rounds(mufld.port(), "/v1/events?after=0&types=round.finished&activity=" + id, t.token);
  auto got = rounds.take(3, 30s);
  REQUIRE(got.size() == 3);
  for (size_t i = 0; i < got.size(); ++i) {
    CHECK(got[i].type == "round.finished");
    CHECK(data(got[i])["round"] == static_cast<int>(i + 1));
  }
}

TEST_CASE("e2e events: a tenant sees only its own activities' events and the device events") {
  TempDir dir;
  MufldProcess mufld(MUFLD_PATH, dir.path(), kAdmin, {"--devices", "cpu:1"});
  HttpClient c("127.0.0.1", mufld.port());
  Tenant a = create_tenant(c, "alpha"), b = create_tenant(c, "beta");
  SseClient a_live(mufld.port(), "/v1/events", a.token);
  // Drained: nothing trains while the tenants submit and cancel.
  REQUIRE(c.post("/v1/devices/cpu:0/drain", "", kAdmin).status == 200);
  const std::string a1 = submit(c, a.token), b1 = submit(c, b.token);
  REQUIRE(c.del("/v1/activities/" + a1, a.token).status == 200);
  const std::string b2 = submit(c, b.token), a2 = submit(c, a.token);
  REQUIRE(c.post("/v1/devices/cpu:0/resume", "", kAdmin).status == 200);

  // What each stream holds up to the resume: the activities it names, and the device changes.
  // (The planner still groups the queued activities meanwhile, so their order is not fixed.)
  struct Seen {
    std::set<std::string> activities;
    std::vector<std::string> devices;
    std::set<std::string> a1_states;
  };
  auto seen = [&](const std::vector<SseEvent>& es) {
    Seen out;
    for (const auto& e : es) {
      const json d = data(e);
      if (e.type == "device.changed") {
        out.devices.push_back(d["state"]);
        continue;
      }
      out.activities.insert(d["activity_id"].get<std::string>());
      if (d["activity_id"] == a1 && e.type == "activity.state") out.a1_states.insert(d["state"].get<std::string>());
    }
    return out;
  };
  auto until_resumed = [](const SseEvent& e) {
    return e.type == "device.changed" && data(e)["reason"] == "resumed by the admin";
  };
  SseClient a_replay(mufld.port(), "/v1/events?after=0", a.token);
  SseClient b_replay(mufld.port(), "/v1/events?after=0", b.token);
  SseClient admin_replay(mufld.port(), "/v1/events?after=0", kAdmin);
  const std::vector<std::string> both_devices = {"drained", "idle"};
  for (SseClient* s : {&a_live, &a_replay}) {
    Seen got = seen(read_until(*s, until_resumed, 30s));
    CHECK(got.activities == std::set<std::string>{a1, a2});
    CHECK(got.devices == both_devices);
    CHECK(got.a1_states.count("queued") == 1);
    CHECK(got.a1_states.count("cancelled") == 1);
  }
  Seen got_b = seen(read_until(b_replay, until_resumed, 30s));
  CHECK(got_b.activities == std::set<std::string>{b1, b2});
  CHECK(got_b.devices == both_devices);
  Seen got_admin = seen(read_until(admin_replay, until_resumed, 30s));
  CHECK(got_admin.activities == std::set<std::string>{a1, a2, b1, b2});

  // Another tenant's activity reads as 404, exactly like GET /v1/activities/{id}; the admin's is 200.
  SseClient a_peeks(mufld.port(), "/v1/events?activity=" + b1, a.token);
  CHECK(a_peeks.status() == 404);
  CHECK(a_peeks.header("content-type") == "application/problem+json");
  CHECK(c.get("/v1/activities/" + b1, a.token).status == 404);
  SseClient admin_looks(mufld.port(), "/v1/events?after=0&activity=" + b1, kAdmin);
  CHECK(admin_looks.status() == 200);
  auto first = admin_looks.next(30s);
  REQUIRE(first.has_value());
  CHECK(data(*first)["activity_id"] == b1);
}

TEST_CASE("e2e events: bad after, Last-Event-ID or types are 400, unknown activities 404, and nothing changes") {
  TempDir dir;
  MufldProcess mufld(MUFLD_PATH, dir.path(), kAdmin, {"--devices", "none"});
  HttpClient c("127.0.0.1", mufld.port());
  Tenant t = create_tenant(c, "careless");
  const std::string first = submit(c, t.token);
  struct Bad {
    std::string target;
    std::map<std::string, std::string> headers;
    int status;
    std::string field;
  };
  const std::vector<Bad> bad = {
      {"/v1/events?after=-1", {}, 400, "after"},
      {"/v1/events?after=abc", {}, 400, "after"},
      {"/v1/events?after=99999999999999999999", {}, 400, "after"},
      {"/v1/events", {{"Last-Event-ID", "twelve"}}, 400, "Last-Event-ID"},
      {"/v1/events?types=bogus", {}, 400, "types"},
      {"/v1/events?types=", {}, 400, "types"},
      {"/v1/events?types=activity.state,,round.finished", {}, 400, "types"},
      {"/v1/events?since=3", {}, 400, "since"},
      {"/v1/events?activity=act_00000000000000000000", {}, 404, ""},
  };
  for (const auto& b : bad) {
    SseClient s(mufld.port(), b.target, t.token, b.headers);
    INFO(b.target);
    CHECK(s.status() == b.status);
    CHECK(s.header("content-type") == "application/problem+json");
    const json p = json::parse(s.body());
    CHECK(p["status"] == b.status);
    if (!b.field.empty()) CHECK(p["errors"][0]["field"] == b.field);
  }
  SseClient no_token(mufld.port(), "/v1/events", "");
  CHECK(no_token.status() == 401);
  // No event was written in between: the next change follows the first at once.
  const std::string second = submit(c, t.token);
  SseClient all(mufld.port(), "/v1/events?after=0", kAdmin);
  auto es = read_until(all, [&](const SseEvent& e) { return data(e)["activity_id"] == second; }, 30s);
  REQUIRE(es.size() == 2);
  CHECK(data(es[0])["activity_id"] == first);
}

TEST_CASE("e2e events: after kill -9 and after SIGTERM a client back on the same port resumes with Last-Event-ID, none lost or doubled") {
  TempDir dir;
  // One client slot a round and one LibTorch thread: four rounds of about a second each.
  MufldProcess mufld(MUFLD_PATH, dir.path(), kAdmin, {"--devices", "cpu:1", "--torch-threads", "1"});
  const uint16_t port = mufld.port();
  HttpClient c("127.0.0.1", port);
  Tenant t = create_tenant(c, "crashy");
  const std::string quick =
      R"({"name":"ev","dataset":"synthetic","task":"class","rounds":4,"clients":4,"clients_per_round":1,"merge":false})";

  // What the client received, over all its connections, in order: it reads each stream to its
  // end, as a browser would, and reconnects with the last id it saw.
  std::vector<SseEvent> delivered;
  auto read_to_close = [&](SseClient& s) {
    while (auto e = s.next(10s)) delivered.push_back(*e);
    return s.closed();
  };
  auto a_round = [](const SseEvent& e) { return e.type == "round.finished"; };
  std::string id;
  {
    SseClient live(port, "/v1/events", t.token);
    id = submit(c, t.token, quick);
    for (const auto& e : read_until(live, a_round)) delivered.push_back(e);
    CHECK(mufld.stop(SIGKILL) == 128 + SIGKILL);  // mid-training: round 2 runs
    CHECK(read_to_close(live));
  }
  // Down: nothing listens on the port.
  CHECK_THROWS(SseClient(port, "/v1/events", t.token));
  mufld.start();
  CHECK(mufld.port() == port);
  {
    SseClient resumed(port, "/v1/events", t.token, {{"Last-Event-ID", delivered.back().id}});
    REQUIRE(resumed.status() == 200);
    for (const auto& e : read_until(resumed, a_round)) delivered.push_back(e);
    CHECK(mufld.stop(SIGTERM) == 0);  // clean this time, mid-training again
    CHECK(read_to_close(resumed));
    CHECK(std::find(resumed.comments().begin(), resumed.comments().end(), "mufld is shutting down") !=
          resumed.comments().end());
  }
  mufld.start();
  {
    SseClient resumed(port, "/v1/events", t.token, {{"Last-Event-ID", delivered.back().id}});
    REQUIRE(resumed.status() == 200);
    for (const auto& e : read_until(resumed, [](const SseEvent& e) { return is_state(e, "succeeded"); }))
      delivered.push_back(e);
  }

  // The three connections together received exactly what is stored, in order, with the same
  // ids and data: the replay from the start is the same list.
  SseClient replay(port, "/v1/events?after=0", t.token);
  const auto stored = read_until(replay, [](const SseEvent& e) { return is_state(e, "succeeded"); }, 30s);
  CHECK(same(delivered, stored));
  std::set<std::string> ids;
  std::vector<int> rounds;
  for (const auto& e : stored) {
    CHECK(ids.insert(e.id).second);
    if (e.type == "round.finished") rounds.push_back(data(e)["round"]);
  }
  CHECK(rounds == std::vector<int>{1, 2, 3, 4});
  CHECK(get_all_items(c, "/v1/activities/" + id + "/rounds", t.token).size() == 4);
}

TEST_CASE("e2e events: SIGTERM ends open streams with a comment and mufld exits within the drain timeout") {
  TempDir dir;
  MufldProcess mufld(MUFLD_PATH, dir.path(), kAdmin, {"--devices", "none"});
  HttpClient c("127.0.0.1", mufld.port());
  Tenant t = create_tenant(c, "leaver");
  submit(c, t.token);
  SseClient live(mufld.port(), "/v1/events", t.token);
  SseClient replay(mufld.port(), "/v1/events?after=0", t.token);
  SseClient admin(mufld.port(), "/v1/events", kAdmin);
  REQUIRE(replay.next(30s).has_value());

  // /metrics counts the open streams and the events committed since start (submit: one).
  auto scraped = [&](const std::string& series) { return metric(c.get("/metrics").body, series); };
  const auto scrape_deadline = std::chrono::steady_clock::now() + 30s;
  while (scraped("mufl_event_subscribers") != 3 && std::chrono::steady_clock::now() < scrape_deadline)
    live.next(100ms);
  CHECK(scraped("mufl_event_subscribers") == 3);
  CHECK(scraped("mufl_events_published_total") >= 1);

  const auto start = std::chrono::steady_clock::now();
  CHECK(mufld.stop(SIGTERM) == 0);
  CHECK(std::chrono::steady_clock::now() - start < 10s);  // the drain timeout
  for (SseClient* s : {&live, &replay, &admin}) {
    CHECK(s->wait_closed(10s));
    CHECK(std::find(s->comments().begin(), s->comments().end(), "mufld is shutting down") != s->comments().end());
  }
}

TEST_CASE("e2e events: an idle stream gets a keep-alive comment at the configured interval") {
  TempDir dir;
  MufldProcess mufld(MUFLD_PATH, dir.path(), kAdmin, {"--devices", "none", "--event-keepalive", "0.2"});
  SseClient live(mufld.port(), "/v1/events", kAdmin);
  REQUIRE(live.status() == 200);
  const auto deadline = std::chrono::steady_clock::now() + 20s;
  while (live.comments().size() < 2 && std::chrono::steady_clock::now() < deadline) live.next(200ms);
  REQUIRE(live.comments().size() >= 2);
  CHECK(live.comments()[0] == "keep-alive");
}

TEST_CASE("e2e events: --max-streams-per-tenant caps a tenant's open streams with 429, and a closed one frees its place") {
  TempDir dir;
  MufldProcess mufld(MUFLD_PATH, dir.path(), kAdmin, {"--devices", "none", "--max-streams-per-tenant", "1"});
  HttpClient c("127.0.0.1", mufld.port());
  Tenant a = create_tenant(c, "one-stream");
  Tenant b = create_tenant(c, "other");
  auto first = std::make_unique<SseClient>(mufld.port(), "/v1/events", a.token);
  REQUIRE(first->status() == 200);
  SseClient second(mufld.port(), "/v1/events", a.token);
  CHECK(second.status() == 429);
  CHECK(!second.header("retry-after").empty());
  CHECK(json::parse(second.body())["type"] == "/problems/quota-exceeded");
  SseClient others(mufld.port(), "/v1/events", b.token);  // the cap is per tenant
  CHECK(others.status() == 200);
  SseClient admin(mufld.port(), "/v1/events", kAdmin);  // the admin is not capped
  CHECK(admin.status() == 200);
  first.reset();  // the server sees the close asynchronously: poll, every 50 ms, for up to 10 s
  int status = 0;
  for (auto deadline = std::chrono::steady_clock::now() + 10s; std::chrono::steady_clock::now() < deadline;) {
    status = SseClient(mufld.port(), "/v1/events", a.token).status();
    if (status == 200) break;
    std::this_thread::sleep_for(50ms);
  }
  CHECK(status == 200);
}
