// The web dashboard end to end: the real mufld serves it, headless Chromium loads it over the
// DevTools protocol (tests/support/chromium.h), and each test checks that a page loads without
// console errors, shows what the REST API returns, and follows a change made through the API
// while it is open (through the event stream, or by polling where the server has none). One
// kills mufld under an open page and restarts it on the same port: the page must reconnect by
// itself and resume the stream with Last-Event-ID.
// MUFL_WRITE_SCREENSHOTS=1 writes each page to docs/screenshots/<page>.png.
#include <catch2/catch.hpp>

#include <signal.h>

#include <cmath>
#include <cstdlib>
#include <fstream>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>

#include "tests/support/chromium.h"
#include "tests/support/http_client.h"
#include "tests/support/json_poll.h"
#include "tests/support/mufld_process.h"
#include "tests/support/sse_client.h"
#include "tests/support/temp_dir.h"

using namespace mufl::testing;
using nlohmann::json;

namespace {

const std::string kAdmin = "web-admin";

// One mufld, one tenant and one browser; the browser is signed in by sign_in().
struct Dashboard {
  TempDir dir;
  MufldProcess mufld;
  HttpClient api;
  std::string token;
  Chromium browser;

  explicit Dashboard(std::vector<std::string> args)
      : mufld(MUFLD_PATH, dir.path(), kAdmin, args),
        api("127.0.0.1", mufld.port()),
        browser(Chromium::find_binary()) {
    auto t = api.post("/v1/tenants", R"({"name":"web-team","quotas":{"max_active_activities":200}})", kAdmin);
    REQUIRE(t.status == 201);
    token = json::parse(t.body)["token"];
  }

  std::string base() const { return "http://127.0.0.1:" + std::to_string(mufld.port()); }

  // Opens the page at `hash` and signs in through the token form, as a person would.
  void sign_in(const std::string& hash) {
    browser.navigate(base() + "/" + hash);
    browser.eval("document.getElementById('token').value = " + js_string(token) +
                 "; document.getElementById('token-form').requestSubmit(); true");
    browser.wait_for("!document.getElementById('view').hidden && document.getElementById('view').childElementCount > 0");
  }

  void go(const std::string& hash) { browser.eval("location.hash = " + js_string(hash) + "; true"); }

  // Does the server have GET /v1/events? A bad `after` is a 400 there (no stream is opened),
  // and the route a 404 where it is not.
  bool has_events() { return api.get("/v1/events?after=not-a-number", token).status != 404; }

  // The live indicator must say what the server offers: the stream, or polling without it.
  void check_live_mode() {
    const std::string want = has_events() ? "live" : "polling";
    browser.wait_for("document.getElementById('live').dataset.mode === " + js_string(want), 15);
  }

  // No console errors, exceptions or failed loads. The exceptions: where the server has no
  // event stream, the browser itself logs the 404 of the page's first try, before it polls;
  // and with `stream_outage` (mufld was down, or the page offline), the network errors of the
  // event stream's connection, which the browser logs for each try that cannot connect.
  void check_no_errors(bool stream_outage = false) {
    const bool events = has_events();
    const std::string stream_url = " " + base() + "/v1/events";
    auto ends_with = [](const std::string& s, const std::string& tail) {
      return s.size() >= tail.size() && s.compare(s.size() - tail.size(), tail.size(), tail) == 0;
    };
    std::string all;
    size_t count = 0;
    for (const auto& e : browser.errors()) {
      if (!events && e.find("status of 404") != std::string::npos && e.find("/v1/events") != std::string::npos) continue;
      if (stream_outage && e.rfind("log: ", 0) == 0 && e.find(" net::ERR_") != std::string::npos && ends_with(e, stream_url))
        continue;
      all += "\n  " + e;
      ++count;
    }
    INFO("errors in the page:" << all);
    CHECK(count == 0);
    // Nothing the page shows is a JavaScript placeholder (a null or a missing field shown as text).
    const json text = browser.eval("document.getElementById('view').textContent");
    for (const char* bad : {"null", "undefined", "NaN", "[object"}) {
      INFO("the page shows '" << bad << "': " << text.dump());
      CHECK(text.get<std::string>().find(bad) == std::string::npos);
    }
  }

