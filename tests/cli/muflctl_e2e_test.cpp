// muflctl end to end: the real muflctl binary against the real mufld, checking its stdout
// (--json parsed), its stderr and its exit codes.
#include <catch2/catch.hpp>

#include <signal.h>

#include <filesystem>
#include <fstream>
#include <future>
#include <memory>
#include <nlohmann/json.hpp>
#include <set>

#include "core/file_io.h"
#include "tests/cli/cli_runner.h"
#include "tests/support/http_client.h"
#include "tests/support/json_poll.h"
#include "tests/support/metrics_text.h"
#include "tests/support/mufld_process.h"
#include "tests/support/temp_dir.h"

using namespace mufl::testing;
using nlohmann::json;

namespace {

const std::string kAdmin = "cli-e2e-admin-token";

// One mufld with one tenant, and muflctl pointed at it through the environment.
struct Fixture {
  explicit Fixture(const std::vector<std::string>& args = {"--devices", "none"})
      : mufld(MUFLD_PATH, dir.path(), kAdmin, args), http("127.0.0.1", mufld.port()) {
    auto t = http.post("/v1/tenants", R"({"name":"cli","quotas":{"max_active_activities":50}})", kAdmin);
    REQUIRE(t.status == 201);
    token = json::parse(t.body)["token"];
    server = "http://127.0.0.1:" + std::to_string(mufld.port());
  }

  CliRun muflctl(const std::vector<std::string>& args, const std::string& stdin_text = "") {
    CliRun r = run_cli(MUFLCTL_PATH, args, {{"MUFL_SERVER", server}, {"MUFL_TOKEN", token}}, stdin_text);
    UNSCOPED_INFO("muflctl exit " << r.exit_code << "\nstdout:\n" << r.out << "\nstderr:\n" << r.err);
    return r;
  }

  std::string write(const std::string& name, const std::string& text) {
    std::ofstream(files.file(name), std::ios::binary) << text;
    return files.file(name);
  }

  size_t activity_count() { return get(http, "/v1/activities", token)["items"].size(); }

  TempDir dir, files;
  MufldProcess mufld;
  HttpClient http;
  std::string token, server;
};

std::vector<std::string> lines_of(const std::string& text) {
  std::vector<std::string> out;
  size_t start = 0;
  for (size_t nl; (nl = text.find('\n', start)) != std::string::npos; start = nl + 1)
    out.push_back(text.substr(start, nl - start));
  if (start < text.size()) out.push_back(text.substr(start));
  return out;
}

std::string activity(const std::string& name, int rounds = 1000) {
  return json{{"name", name}, {"dataset", "synthetic"}, {"task", "class"}, {"rounds", rounds}}.dump();
}

}  // namespace

TEST_CASE("muflctl e2e: submit one and many, then list and get them") {
  Fixture f;
  CliRun one = f.muflctl({"submit", f.write("one.json", activity("one"))});
  REQUIRE(one.exit_code == 0);
  const auto ids = lines_of(one.out);
  REQUIRE(ids.size() == 1);
  CHECK(ids[0].rfind("act_", 0) == 0);
  CHECK(one.err.empty());

  const std::string many = "[" + activity("a") + "," + activity("b") + "," + activity("c") + "]";
  CliRun three = f.muflctl({"submit", "--json", f.write("many.json", many)});
  REQUIRE(three.exit_code == 0);
  const json doc = json::parse(three.out);
  REQUIRE(doc["items"].size() == 3);
  CHECK(doc["failed"].is_null());
  for (int i = 0; i < 3; ++i) {
    CHECK(doc["items"][i]["index"] == i);
    CHECK(doc["items"][i]["activity"]["name"] == std::string(1, static_cast<char>('a' + i)));
    CHECK(doc["items"][i]["id"] == doc["items"][i]["activity"]["id"]);
  }

  CliRun stdin_submit = f.muflctl({"submit", "-"}, activity("from-stdin"));
  REQUIRE(stdin_submit.exit_code == 0);
  CHECK(f.activity_count() == 5);

  CliRun list = f.muflctl({"list", "--json"});
  REQUIRE(list.exit_code == 0);
  CHECK(json::parse(list.out)["items"].size() == 5);  // the API's page, unchanged

  CliRun all = f.muflctl({"list", "--json", "--limit", "2", "--all"});
  REQUIRE(all.exit_code == 0);
  const json every = json::parse(all.out);
  CHECK(every["items"].size() == 5);
  CHECK(every["next_cursor"].is_null());

  CliRun page = f.muflctl({"list", "--limit", "2"});
  REQUIRE(page.exit_code == 0);
  CHECK(lines_of(page.out).size() == 3);  // header + 2
  CHECK(lines_of(page.out)[0].rfind("ID", 0) == 0);
  CHECK_THAT(page.err, Catch::Contains("more: --cursor"));

  CliRun queued = f.muflctl({"list", "--state", "queued", "--json"});
  REQUIRE(queued.exit_code == 0);
  CHECK(json::parse(queued.out)["items"].size() == 5);

  CliRun got = f.muflctl({"get", ids[0], "--json"});
  REQUIRE(got.exit_code == 0);
  CHECK(json::parse(got.out)["id"] == ids[0]);
  CliRun human = f.muflctl({"get", ids[0]});
  REQUIRE(human.exit_code == 0);
  CHECK_THAT(human.out, Catch::Contains("name:          one\n"));
  CHECK_THAT(human.out, Catch::Contains("state:         queued\n"));

  CliRun missing = f.muflctl({"get", "act_doesnotexist"});
  CHECK(missing.exit_code == 3);
  CHECK_THAT(missing.err, Catch::Contains("Not Found (404)"));
}

