// bench/dashboard: is the web dashboard still fast with 10,000 activities? Starts the real
// mufld (its device drained, so nothing trains), submits N activities, opens the dashboard in
// headless Chromium and measures, inside the page (performance.now):
//   candidate: the dashboard's list: one page of 50 through the API's cursor, from the click on
//              "Older →" (or the route change) until the page shows it; median of 7;
//   baseline:  what a list without pagination would do: fetch every activity (limit=1000, all
//              cursors), build one table row per activity and wait for the next frame; median of 3.
// Usage: dashboard [--n N] [--mufld PATH]   (default N = 10000; needs chromium on PATH)
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <iostream>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "tests/support/chromium.h"
#include "tests/support/http_client.h"
#include "tests/support/mufld_process.h"
#include "tests/support/temp_dir.h"

using namespace mufl::testing;
using nlohmann::json;

namespace {

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

// Resolves when `cond` (a JS expression) holds, checked once per animation frame.
const char* kUntil = "const until = (cond) => new Promise((ok) => { const f = () => (cond() ? ok() : requestAnimationFrame(f)); f(); });";

}  // namespace

int main(int argc, char** argv) {
  int n = 10000;
  std::string mufld_path = MUFLD_PATH;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string a = argv[i];
    if (a == "--n") n = std::stoi(argv[i + 1]);
    else if (a == "--mufld") mufld_path = argv[i + 1];
  }
  const std::string browser_path = Chromium::find_binary();
  if (browser_path.empty()) {
    std::cerr << "dashboard: no chromium on PATH (Debian package chromium)\n";
    return 2;
  }
  TempDir dir;
  MufldProcess mufld(mufld_path, dir.path(), "bench-admin", {"--devices", "cpu:1", "--db-sync", "normal"});
  HttpClient api("127.0.0.1", mufld.port());
  api.post("/v1/devices/cpu:0/drain", "", "bench-admin");
  const std::string token =
      json::parse(api.post("/v1/tenants", R"({"name":"bench","quotas":{"max_active_activities":1000000}})", "bench-admin").body)["token"];
  const auto t0 = std::chrono::steady_clock::now();
  for (int i = 0; i < n; ++i) {
    const json spec = {{"name", "activity " + std::to_string(i)}, {"dataset", "synthetic"}, {"task", "class"}, {"rounds", 5}, {"merge", false}};
    if (api.post("/v1/activities", spec.dump(), token).status != 201) {
      std::cerr << "dashboard: submit " << i << " failed\n";
      return 1;
    }
  }
  std::printf("submitted %d activities in %.1f s\n",
              n, std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());

  Chromium b(browser_path);
  b.navigate("http://127.0.0.1:" + std::to_string(mufld.port()) + "/#/activities");
  b.eval("document.getElementById('token').value = " + js_string(token) + "; document.getElementById('token-form').requestSubmit(); true");
  b.wait_for("document.querySelectorAll('#rows tr').length === 50", 60);

  // Candidate: the first page by route change (once warm), then six "Older →" pages.
  std::vector<double> candidate;
  candidate.push_back(b.eval(std::string("(async () => {") + kUntil +
                             "location.hash = '#/devices'; await until(() => document.querySelector('#power-charts'));"
                             "const t = performance.now(); location.hash = '#/activities';"
                             "await until(() => document.querySelectorAll('#rows tr').length === 50); return performance.now() - t; })()")
                          .get<double>());
  for (int page = 2; page <= 7; ++page) {
    candidate.push_back(b.eval(std::string("(async () => {") + kUntil +
                               "const t = performance.now(); document.getElementById('older').click();"
                               "await until(() => document.getElementById('page-info').textContent.startsWith('page " +
                               std::to_string(page) + " ')); return performance.now() - t; })()")
                            .get<double>());
  }
  // Baseline: every activity, fetched and drawn as rows.
  std::vector<double> baseline;
  int rows = 0;
  for (int rep = 0; rep < 3; ++rep) {
    const json r = b.eval(std::string("(async () => {") + kUntil + R"JS(
      const t = performance.now();
      const token = sessionStorage.getItem('mufl.token');
      let items = [], cursor = null;
      do {
        const q = cursor ? `&cursor=${cursor}` : '';
        const page = await (await fetch(`/v1/activities?limit=1000${q}`, { headers: { Authorization: `Bearer ${token}` } })).json();
        items = items.concat(page.items);
        cursor = page.next_cursor;
      } while (cursor);
      const body = document.createElement('tbody');
      for (const a of items) {
        const tr = document.createElement('tr');
        for (const v of [a.name, a.id, a.dataset, a.task, a.state, `${a.progress.round} / ${a.rounds}`, a.created_at]) {
          const td = document.createElement('td'); td.textContent = v; tr.append(td);
        }
        body.append(tr);
      }
      const old = document.getElementById('rows');
      old.replaceWith(body);
      await new Promise((ok) => requestAnimationFrame(() => requestAnimationFrame(ok)));
      const ms = performance.now() - t;
      body.replaceWith(old);
      return { ms, rows: items.length };
    })())JS");
    baseline.push_back(r["ms"].get<double>());
    rows = r["rows"].get<int>();
  }
  const double cand = median(candidate), base = median(baseline);
  std::printf("dashboard list page (50 rows): median %.1f ms over %zu loads (first %.1f ms, max %.1f ms)\n", cand, candidate.size(),
              candidate[0], *std::max_element(candidate.begin(), candidate.end()));
  std::printf("every activity (%d rows, 1000 per request): median %.1f ms over %zu loads\n", rows, base, baseline.size());
  std::printf("page errors: %zu\n", b.errors().size());
  for (const auto& e : b.errors()) std::printf("  %s\n", e.c_str());
  std::printf("{\"bench\":\"dashboard\",\"n\":%d,\"baseline_ms\":%.1f,\"candidate_ms\":%.1f,\"ratio\":%.2f}\n", n, base, cand, base / cand);
  return b.errors().empty() && rows == n ? 0 : 1;
}