  void screenshot(const std::string& page, bool full_page = true) {
    const char* on = std::getenv("MUFL_WRITE_SCREENSHOTS");
    if (!on || std::string(on) != "1") return;
    // The fonts and timers settle before the picture: wait for two animation frames.
    browser.eval("new Promise(r => requestAnimationFrame(() => requestAnimationFrame(() => r(true))))");
    std::ofstream(std::string(MUFL_SOURCE_DIR) + "/docs/screenshots/" + page + ".png", std::ios::binary) << browser.screenshot_png(full_page);
  }
};

std::string spec(const std::string& name, const std::string& task, int rounds) {
  return json{{"name", name}, {"dataset", "synthetic"}, {"task", task}, {"rounds", rounds}, {"clients", 4}, {"clients_per_round", 1},
              {"seed", 3}}
      .dump();
}

std::string submit(Dashboard& d, const std::string& body) {
  auto r = d.api.post("/v1/activities", body, d.token);
  INFO(r.body);
  REQUIRE(r.status == 201);
  return json::parse(r.body)["id"];
}

// The ids of the rows the page's table shows, in order.
std::vector<std::string> shown_ids(Chromium& b) {
  return b.eval("[...document.querySelectorAll('#rows tr')].map(r => r.dataset.id)").get<std::vector<std::string>>();
}

std::vector<std::string> ids_of(const json& page) {
  std::vector<std::string> ids;
  for (const auto& a : page["items"]) ids.push_back(a["id"]);
  return ids;
}

std::string fixed(double v, int digits) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.*f", digits, v);
  return buf;
}

// dom.js fmtJoules.
std::string joules(double j) {
  if (std::fabs(j) >= 1e6) return fixed(j / 1e6, 2) + " MJ";
  if (std::fabs(j) >= 1e3) return fixed(j / 1e3, 2) + " kJ";
  return fixed(j, 1) + " J";
}

// Installed before the page's own scripts (Page.addScriptToEvaluateOnNewDocument): wraps fetch
// to record, in window.__stream, every GET /v1/events the page makes (its Last-Event-ID and how
// it went) and every event on those streams (a tee of the body, parsed by the page's own
// SseParser), and how many other requests are in flight. The page gets the same bytes.
const char* kStreamProbe = R"JS((() => {
  const realFetch = window.fetch.bind(window);
  const s = window.__stream = { connects: [], events: [], inFlight: 0, lastEventAt: 0 };
  window.fetch = async (url, opts = {}) => {
    if (new URL(url, location.href).pathname !== '/v1/events') {
      ++s.inFlight;
      try { return await realFetch(url, opts); } finally { --s.inFlight; }
    }
    const connect = { lastId: (opts.headers || {})['Last-Event-ID'] ?? null, result: 'pending' };
    s.connects.push(connect);
    let res;
    try { res = await realFetch(url, opts); } catch (e) { connect.result = 'failed'; throw e; }
    connect.result = String(res.status);
    if (!res.body) return res;
    const [mine, page] = res.body.tee();
    (async () => {
      const { SseParser } = await import('/assets/live.js');
      const parser = new SseParser((e) => { s.events.push({ id: e.id, type: e.type, data: e.data }); s.lastEventAt = performance.now(); });
      const reader = mine.getReader();
      const decoder = new TextDecoder();
      try {
        for (;;) {
          const { value, done } = await reader.read();
          if (done) break;
          parser.feed(decoder.decode(value, { stream: true }));
        }
      } catch {}
      connect.ended = true;
    })();
    return new Response(page, { status: res.status, statusText: res.statusText, headers: res.headers });
  };
})())JS";

bool terminal(const json& a) { return a["state"] == "succeeded" || a["state"] == "failed" || a["state"] == "cancelled"; }

}  // namespace