TEST_CASE("muflctl e2e: the idempotency key makes a rerun of submit create nothing twice") {
  Fixture f;
  const std::string file = f.write("many.json", "[" + activity("a") + "," + activity("b") + "]");
  CliRun first = f.muflctl({"submit", file, "--idempotency-key", "batch-1"});
  CliRun again = f.muflctl({"submit", file, "--idempotency-key", "batch-1"});
  REQUIRE(first.exit_code == 0);
  REQUIRE(again.exit_code == 0);
  CHECK(first.out == again.out);
  CHECK(f.activity_count() == 2);
}

TEST_CASE("muflctl e2e: a bad item stops the array there and the ones before it stay") {
  Fixture f;
  const std::string bad = json{{"name", "bad"}, {"dataset", "synthetic"}, {"task", "class"}, {"rounds", 0}}.dump();
  const std::string file = f.write("mixed.json", "[" + activity("good") + "," + bad + "," + activity("later") + "]");
  CliRun r = f.muflctl({"submit", file});
  CHECK(r.exit_code == 3);
  REQUIRE(lines_of(r.out).size() == 1);
  CHECK(lines_of(r.out)[0].rfind("act_", 0) == 0);
  CHECK_THAT(r.err, Catch::Contains("item 1 (bad): Bad Request (400)"));
  CHECK_THAT(r.err, Catch::Contains("rounds: "));
  CHECK_THAT(r.err, Catch::Contains("1 of 3 submitted"));
  CHECK(f.activity_count() == 1);

  CliRun j = f.muflctl({"submit", "--json", file});
  CHECK(j.exit_code == 3);
  const json doc = json::parse(j.out);
  CHECK(doc["items"].size() == 1);
  CHECK(doc["failed"]["index"] == 1);
  CHECK(doc["failed"]["status"] == 400);
  CHECK(doc["failed"]["problem"]["title"] == "Bad Request");
  CHECK(f.activity_count() == 2);
}

TEST_CASE("muflctl e2e: a bad file submits nothing") {
  Fixture f;
  CliRun not_json = f.muflctl({"submit", f.write("bad.json", "{\"name\": ")});
  CHECK(not_json.exit_code == 2);
  CHECK_THAT(not_json.err, Catch::Contains("is not valid JSON"));
  CliRun scalar = f.muflctl({"submit", f.write("n.json", "42")});
  CHECK(scalar.exit_code == 2);
  CHECK_THAT(scalar.err, Catch::Contains("must hold an activity object or an array"));
  CliRun mixed = f.muflctl({"submit", f.write("m.json", "[" + activity("ok") + ", 3]")});
  CHECK(mixed.exit_code == 2);
  CHECK_THAT(mixed.err, Catch::Contains("item 1 is not a JSON object"));
  CliRun empty = f.muflctl({"submit", f.write("e.json", "[]")});
  CHECK(empty.exit_code == 2);
  CliRun missing = f.muflctl({"submit", f.files.file("nope.json")});
  CHECK(missing.exit_code == 1);
  CHECK_THAT(missing.err, Catch::Contains("cannot read"));
  CHECK(f.activity_count() == 0);
  CHECK(not_json.out.empty());
}

