// mufld on a real one-node Slurm cluster (issue 16): the real mufld with --cluster slurm and no
// device of its own submits real mufl-worker jobs through sbatch onto the node's fake GPUs. A
// round trained by a worker must record exactly what the same round trained in mufld records
// (every random choice comes from the activity's seed; both train on the CPU with 1 thread), so
// the test compares each activity, round by round, with a run on a local device. Faults: a
// worker cancelled mid-round (scancel) or killed (kill -9) loses only that round, a mufld killed
// mid-run adopts its worker on restart, and neither the end of the work
// nor SIGTERM of mufld leaves a job in Slurm.
#include <algorithm>
#include <catch2/catch.hpp>

#include <signal.h>

#include <chrono>
#include <filesystem>
#include <map>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/file_io.h"
#include "tests/support/http_client.h"
#include "tests/support/json_poll.h"
#include "tests/support/mufld_process.h"
#include "tests/support/slurm_cluster.h"
#include "tests/support/sse_client.h"
#include "tests/support/temp_dir.h"

using namespace mufl::testing;
using nlohmann::json;

namespace {

const std::string kAdmin = "cluster-e2e-admin";
const std::string kScript = MUFL_SOURCE_DIR "/scripts/slurm-one-node";

json activity_body(const std::string& name, int rounds) {
  return {{"name", name}, {"dataset", "synthetic"}, {"task", "class"}, {"rounds", rounds},
          {"clients", 4}, {"clients_per_round", 2}, {"seed", 11}};
}

// mufld with `devices` ("none" for the cluster alone) and 1 LibTorch thread, as the workers.
std::vector<std::string> mufld_args(bool cluster) {
  std::vector<std::string> a = {"--grouping", "independent", "--torch-threads", "1", "--energy-meter", "model"};
  if (cluster) {
    a.insert(a.end(), {"--devices", "none", "--cluster", "slurm", "--cluster-refresh", "5", "--worker-command",
                       std::string(MUFL_WORKER_PATH) + " --torch-threads 1 --energy-meter model --give-up 60"});
  } else {
    a.insert(a.end(), {"--devices", "cpu:1"});
  }
  return a;
}

struct Service {
  TempDir dir;
  std::unique_ptr<MufldProcess> mufld;
  std::unique_ptr<HttpClient> client;
  std::string token;