TEST_CASE("web dashboard: the activity list pages through the API's cursor and follows a cancel") {
  Dashboard d({"--devices", "cpu:1", "--torch-threads", "1"});
  // A drained device keeps every activity queued, so the list holds still while the test reads it.
  REQUIRE(d.api.post("/v1/devices/cpu:0/drain", "", kAdmin).status == 200);
  const std::string html_name = "<img src=x onerror=\"console.error('xss')\"> digits";
  submit(d, spec(html_name, "class", 5));
  for (int i = 1; i < 60; ++i) submit(d, spec("digits " + std::to_string(i), i % 2 ? "class" : "parity", 5));
  // Grouping goes on without a device; once nothing is queued, the states hold still.
  wait_for(d.api, "/v1/activities?state=queued&limit=1", d.token, [](const json& p) { return p["items"].empty(); });

  d.sign_in("#/activities");
  const json first = get(d.api, "/v1/activities?limit=50", d.token);
  d.browser.wait_for("document.querySelectorAll('#rows tr').length === 50");
  CHECK(shown_ids(d.browser) == ids_of(first));
  // The first row shows the newest activity's fields as the API gives them.
  const json a0 = first["items"][0];
  const json row0 = d.browser.eval(
      "(() => { const c = document.querySelectorAll('#rows tr')[0].cells;"
      " return [c[0].textContent, c[1].textContent, c[2].textContent, c[3].textContent, c[4].textContent, c[5].textContent]; })()");
  CHECK(row0[0] == a0["name"]);
  CHECK(row0[1] == a0["id"]);
  CHECK(row0[2] == "synthetic");
  CHECK(row0[3] == a0["task"]);
  CHECK(row0[4] == a0["state"]);
  CHECK(row0[5] == " 0 / 5");
  CHECK(d.browser.eval("document.getElementById('newer').disabled") == true);

  // Older: the API's second page (10 rows), then back.
  d.browser.eval("document.getElementById('older').click(); true");
  const json second = get(d.api, "/v1/activities?limit=50&cursor=" + first["next_cursor"].get<std::string>(), d.token);
  d.browser.wait_for("document.querySelectorAll('#rows tr').length === 10");
  CHECK(shown_ids(d.browser) == ids_of(second));
  CHECK(d.browser.eval("document.getElementById('page-info').textContent.startsWith('page 2')") == true);
  CHECK(d.browser.eval("document.getElementById('older').disabled") == true);
  // The oldest activity has the HTML-looking name: it is shown as text, and nothing ran.
  const json last_row = d.browser.eval(
      "(() => { const r = [...document.querySelectorAll('#rows tr')].pop();"
      " return {name: r.cells[0].textContent, imgs: r.querySelectorAll('img').length}; })()");
  CHECK(last_row["name"] == html_name);
  CHECK(last_row["imgs"] == 0);
  d.browser.eval("document.getElementById('newer').click(); true");
  d.browser.wait_for("document.querySelectorAll('#rows tr').length === 50");
  CHECK(shown_ids(d.browser) == ids_of(first));

  // A cancel made through the API (not the page) shows up in the open page.
  d.check_live_mode();
  const std::string newest = a0["id"];
  REQUIRE(d.api.del("/v1/activities/" + newest, d.token).status == 200);
  d.browser.wait_for("(() => { const r = document.querySelector('#rows tr[data-id=" + js_string(newest) +
                     "]'); return r && r.cells[4].textContent.startsWith('cancelled'); })()", 20);
  CHECK(d.browser.eval("document.querySelector('#rows tr').cells[4].textContent") == "cancelledcancelled by the tenant");
  d.screenshot("activities", false);  // the first screenful of 50 rows
  d.check_no_errors();
}

TEST_CASE("web dashboard: an activity's page charts its rounds as they finish") {
  Dashboard d({"--devices", "cpu:1", "--torch-threads", "1"});
  REQUIRE(d.api.post("/v1/devices/cpu:0/drain", "", kAdmin).status == 200);
  const std::string id = submit(d, spec("digits", "class", 4));
  const json before = wait_for(d.api, "/v1/activities/" + id, d.token, [](const json& a) { return a["state"] != "queued"; });

  d.sign_in("#/activities/" + id);
  d.browser.wait_for("document.querySelector('#state .badge') && document.querySelector('#state .badge').textContent === " +
                     js_string(before["state"]));
  CHECK(d.browser.eval("document.querySelector('#loss-chart svg').dataset.points") == "0");
  CHECK(d.browser.eval("document.getElementById('progress-text').textContent") == "round 0 of 4");
  d.check_live_mode();

  // The device comes back: the rounds train while the page is open, and it follows them.
  REQUIRE(d.api.post("/v1/devices/cpu:0/resume", "", kAdmin).status == 200);
  d.browser.wait_for("document.getElementById('view').dataset.rounds === '4' &&"
                     " document.querySelector('#state .badge').textContent === 'succeeded'", 120);
  const json rounds = get_all_items(d.api, "/v1/activities/" + id + "/rounds", d.token);
  REQUIRE(rounds.size() == 4);
  CHECK(d.browser.eval("document.querySelector('#loss-chart svg').dataset.points") == "4");
  CHECK(d.browser.eval("document.querySelector('#metric-chart svg').dataset.points") == "4");
  CHECK(d.browser.eval("document.querySelector('#metric-chart figcaption').textContent") == "accuracy per round (test)");
  CHECK(d.browser.eval("document.getElementById('progress-text').textContent") == "round 4 of 4");
  // The table's first row is the last round, with the API's numbers.
  const json last = rounds[3];
  const json cells = d.browser.eval("[...document.querySelector('#round-rows tr').cells].map(c => c.textContent)");
  CHECK(cells[0] == "4");
  CHECK(cells[1] == last["group_id"]);
  CHECK(cells[5] == fixed(last["train_loss"].get<double>(), 4));
  CHECK(cells[6] == fixed(last["metrics"]["class"]["loss"].get<double>(), 4));
  CHECK(cells[7] == fixed(last["metrics"]["class"]["accuracy"].get<double>(), 4));
  d.screenshot("activity");
  d.check_no_errors();
}