TEST_CASE("muflctl e2e: a wrong token exits 3 with the problem's title and detail") {
  Fixture f;
  CliRun r = run_cli(MUFLCTL_PATH, {"list", "--server", f.server, "--token", "mufl_wrong"});
  CHECK(r.exit_code == 3);
  CHECK(r.out.empty());
  CHECK_THAT(r.err, Catch::StartsWith("muflctl: Unauthorized (401): "));
  CHECK_THAT(r.err, Catch::Contains("token"));
  CliRun none = run_cli(MUFLCTL_PATH, {"devices", "--server", f.server});
  CHECK(none.exit_code == 3);
  CHECK_THAT(none.err, Catch::Contains("Unauthorized (401)"));
}

TEST_CASE("muflctl e2e: a server that is down exits 5") {
  std::string server;
  {
    TempDir dir;
    MufldProcess mufld(MUFLD_PATH, dir.path(), kAdmin, {"--devices", "none"});
    server = "http://127.0.0.1:" + std::to_string(mufld.port());
    mufld.stop(SIGKILL);  // gone: nothing listens on its port now
  }
  for (const std::vector<std::string>& args : {std::vector<std::string>{"list"}, {"get", "act_x"}, {"watch", "act_x"}}) {
    std::vector<std::string> a = args;
    a.insert(a.end(), {"--server", server, "--token", "t"});
    CliRun r = run_cli(MUFLCTL_PATH, a);
    INFO(args[0] << ": " << r.err);
    CHECK(r.exit_code == 5);
    CHECK_THAT(r.err, Catch::Contains("cannot connect to 127.0.0.1:"));
  }
  CliRun https = run_cli(MUFLCTL_PATH, {"list", "--server", "https://" + server.substr(7)});
  CHECK(https.exit_code == 5);  // no TCP connection, so no TLS failure either
  CHECK_THAT(https.err, Catch::Contains("cannot connect to 127.0.0.1:"));
  CliRun usage = run_cli(MUFLCTL_PATH, {"list", "--server", "ftp://" + server.substr(7)});
  CHECK(usage.exit_code == 2);
}

TEST_CASE("muflctl e2e: cancel, and watching a cancelled activity exits 7") {
  Fixture f;
  CliRun submitted = f.muflctl({"submit", f.write("a.json", activity("a"))});
  REQUIRE(submitted.exit_code == 0);
  const std::string id = lines_of(submitted.out).at(0);

  // Watch it while it waits for a device (--devices none), then cancel it under the watch.
  auto watching = std::async(std::launch::async, [&] { return f.muflctl({"watch", id, "--interval", "0.1"}); });
  CliRun cancelled = f.muflctl({"cancel", id});
  REQUIRE(cancelled.exit_code == 0);
  CHECK(cancelled.out == id + " cancelled\n");
  CliRun w = watching.get();
  CHECK(w.exit_code == 7);
  CHECK_THAT(w.err, Catch::Contains(id + " cancelled"));
  CHECK(w.out.find('\r') == std::string::npos);
  CHECK_THAT(w.out, Catch::Contains(id + " round 0/1000 cancelled"));

  CliRun twice = f.muflctl({"cancel", id, "--json"});
  CHECK(twice.exit_code == 0);
  CHECK(json::parse(twice.out)["state"] == "cancelled");
  CHECK(f.muflctl({"watch", id}).exit_code == 7);  // already over: at once
  CliRun model = f.muflctl({"download", id, "-o", f.files.file("m.pt")});
  CHECK(model.exit_code == 3);
  CHECK_THAT(model.err, Catch::Contains("Conflict (409)"));
  CHECK_FALSE(std::filesystem::exists(f.files.file("m.pt")));
}