  explicit Service(bool cluster) {
    mufld = std::make_unique<MufldProcess>(MUFLD_PATH, dir.path(), kAdmin, mufld_args(cluster));
    client = std::make_unique<HttpClient>("127.0.0.1", mufld->port());
    auto t = client->post("/v1/tenants", json{{"name", "team"}}.dump(), kAdmin);
    REQUIRE(t.status == 201);
    token = json::parse(t.body)["token"];
  }
  std::string submit(const json& body) {
    auto r = client->post("/v1/activities", body.dump(), token);
    REQUIRE(r.status == 201);
    return json::parse(r.body)["id"];
  }
  json wait_state(const std::string& id, const std::string& state, int seconds = 150) {
    return wait_for(*client, "/v1/activities/" + id, token, [&](const json& a) { return a["state"] == state; },
                    seconds);
  }
  // The activity's stored events, as "type round state" lines without ids, times and devices
  // (GET /v1/events replays them; the replay ends when no event comes within a second).
  std::vector<std::string> events(const std::string& id) {
    SseClient sse(mufld->port(), "/v1/events?after=0&activity=" + id, token);
    REQUIRE(sse.status() == 200);
    std::vector<std::string> out;
    while (auto e = sse.next(std::chrono::milliseconds(1000))) {
      const json d = json::parse(e->data);
      out.push_back(e->type + " " + (d.contains("round") ? d["round"].dump() : "-") + " " +
                    (d.contains("state") ? d["state"].get<std::string>() : "-") + " " +
                    (d.contains("metrics") ? d["metrics"].dump() : "-"));
    }
    return out;
  }
  // Each round's losses and metrics, without times and ids.
  std::vector<json> rounds(const std::string& id) {
    std::vector<json> out;
    for (const auto& r : get_all_items(*client, "/v1/activities/" + id + "/rounds", token))
      out.push_back({{"round", r["round"]}, {"train_loss", r["train_loss"]}, {"metrics", r["metrics"]}});
    return out;
  }
};

// The jobs Slurm lists now (squeue), as "id|name|state".
std::vector<std::string> squeue(const SlurmCluster& cluster) {
  auto r = cluster.run({"squeue", "--noheader", "--format", "%i|%j|%T"});
  REQUIRE(r.exit_code == 0);
  std::vector<std::string> out;
  std::istringstream lines(r.out);
  for (std::string line; std::getline(lines, line);)
    if (!line.empty()) out.push_back(line);
  return out;
}

// kill -9 of the mufl-worker process of worker `id` (found by MUFL_WORKER_ID in its
// environment); returns how many processes were killed.
int kill_worker_process(const std::string& id) {
  int killed = 0;
  for (const auto& entry : std::filesystem::directory_iterator("/proc")) {
    const std::string pid = entry.path().filename();
    if (pid.find_first_not_of("0123456789") != std::string::npos) continue;
    const auto env_text = mufl::read_file(entry.path().string() + "/environ");  // gone or not ours: skipped
    const auto cmdline = mufl::read_file(entry.path().string() + "/cmdline");
    if (!env_text.ok() || !cmdline.ok()) continue;
    if (env_text->find(std::string("MUFL_WORKER_ID=") + id + '\0') == std::string::npos) continue;
    if (cmdline->find("mufl-worker") == std::string::npos) continue;
    killed += ::kill(std::stoi(pid), SIGKILL) == 0;
  }
  return killed;
}

// The ids of the worker jobs Slurm lists now.
std::vector<int64_t> worker_jobs(const SlurmCluster& cluster) {
  std::vector<int64_t> out;
  for (const auto& line : squeue(cluster))
    if (line.find("|mufl-wrk_") != std::string::npos) out.push_back(std::stoll(line.substr(0, line.find('|'))));
  return out;
}

// The id Slurm gives the next job: a trivial job's (Slurm numbers jobs one by one).
int64_t next_job_id(const SlurmCluster& cluster) {
  auto r = cluster.run({"sbatch", "--parsable", "--wrap", "true"});
  REQUIRE(r.exit_code == 0);
  return std::stoll(r.out);
}

// Waits (bounded) until Slurm lists no job.
bool queue_empties(const SlurmCluster& cluster, int seconds = 30) {
  for (int i = 0; i < seconds * 10; ++i) {
    if (squeue(cluster).empty()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  return false;
}

// Waits (bounded) until Slurm runs at least `n` of mufld's worker jobs at once.
bool workers_run(const SlurmCluster& cluster, int n, int seconds = 60) {
  for (int i = 0; i < seconds * 10; ++i) {
    int running = 0;
    for (const auto& line : squeue(cluster))
      running += line.find("|mufl-wrk_") != std::string::npos && line.find("|RUNNING") != std::string::npos;
    if (running >= n) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  return false;
}

// What a local device records for `body`: its rounds and its events (computed once per body).
struct LocalRun {
  std::vector<json> rounds;
  std::vector<std::string> events;
};
const LocalRun& local_run(const json& body) {
  static std::map<std::string, LocalRun> cache;
  const std::string key = body.dump();
  if (!cache.count(key)) {
    Service local(false);
    const std::string id = local.submit(body);
    local.wait_state(id, "succeeded");
    cache[key] = {local.rounds(id), local.events(id)};
  }
  return cache[key];
}
const std::vector<json>& local_rounds(const json& body) { return local_run(body).rounds; }

}  // namespace

TEST_CASE("cluster e2e: two activities train as two Slurm jobs at once and record what a local device records") {
  const json a_body = activity_body("a", 3), b_body = activity_body("b", 3);
  const auto& expected = local_rounds(a_body);
  REQUIRE(expected.size() == 3);
  SlurmCluster cluster(kScript);
  Service svc(true);
  // The node's GPUs are devices, with their node and GRES.
  const json devices = get(*svc.client, "/v1/devices", svc.token)["items"];
  REQUIRE(devices.size() == 2);
  CHECK(devices[0]["name"].get<std::string>().rfind("slurm:", 0) == 0);
  CHECK(devices[0]["gres"] == "gpu:fake");
  CHECK(devices[0]["kind"] == "cuda");
  CHECK(devices[0]["state"] == "idle");
  CHECK(!devices[0]["host"].get<std::string>().empty());

  const std::string a = svc.submit(a_body), b = svc.submit(b_body);
  CHECK(workers_run(cluster, 2));  // both at once: two worker jobs RUNNING together
  svc.wait_state(a, "succeeded");
  svc.wait_state(b, "succeeded");
  CHECK(svc.rounds(a) == expected);
  CHECK(svc.rounds(b) == local_rounds(b_body));
  // Its events too: activity states, the group it trains in, each round's metrics.
  const std::vector<std::string> events = svc.events(a);
  CHECK(events.size() >= 5);
  CHECK(events == local_run(a_body).events);
  // The models download; the energy is in the ledger; no job is left in Slurm.
  CHECK(svc.client->get("/v1/activities/" + a + "/model", svc.token).status == 200);
  const json usage = get(*svc.client, "/v1/usage", svc.token);
  INFO(usage.dump());
  CHECK(usage.dump().find("\"joules\"") != std::string::npos);
  CHECK(queue_empties(cluster));
}

TEST_CASE("cluster e2e: a worker cancelled or killed mid-run loses only its round, and SIGTERM of mufld leaves no job") {
  const json body = activity_body("c", 4);
  const auto& expected = local_rounds(body);
  SlurmCluster cluster(kScript);
  Service svc(true);
  const std::string id = svc.submit(body);
  // After its first round, scancel the worker: the round it trains is lost and redone.
  wait_for(*svc.client, "/v1/activities/" + id, svc.token,
           [](const json& a) { return a["progress"]["round"].get<int>() >= 1; }, 150);
  std::string job;
  for (const auto& line : squeue(cluster))
    if (line.find("|mufl-wrk_") != std::string::npos) job = line.substr(0, line.find('|'));
  REQUIRE(!job.empty());
  REQUIRE(cluster.run({"scancel", job}).exit_code == 0);
  svc.wait_state(id, "succeeded");
  CHECK(svc.rounds(id) == expected);
  CHECK(queue_empties(cluster));

  // kill -9 of the worker process itself: Slurm's job ends with it, and the round is redone.
  const json w_body = activity_body("w", 4);
  const std::string w = svc.submit(w_body);
  wait_for(*svc.client, "/v1/activities/" + w, svc.token,
           [](const json& a) { return a["progress"]["round"].get<int>() >= 1; }, 150);
  std::string worker;
  for (const auto& line : squeue(cluster))
    if (auto at = line.find("|mufl-wrk_"); at != std::string::npos)
      worker = line.substr(at + 6, line.find('|', at + 1) - at - 6);
  REQUIRE(!worker.empty());
  CHECK(kill_worker_process(worker) == 1);
  svc.wait_state(w, "succeeded");
  CHECK(svc.rounds(w) == local_rounds(w_body));
  CHECK(queue_empties(cluster));

  // A long activity whose worker runs when mufld gets SIGTERM: mufld cancels it on the way out.
  const std::string long_id = svc.submit(activity_body("long", 200));
  svc.wait_state(long_id, "training");
  REQUIRE(workers_run(cluster, 1, 30));
  CHECK(svc.mufld->stop(SIGTERM) == 0);
  CHECK(queue_empties(cluster));
}

TEST_CASE("cluster e2e: kill -9 of mufld mid-run, a drain and a cancel: unbroken metrics, and no job left behind") {
  const json body = activity_body("k", 4);
  const auto& expected = local_rounds(body);
  SlurmCluster cluster(kScript);
  Service svc(true);
  const std::string id = svc.submit(body);
  wait_for(*svc.client, "/v1/activities/" + id, svc.token,
           [](const json& a) { return a["progress"]["round"].get<int>() >= 1; }, 150);
  // mufld dies mid-run; its worker job outlives it. The restarted mufld finds the worker in its
  // database and the job in squeue, adopts it, and the group goes on in that same job.
  const std::vector<int64_t> before = worker_jobs(cluster);
  REQUIRE(before.size() == 1);
  REQUIRE(svc.mufld->stop(SIGKILL) == 128 + SIGKILL);
  svc.mufld->start();
  svc.wait_state(id, "succeeded");
  CHECK(svc.rounds(id) == expected);
  CHECK(next_job_id(cluster) == before[0] + 1);  // no other job was submitted in between
  CHECK(queue_empties(cluster));

  // A drain of the cluster device lets its group go at the next round boundary: the job goes.
  const std::string long_id = svc.submit(activity_body("drained", 200));
  const json running = wait_for(*svc.client, "/v1/activities/" + long_id, svc.token,
                                [](const json& a) { return a["progress"]["round"].get<int>() >= 1; }, 150);
  const std::string device = running["progress"]["device"];
  REQUIRE(device.rfind("slurm:", 0) == 0);
  REQUIRE(svc.client->post("/v1/devices/" + device + "/drain", "", kAdmin).status == 200);
  // The other GPU may take the group: drain both, so the queue must empty and stay so.
  const json all = get(*svc.client, "/v1/devices", kAdmin)["items"];  // kept: a loop over a temporary's part dangles
  for (const auto& d : all)
    REQUIRE(svc.client->post("/v1/devices/" + d["name"].get<std::string>() + "/drain", "", kAdmin).status == 200);
  wait_for(*svc.client, "/v1/devices", kAdmin, [](const json& j) {
    for (const auto& d : j["items"])
      if (d["state"] != "drained") return false;
    return true;
  }, 60);
  CHECK(queue_empties(cluster));
  // Resumed, it trains again in a new job; a cancel of the activity then ends that job.
  for (const auto& d : all)
    REQUIRE(svc.client->post("/v1/devices/" + d["name"].get<std::string>() + "/resume", "", kAdmin).status == 200);
  REQUIRE(workers_run(cluster, 1, 30));
  REQUIRE(svc.client->del("/v1/activities/" + long_id, svc.token).status == 200);
  svc.wait_state(long_id, "cancelled");
  CHECK(queue_empties(cluster));
}