TEST_CASE("web dashboard: a clustered activity's page lists its clusters of clients, each with its model") {
  Dashboard d({"--devices", "cpu:1", "--torch-threads", "1"});
  json body = json::parse(spec("clustered", "class", 3));
  body["client_clusters"] = 2;
  body["cluster_round"] = 2;
  const std::string id = submit(d, body.dump());
  const json a = wait_for(d.api, "/v1/activities/" + id, d.token, [](const json& a) { return a["state"] == "succeeded"; });
  REQUIRE(a["clusters"].size() == 2);

  d.sign_in("#/activities/" + id);
  d.browser.wait_for("document.querySelectorAll('#cluster-rows tr').length === 2");
  const json rows = d.browser.eval("[...document.querySelectorAll('#cluster-rows tr')].map(r => [...r.cells].map(c => c.textContent))");
  for (size_t c = 0; c < 2; ++c) {
    const json& cluster = a["clusters"][c];
    CHECK(rows[c][0] == std::to_string(c));
    CHECK(rows[c][1].get<std::string>().rfind(std::to_string(cluster["size"].get<int64_t>()) + ": ", 0) == 0);
    CHECK(rows[c][2] == std::to_string(cluster["samples"].get<int64_t>()));
    CHECK(rows[c][5] == fixed(cluster["metrics"]["class"]["accuracy"].get<double>(), 4));
    CHECK(rows[c][6] == cluster["model_url"]);
  }
  d.check_no_errors();
}