TEST_CASE("muflctl e2e: watch a synthetic activity to the end, download its model, and show groups, devices, usage") {
  Fixture f({"--devices", "cpu:1", "--torch-threads", "1"});
  const std::string spec = json{{"name", "w"},     {"dataset", "synthetic"}, {"task", "class"}, {"rounds", 3},
                                {"clients", 4},    {"clients_per_round", 2}, {"merge", false}}.dump();
  CliRun submitted = f.muflctl({"submit", f.write("w.json", spec)});
  REQUIRE(submitted.exit_code == 0);
  const std::string id = lines_of(submitted.out).at(0);

  CliRun w = f.muflctl({"watch", id, "--interval", "0.1"});
  REQUIRE(w.exit_code == 0);
  CHECK(w.err.empty());
  CHECK(w.out.find('\r') == std::string::npos);
  const auto lines = lines_of(w.out);
  REQUIRE_FALSE(lines.empty());
  CHECK_THAT(lines.back(), Catch::StartsWith(id + " round 3/3 succeeded loss "));
  for (int r = 1; r <= 3; ++r) {  // one line per round, however fast they went by
    bool seen = false;
    for (const auto& l : lines) seen = seen || l.rfind(id + " round " + std::to_string(r) + "/3 ", 0) == 0;
    INFO("round " << r);
    CHECK(seen);
  }

  CliRun wj = f.muflctl({"watch", id, "--json"});
  REQUIRE(wj.exit_code == 0);
  const json last = json::parse(lines_of(wj.out).back());
  CHECK(last["state"] == "succeeded");
  CHECK(last["round"] == 3);
  CHECK(last["rounds"] == 3);
  CHECK(last["metrics"].contains("loss"));

  // Download: the same bytes as GET /model, never over an existing file without --force.
  const auto model = f.http.get("/v1/activities/" + id + "/model", f.token);
  REQUIRE(model.status == 200);
  const std::string path = f.files.file("w.pt");
  CliRun d = f.muflctl({"download", id, "-o", path, "--json"});
  REQUIRE(d.exit_code == 0);
  const json dl = json::parse(d.out);
  CHECK(dl["bytes"] == model.body.size());
  CHECK(dl["sha256"] == mufl::sha256_hex(model.body));
  CHECK(*mufl::read_file(path) == model.body);

  std::ofstream(path, std::ios::binary | std::ios::trunc) << "mine";
  CliRun refused = f.muflctl({"download", id, "-o", path});
  CHECK(refused.exit_code == 1);
  CHECK_THAT(refused.err, Catch::Contains("exists; use --force"));
  CHECK(*mufl::read_file(path) == "mine");
  CliRun forced = f.muflctl({"download", id, "-o", path, "--force"});
  CHECK(forced.exit_code == 0);
  CHECK_THAT(forced.out, Catch::StartsWith("wrote " + path));
  CHECK(*mufl::read_file(path) == model.body);
  // --cluster asks for a client cluster's model, which this unclustered activity has not.
  CliRun cluster = f.muflctl({"download", id, "-o", f.files.file("c0.pt"), "--cluster", "0"});
  CHECK(cluster.exit_code != 0);
  CHECK_THAT(cluster.err, Catch::Contains("does not cluster its clients"));
  CHECK_FALSE(std::filesystem::exists(f.files.file("c0.pt")));

  CliRun groups = f.muflctl({"groups", "--json"});
  REQUIRE(groups.exit_code == 0);
  const json g = json::parse(groups.out);
  REQUIRE(g["items"].size() == 1);
  const std::string gid = g["items"][0]["id"];
  CliRun one_group = f.muflctl({"groups", gid});
  REQUIRE(one_group.exit_code == 0);
  CHECK_THAT(one_group.out, Catch::Contains("id:            " + gid));
  CHECK_THAT(one_group.out, Catch::Contains(id));

  CliRun devices = f.muflctl({"devices", "--json"});
  REQUIRE(devices.exit_code == 0);
  CHECK(json::parse(devices.out)["items"][0]["name"] == "cpu:0");
  CliRun devices_table = f.muflctl({"devices"});
  CHECK_THAT(devices_table.out, Catch::StartsWith("NAME"));
  CHECK_THAT(devices_table.out, Catch::Contains("cpu:0"));

  CliRun usage = f.muflctl({"usage", "--json"});
  REQUIRE(usage.exit_code == 0);
  const json u = json::parse(usage.out);
  CHECK(u["total"]["work_units"] == 3);
  CliRun bad_usage = f.muflctl({"usage", "--from", "2026-02-01", "--to", "2026-01-01"});
  CHECK(bad_usage.exit_code == 3);
  CHECK_THAT(bad_usage.err, Catch::Contains("from: must not be after to"));
}