TEST_CASE("web dashboard: groups show their affinity heat map and merge and split tree, and usage its days") {
  Dashboard d({"--devices", "cpu:1", "--torch-threads", "1", "--merge-window", "1", "--affinity-every", "4",
               "--consolidation-fraction", "0.34"});
  d.sign_in("#/groups");
  d.browser.wait_for("!document.querySelector('.empty').hidden");  // no groups yet
  d.check_live_mode();

  // Three compatible activities merge, measure affinity and split while the list is open.
  std::vector<std::string> ids;
  for (const char* task : {"class", "class", "segment"}) ids.push_back(submit(d, spec(task, task, 6)));
  for (const auto& id : ids) wait_for(d.api, "/v1/activities/" + id, d.token, terminal, 180);
  const json groups = get(d.api, "/v1/groups", d.token);
  REQUIRE(groups["items"].size() >= 2);
  d.browser.wait_for("[...document.querySelectorAll('#rows tr')].map(r => r.dataset.id).join() === " +
                         js_string([&] {
                           std::string s;
                           for (const auto& id : ids_of(groups)) s += (s.empty() ? "" : ",") + id;
                           return s;
                         }()),
                     30);
  const std::string root = groups["items"].back()["id"];
  CHECK(d.browser.eval("document.querySelector('#rows tr:last-child td:nth-child(2)').textContent") ==
        groups["items"].back()["phase"]);
  d.screenshot("groups");

  // The root group: its affinity matrix as the API has it, and its lineage as a tree.
  d.go("#/groups/" + root);
  const json g = get(d.api, "/v1/groups/" + root, d.token);
  const size_t n = g["affinity"]["tasks"].size();
  REQUIRE(n == 3);
  d.browser.wait_for("document.querySelector('#affinity svg') && document.querySelector('#history .tree')");
  CHECK(d.browser.eval("document.querySelector('#affinity svg').dataset.cells") == std::to_string(n * n));
  const json cells = d.browser.eval("[...document.querySelectorAll('#affinity .cell')].map(c => [+c.dataset.row, +c.dataset.col, c.querySelector('text').textContent])");
  REQUIRE(cells.size() == n * n);
  for (const auto& c : cells) {
    const json v = g["affinity"]["matrix"][c[0].get<size_t>()][c[1].get<size_t>()];
    INFO("cell " << c.dump());
    CHECK(c[2] == (v.is_null() ? "–" : fixed(v.get<double>(), 2)));
  }
  std::set<std::string> want = {root};
  if (g["split"].is_object())
    for (const auto& child : g["split"]["child_groups"]) want.insert(child.get<std::string>());
  const auto nodes = d.browser.eval("[...document.querySelectorAll('#history .node')].map(n => n.dataset.id)").get<std::vector<std::string>>();
  CHECK(std::set<std::string>(nodes.begin(), nodes.end()) == want);
  CHECK(nodes.size() == want.size());
  CHECK(d.browser.eval("document.querySelector('#history .node.current').dataset.id") == root);
  d.screenshot("group");

  // Usage: the days and totals of GET /v1/usage.
  d.go("#/usage");
  const json u = get(d.api, "/v1/usage", d.token);
  REQUIRE(u["days"].size() >= 1);
  d.browser.wait_for("document.querySelectorAll('#rows tr').length === " + std::to_string(u["days"].size() + 1));
  const json rows = d.browser.eval("[...document.querySelectorAll('#rows tr')].map(r => [r.dataset.date, r.querySelector('.energy').textContent])");
  for (size_t i = 0; i < u["days"].size(); ++i) {
    CHECK(rows[i][0] == u["days"][i]["date"]);
    CHECK(rows[i][1] == joules(u["days"][i]["joules"].get<double>()));
  }
  CHECK(rows.back()[1] == joules(u["total"]["joules"].get<double>()));
  // One bar per day of the default 30-day period, days without use included.
  CHECK(d.browser.eval("document.querySelector('.bar-chart').dataset.bars") == "30");
  d.screenshot("usage");
  d.check_no_errors();
}

TEST_CASE("web dashboard: the devices page shows power and energy and follows a drain") {
  Dashboard d({"--devices", "cpu:2", "--torch-threads", "1"});
  d.sign_in("#/devices");
  const json devices = get(d.api, "/v1/devices", d.token)["items"];
  REQUIRE(devices.size() == 2);
  d.browser.wait_for("document.querySelectorAll('#rows tr').length === 2");
  const json rows = d.browser.eval("[...document.querySelectorAll('#rows tr')].map(r => [r.dataset.name, r.cells[2].textContent, r.querySelector('.power').textContent, r.querySelector('.energy').textContent])");
  for (size_t i = 0; i < devices.size(); ++i) {
    CHECK(rows[i][0] == devices[i]["name"]);
    CHECK(rows[i][1] == devices[i]["state"]);
    CHECK(rows[i][2] == fixed(devices[i]["power_watts"].get<double>(), 1) + " W");  // the model meter's idle power holds still
    CHECK(rows[i][3].get<std::string>().find('J') != std::string::npos);
  }
  // Power is sampled while the page is open: the chart grows.
  d.browser.wait_for("+document.querySelector('#power-charts svg').dataset.points >= 2", 20);
  d.check_live_mode();
  // A drain made through the API shows up in the open page.
  REQUIRE(d.api.post("/v1/devices/cpu:1/drain", "", kAdmin).status == 200);
  d.browser.wait_for("document.querySelector('#rows tr[data-name=\"cpu:1\"]').cells[2].textContent === 'drained'", 20);
  d.screenshot("devices");
  d.check_no_errors();
}

TEST_CASE("web dashboard: an activity's page rides out kill -9 and a restart on the same port, missing and doubling no event") {
  Dashboard d({"--devices", "cpu:1", "--torch-threads", "1"});
  REQUIRE(d.api.post("/v1/devices/cpu:0/drain", "", kAdmin).status == 200);
  const std::string id = submit(d, spec("crashy", "class", 4));
  wait_for(d.api, "/v1/activities/" + id, d.token, [](const json& a) { return a["state"] != "queued"; });
  d.browser.call("Page.addScriptToEvaluateOnNewDocument", {{"source", kStreamProbe}});
  d.sign_in("#/activities/" + id);
  d.check_live_mode();
  auto rounds_shown = [&] {
    return std::stoi(d.browser.eval("document.getElementById('view').dataset.rounds || '0'").get<std::string>());
  };

  // Live: the first rounds train while the page is open; then the device is drained, so nothing
  // changes while mufld is down, and the page settles: no request in flight and no event for
  // 1.5 s (longer than its 0.5 s coalescing of refreshes), so no refresh is left to fail.
  REQUIRE(d.api.post("/v1/devices/cpu:0/resume", "", kAdmin).status == 200);
  d.browser.wait_for("+document.getElementById('view').dataset.rounds >= 1", 60);
  REQUIRE(d.api.post("/v1/devices/cpu:0/drain", "", kAdmin).status == 200);
  wait_for(d.api, "/v1/devices", kAdmin, [](const json& p) { return p["items"][0]["state"] == "drained"; }, 60);
  const size_t rounds_before = get_all_items(d.api, "/v1/activities/" + id + "/rounds", d.token).size();
  REQUIRE(rounds_before < 4);
  d.browser.wait_for("document.getElementById('view').dataset.rounds === '" + std::to_string(rounds_before) +
                     "' && window.__stream.inFlight === 0 && performance.now() - window.__stream.lastEventAt > 1500", 30);
  CHECK(rounds_shown() == static_cast<int>(rounds_before));
  const json before = d.browser.eval("window.__stream");
  REQUIRE(before["connects"].size() == 1);
  REQUIRE_FALSE(before["events"].empty());
  const std::string last_id = before["events"].back()["id"];

  // Down: the page says so, and its next try fails.
  REQUIRE(d.mufld.stop(SIGKILL) == 128 + SIGKILL);
  d.browser.wait_for("window.__stream.connects.some((c) => c.result === 'failed')", 30);
  CHECK(d.browser.eval("document.getElementById('live').dataset.mode") == "reconnecting");
  CHECK_THAT(d.browser.eval("document.getElementById('live').textContent").get<std::string>(),
             Catch::StartsWith("stream lost; reconnecting in "));

  // Back on the same port, but the page is offline until a round has trained there: its events
  // can reach the page only through the replay that its Last-Event-ID asks for.
  d.browser.call("Network.enable");
  d.browser.call("Network.emulateNetworkConditions",
                 {{"offline", true}, {"latency", 0}, {"downloadThroughput", -1}, {"uploadThroughput", -1}});
  CHECK(d.browser.eval("navigator.onLine") == false);
  d.mufld.start();
  REQUIRE(d.api.post("/v1/devices/cpu:0/resume", "", kAdmin).status == 200);
  wait_for(d.api, "/v1/activities/" + id + "/rounds", d.token,
           [&](const json& p) { return p["items"].size() > rounds_before; }, 60);
  CHECK(rounds_shown() == static_cast<int>(rounds_before));  // it heard nothing yet
  d.browser.call("Network.emulateNetworkConditions",
                 {{"offline", false}, {"latency", 0}, {"downloadThroughput", -1}, {"uploadThroughput", -1}});

  // It reconnects by itself and shows the end: every round once, as the API lists them.
  d.browser.wait_for("document.getElementById('view').dataset.rounds === '4' &&"
                     " document.querySelector('#state .badge').textContent === 'succeeded'", 60);
  CHECK(d.browser.eval("document.getElementById('live').dataset.mode") == "live");
  const json rounds = get_all_items(d.api, "/v1/activities/" + id + "/rounds", d.token);
  REQUIRE(rounds.size() == 4);
  CHECK(d.browser.eval("[...document.querySelectorAll('#round-rows tr')].map((r) => +r.dataset.round)") ==
        json::array({4, 3, 2, 1}));
  CHECK(d.browser.eval("document.querySelector('#loss-chart svg').dataset.points") == "4");
  CHECK(d.browser.eval("document.getElementById('progress-text').textContent") == "round 4 of 4");

  // The stream: the first reconnect that got through carried the last id seen before the kill,
  // and what the page received over all its connections is exactly what mufld stored from its
  // first event to the activity's end: nothing missed, nothing twice.
  const json after = d.browser.eval("window.__stream");
  json reopened;
  for (size_t i = 1; i < after["connects"].size() && reopened.is_null(); ++i)
    if (after["connects"][i]["result"] == "200") reopened = after["connects"][i];
  REQUIRE(reopened.is_object());
  CHECK(reopened["lastId"] == last_id);
  const json& received = after["events"];
  const int64_t first_id = std::stoll(received.at(0)["id"].get<std::string>());
  SseClient replay(d.mufld.port(), "/v1/events?after=" + std::to_string(first_id - 1), d.token);
  std::vector<SseEvent> stored;
  bool ended = false;
  while (!ended) {
    auto e = replay.next(std::chrono::seconds(10));
    REQUIRE(e.has_value());
    stored.push_back(*e);
    const json data = json::parse(e->data);
    ended = e->type == "activity.state" && data["activity_id"] == id && data["state"] == "succeeded";
  }
  // (Events after the activity's end are not compared.)
  std::vector<std::string> got, want;
  for (const auto& e : received) got.push_back(e["id"]);
  for (const auto& e : stored) want.push_back(e.id);
  if (got.size() > want.size()) got.resize(want.size());
  REQUIRE(got == want);
  int finished = 0;
  for (size_t i = 0; i < stored.size(); ++i) {
    INFO("event " << stored[i].id);
    CHECK(received[i]["type"] == stored[i].type);
    CHECK(received[i]["data"] == stored[i].data);
    finished += stored[i].type == "round.finished";
  }
  CHECK(finished == 4);
  d.check_no_errors(true);
}