TEST_CASE("muflctl e2e: watch rides out kill -9 and a restart on the same port, printing every round once") {
  Fixture f({"--devices", "cpu:1", "--torch-threads", "1"});
  // One client slot a round and one LibTorch thread: under a second a round on an idle machine.
  const std::string spec = json{{"name", "crash"}, {"dataset", "synthetic"}, {"task", "class"}, {"rounds", 4},
                                {"clients", 4},     {"clients_per_round", 1}, {"merge", false}}.dump();
  CliRun submitted = f.muflctl({"submit", f.write("c.json", spec)});
  REQUIRE(submitted.exit_code == 0);
  const std::string id = lines_of(submitted.out).at(0);

  const std::map<std::string, std::string> env = {{"MUFL_SERVER", f.server}, {"MUFL_TOKEN", f.token}};
  std::promise<pid_t> started;
  auto watching = std::async(std::launch::async, [&] {
    return run_cli(MUFLCTL_PATH, {"watch", id, "--json"}, env, "", [&](pid_t pid) { started.set_value(pid); });
  });
  const pid_t watcher = started.get_future().get();
  // Its stream is open (the only subscriber) and a round has finished.
  auto subscribers = [&] { return metric(f.http.get("/metrics").body, "mufl_event_subscribers"); };
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  while (subscribers() != 1 && std::chrono::steady_clock::now() < deadline)
    REQUIRE(watching.wait_for(std::chrono::milliseconds(50)) == std::future_status::timeout);
  REQUIRE(subscribers() == 1);
  const json before = wait_for(f.http, "/v1/activities/" + id, f.token,
                               [](const json& a) { return a["progress"]["round"].get<int>() >= 1; }, 60);
  const int round_before = before["progress"]["round"];
  REQUIRE(round_before < 4);

  // watch is frozen while mufld is killed mid-training, restarted on the same port, and trains
  // another round there: that round's event can reach watch only through the replay that its
  // Last-Event-ID asks for (a reconnect without it would jump to the current round).
  REQUIRE(kill(watcher, SIGSTOP) == 0);
  struct Resume {
    pid_t pid;
    ~Resume() { kill(pid, SIGCONT); }  // also when a REQUIRE below fails
  } resume{watcher};
  REQUIRE(f.mufld.stop(SIGKILL) == 128 + SIGKILL);
  f.mufld.start();  // same data dir, same port: the group resumes from its checkpoint
  wait_for(f.http, "/v1/activities/" + id, f.token,
           [&](const json& a) { return a["progress"]["round"].get<int>() > round_before; }, 60);
  REQUIRE(kill(watcher, SIGCONT) == 0);

  REQUIRE(watching.wait_for(std::chrono::seconds(60)) == std::future_status::ready);
  CliRun w = watching.get();
  INFO("muflctl exit " << w.exit_code << "\nstdout:\n" << w.out << "\nstderr:\n" << w.err);
  CHECK(w.exit_code == 0);
  CHECK(w.err.empty());
  // One --json line per change: rounds 1..4 each once, in order, with the metrics the API has
  // for them (a round missed while mufld was down, or shown twice, breaks this), and the last
  // line is the end.
  const json history = get_all_items(f.http, "/v1/activities/" + id + "/rounds", f.token);
  REQUIRE(history.size() == 4);
  std::vector<json> shown;
  for (const auto& l : lines_of(w.out)) shown.push_back(json::parse(l));
  REQUIRE_FALSE(shown.empty());
  std::vector<int> rounds;
  std::set<std::pair<int, std::string>> seen;
  for (const auto& line : shown) {
    CHECK(line["activity_id"] == id);
    const int r = line["round"];
    CHECK(seen.insert({r, line["state"]}).second);
    if (r > 0 && (rounds.empty() || rounds.back() != r)) {
      rounds.push_back(r);
      CHECK(line["metrics"] == history[r - 1]["metrics"]["class"]);
    }
  }
  CHECK(rounds == std::vector<int>{1, 2, 3, 4});
  CHECK(shown.back()["state"] == "succeeded");
  CHECK(shown.back()["round"] == 4);
}

TEST_CASE("muflctl e2e: watching an activity that fails exits 6 with its reason") {
  // Every client drops out: the round is drawn again three times, then the activity fails.
  Fixture f({"--devices", "cpu:1", "--torch-threads", "1", "--client-failure-rate", "0.999"});
  const std::string spec = json{{"name", "doomed"}, {"dataset", "synthetic"}, {"task", "class"}, {"rounds", 2},
                                {"clients", 4}, {"clients_per_round", 4}, {"min_clients", 4}, {"merge", false}}.dump();
  CliRun submitted = f.muflctl({"submit", f.write("d.json", spec)});
  REQUIRE(submitted.exit_code == 0);
  const std::string id = lines_of(submitted.out).at(0);
  CliRun w = f.muflctl({"watch", id, "--interval", "0.1"});
  CHECK(w.exit_code == 6);
  CHECK_THAT(w.err, Catch::StartsWith("muflctl: " + id + " failed"));
  CHECK_THAT(w.out, Catch::Contains(" failed"));
}