TEST_CASE("web dashboard: the event-stream parser takes any chunking, CRLF, comments and multi-line data") {
  Dashboard d({"--devices", "cpu:1"});
  d.browser.navigate(d.base() + "/");
  const json events = d.browser.eval(R"JS(import('/assets/live.js').then(({ SseParser }) => {
    const out = [];
    const p = new SseParser((e) => out.push(e));
    const stream = ': keep-alive\r\n\r\nid: 7\r\nevent: round.finished\r\ndata: {"a":\r\ndata: 1}\r\n\r\n' +
                   'data: no id\n\nid: 9\nevent: x\ndata:tight\n\nid: 10\rdata: cr only\r\r\n';
    // Every split point of the stream into two chunks, CR|LF ones included, gives the same events.
    const whole = JSON.stringify((() => { const o = []; const q = new SseParser((e) => o.push(e)); q.feed(stream); return o; })());
    for (let i = 0; i <= stream.length; ++i) {
      const o = [];
      const q = new SseParser((e) => o.push(e));
      q.feed(stream.slice(0, i));
      q.feed(stream.slice(i));
      if (JSON.stringify(o) !== whole) return 'split at ' + i + ' differs';
    }
    p.feed(stream);
    return out;
  }))JS");
  INFO(events.dump());
  REQUIRE(events.is_array());
  REQUIRE(events.size() == 4);
  CHECK(events[0] == json({{"id", "7"}, {"type", "round.finished"}, {"data", "{\"a\":\n1}"}}));
  CHECK(events[1] == json({{"id", "7"}, {"type", "message"}, {"data", "no id"}}));  // the last id carries over
  CHECK(events[2] == json({{"id", "9"}, {"type", "x"}, {"data", "tight"}}));
  CHECK(events[3] == json({{"id", "10"}, {"type", "message"}, {"data", "cr only"}}));
  d.check_no_errors();
}

TEST_CASE("web dashboard: the live feed reconnects with Last-Event-ID when the stream ends, and polls on a 404") {
  Dashboard d({"--devices", "cpu:1"});
  d.browser.navigate(d.base() + "/");
  // A LiveFeed over a scripted fetch: the first stream sends event 5 and ends; the reconnect
  // must carry Last-Event-ID 5, and its 404 turns the feed to polling.
  const json r = d.browser.eval(R"JS((async () => {
    const { LiveFeed } = await import('/assets/live.js');
    const calls = [];
    const realFetch = window.fetch;
    window.fetch = async (url, opts) => {
      calls.push({ url, auth: opts.headers.Authorization, lastId: opts.headers['Last-Event-ID'] ?? null, at: performance.now() });
      if (calls.length === 1) {
        const text = 'id: 5\nevent: activity.state\ndata: {"id":5,"type":"activity.state"}\n\n: keep-alive\n\n';
        const body = new ReadableStream({ start(c) { c.enqueue(new TextEncoder().encode(text)); c.close(); } });
        return new Response(body, { status: 200, headers: { 'Content-Type': 'text/event-stream' } });
      }
      return new Response('{}', { status: 404, headers: { 'Content-Type': 'application/problem+json' } });
    };
    const events = [], modes = [];
    let opens = 0;
    const feed = await new Promise((resolve) => {
      const f = new LiveFeed({ onEvent: (e) => events.push(e.id), onOpen: () => ++opens, onUnauthorized: () => {},
                               onStatus: (s) => { modes.push(s.mode); if (s.mode === 'polling') resolve(f); } });
      f.start('tok');
    });
    feed.stop();
    window.fetch = realFetch;
    return { calls, events, modes, opens, waited: calls[1].at - calls[0].at };
  })())JS");
  INFO(r.dump());
  REQUIRE(r["calls"].size() == 2);
  CHECK(r["calls"][0]["url"] == "/v1/events");
  CHECK(r["calls"][0]["auth"] == "Bearer tok");
  CHECK(r["calls"][0]["lastId"].is_null());  // the first connect starts live
  CHECK(r["calls"][1]["lastId"] == "5");
  CHECK(r["waited"].get<double>() >= 900);  // the first backoff is 1 s
  CHECK(r["events"] == json::array({5}));
  CHECK(r["opens"] == 1);
  CHECK(r["modes"] == json::array({"off", "connecting", "live", "reconnecting", "connecting", "polling", "off"}));
  d.check_no_errors();
}

TEST_CASE("web dashboard: every file in web/CMakeLists.txt is served with its content type") {
  // The file list as web/CMakeLists.txt gives it to the embedding step.
  std::ifstream in(std::string(MUFL_SOURCE_DIR) + "/web/CMakeLists.txt");
  const std::string cmake((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  const size_t from = cmake.find("set(MUFL_WEB_FILES");
  REQUIRE(from != std::string::npos);
  std::stringstream list(cmake.substr(from + 18, cmake.find(')', from) - from - 18));
  std::vector<std::string> files;
  for (std::string f; list >> f;) files.push_back(f);
  REQUIRE(files.size() >= 10);

  TempDir dir;
  MufldProcess mufld(MUFLD_PATH, dir.path(), kAdmin, {"--devices", "cpu:1"});
  HttpClient c("127.0.0.1", mufld.port());
  for (const auto& f : files) {
    INFO(f);
    const auto r = c.get("/assets/" + f);
    CHECK(r.status == 200);
    const std::string ext = f.substr(f.rfind('.'));
    const std::string want = ext == ".js" ? "text/javascript; charset=utf-8" : ext == ".css" ? "text/css; charset=utf-8" : "text/html; charset=utf-8";
    CHECK(r.header("content-type") == want);
    CHECK(r.header("x-content-type-options") == "nosniff");
    CHECK(r.header("content-security-policy").find("script-src 'self'") != std::string::npos);
    std::ifstream src(std::string(MUFL_SOURCE_DIR) + "/web/" + f, std::ios::binary);
    CHECK(r.body == std::string((std::istreambuf_iterator<char>(src)), std::istreambuf_iterator<char>()));
  }
  CHECK(c.get("/assets/no-such.js").status == 404);
}

TEST_CASE("web dashboard: a wrong token gets a clear error and no page") {
  Dashboard d({"--devices", "cpu:1"});
  d.browser.navigate(d.base() + "/#/activities");
  d.browser.eval("document.getElementById('token').value = 'mufl_not-a-token'; document.getElementById('token-form').requestSubmit(); true");
  d.browser.wait_for("!document.getElementById('error').hidden");
  CHECK(d.browser.eval("document.querySelector('#error strong').textContent") == "Token rejected");
  CHECK(d.browser.eval("document.getElementById('view').hidden") == true);
  CHECK(d.browser.eval("document.getElementById('nav').hidden") == true);
  // The browser reports the 401 itself; that is the only error.
  REQUIRE(d.browser.errors().size() == 1);
  CHECK(d.browser.errors()[0].find("401") != std::string::npos);
}
