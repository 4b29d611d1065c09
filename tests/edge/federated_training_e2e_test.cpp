// Activities on a federation, trained by real mufl-client processes against the real mufld
// (all binaries, loopback). The clients hold the shards mufl-shards cuts, which are exactly
// the partitions simulation trains on, so the two runs of one activity must give the same
// weights: simulation and reality share one code path.
#include <catch2/catch.hpp>

#include <signal.h>

#include <chrono>
#include <future>
#include <memory>
#include <cstdio>
#include <map>
#include <sstream>
#include <thread>

#include <nlohmann/json.hpp>

#include "fl/model.h"
#include "fl/tasks.h"
#include "tests/cli/cli_runner.h"
#include "tests/support/http_client.h"
#include "tests/support/json_poll.h"
#include "tests/support/metrics_text.h"
#include "tests/support/mufld_process.h"
#include "tests/support/temp_dir.h"
// Last: after the torch headers.
#include "tests/support/catch_over_torch.h"

using namespace mufl::testing;
using nlohmann::json;

namespace {

const std::string kAdmin = "fed-train-admin";

// A mufl-client running in the background until stop().
class ClientProcess {
 public:
  ClientProcess(const std::string& server, const std::string& data_dir, const std::string& name,
                const std::string& enroll_token) {
    std::promise<pid_t> started;
    auto pid = started.get_future();
    run_ = std::async(std::launch::async, [=, &started] {
      return run_cli(MUFL_CLIENT_PATH,
                     {"--server", server, "--data", data_dir, "--name", name, "--enroll-token", enroll_token,
                      "--poll-wait", "2", "--threads", "1"},
                     {}, "", [&](pid_t p) { started.set_value(p); });
    });
    pid_ = pid.get();
  }
  ~ClientProcess() { stop(SIGKILL); }
  // Sends `signal` and waits for the exit; what it printed. Idempotent.
  CliRun stop(int signal) {
    if (pid_ > 0) {
      ::kill(pid_, signal);
      pid_ = -1;
      result_ = run_.get();
    }
    return result_;
  }

 private:
  pid_t pid_ = -1;
  std::future<CliRun> run_;
  CliRun result_;
};

struct Fed {
  std::string id, enroll_token;
};

// A new tenant's token; its id in `id` when asked.
std::string make_tenant(HttpClient& c, const std::string& name, std::string* id = nullptr) {
  auto t = c.post("/v1/tenants", json{{"name", name}}.dump(), kAdmin);
  REQUIRE(t.status == 201);
  const json j = json::parse(t.body);
  if (id) *id = j["id"];
  return j["token"];
}

Fed make_federation(HttpClient& c, const std::string& owner, const std::vector<std::string>& tenants = {}) {
  json body = {{"name", "wards"}, {"schema", {{"channels", 1}, {"height", 28}, {"width", 28}, {"labels", 10}}}};
  if (!tenants.empty()) body["tenants"] = tenants;
  auto f = c.post("/v1/federations", body.dump(), owner);
  REQUIRE(f.status == 201);
  json j = json::parse(f.body);
  return {j["id"], j["enrollment_token"]};
}

// Cuts `clients` shards of the synthetic data set for `seed` into `out` (mufl-shards), IID or
// by Dirichlet(`alpha`) when alpha > 0.
void cut_shards(const std::string& data_dir, const std::string& out, int clients, int seed, double alpha = 0) {
  std::vector<std::string> args = {"--dataset", "synthetic", "--clients", std::to_string(clients), "--seed",
                                   std::to_string(seed), "--data-dir", data_dir, "--out", out};
  if (alpha > 0) args.insert(args.end(), {"--partition", "dirichlet", "--alpha", std::to_string(alpha)});
  CliRun r = run_cli(MUFL_SHARDS_PATH, args);
  INFO(r.out << r.err);
  REQUIRE(r.exit_code == 0);
}

// Starts one client per shard, in shard order, each enrolled before the next starts, so that
// client i of the federation (enrollment order) holds shard i; returns once all are online.
std::vector<std::unique_ptr<ClientProcess>> start_clients(HttpClient& c, uint16_t port, const std::string& owner,
                                                          const Fed& fed, const std::string& shards, int n) {
  const std::string server = "http://127.0.0.1:" + std::to_string(port);
  std::vector<std::unique_ptr<ClientProcess>> out;
  for (int i = 0; i < n; ++i) {
    out.push_back(std::make_unique<ClientProcess>(server, shards + "/client-" + std::to_string(i),
                                                  "ward-" + std::to_string(i), fed.enroll_token));
    wait_for(c, "/v1/federations/" + fed.id + "/clients", owner, [&](const json& j) {
      if (j["items"].size() != static_cast<size_t>(i + 1)) return false;
      for (const auto& item : j["items"])
        if (item["state"] != "online") return false;
      return true;
    }, 60);
  }
  return out;
}

json wait_done(HttpClient& c, const std::string& token, const std::string& id, int seconds = 240) {
  return wait_for(c, "/v1/activities/" + id, token, [](const json& a) {
    return a["state"] == "succeeded" || a["state"] == "failed" || a["state"] == "cancelled";
  }, seconds);
}

std::string submit(HttpClient& c, const std::string& token, const json& spec) {
  auto r = c.post("/v1/activities", spec.dump(), token);
  INFO(r.body);
  REQUIRE(r.status == 201);
  return json::parse(r.body)["id"];
}

// The activity's model, or with `query` ("?cluster=1") another of its models.
mufl::fl::MultiTaskNet load_model(HttpClient& c, const std::string& token, const std::string& id,
                                  const std::string& task, const std::string& query = "") {
  auto model = c.get("/v1/activities/" + id + "/model" + query, token);
  REQUIRE(model.status == 200);
  mufl::fl::MultiTaskNet net(std::vector<mufl::fl::TaskDef>{*mufl::fl::find_task(task)});
  std::istringstream in(model.body);
  torch::load(net, in);
  return net;
}

double max_difference(mufl::fl::MultiTaskNet& a, mufl::fl::MultiTaskNet& b) {
  const auto pa = a->parameters(), pb = b->parameters();
  REQUIRE(pa.size() == pb.size());
  double worst = 0;
  for (size_t i = 0; i < pa.size(); ++i) worst = std::max(worst, (pa[i] - pb[i]).abs().max().item<double>());
  return worst;
}

// The largest difference between a parameter of activity `a`'s model and of `b`'s (`query`
// picks another of their models, as load_model).
double model_difference(HttpClient& c, const std::string& token, const std::string& a, const std::string& b,
                        const std::string& task, const std::string& query = "") {
  auto ma = load_model(c, token, a, task, query);
  auto mb = load_model(c, token, b, task, query);
  return max_difference(ma, mb);
}

// One activity trained twice: simulated on synthetic's Dirichlet(0.5) partition into `clients`,
// then on a new federation by one mufl-client per shard of `shards` (cut the same way).
struct SideBySide {
  std::string sim, real;
  Fed fed;
  json done;  // the federated activity, succeeded
  std::vector<std::unique_ptr<ClientProcess>> clients;
};

SideBySide simulate_then_federate(HttpClient& c, uint16_t port, const std::string& token, const json& common,
                                  const std::string& shards, int clients) {
  SideBySide out;
  json sim_spec = common;
  sim_spec["name"] = "simulated";
  sim_spec["dataset"] = "synthetic";
  sim_spec["clients"] = clients;
  sim_spec["partition"] = {{"kind", "dirichlet"}, {"alpha", 0.5}};
  out.sim = submit(c, token, sim_spec);
  REQUIRE(wait_done(c, token, out.sim)["state"] == "succeeded");
  out.fed = make_federation(c, token);
  out.clients = start_clients(c, port, token, out.fed, shards, clients);
  json fed_spec = common;
  fed_spec["name"] = "federated";
  fed_spec["federation"] = out.fed.id;
  out.real = submit(c, token, fed_spec);
  out.done = wait_done(c, token, out.real);
  INFO(out.done.dump());
  REQUIRE(out.done["state"] == "succeeded");
  return out;
}

}  // namespace

TEST_CASE("federated training: four mufl-client processes train the weights the simulation trains, to 1e-6") {
  TempDir dir, shards;
  cut_shards(dir.path(), shards.path(), 4, 7);
  MufldProcess mufld(MUFLD_PATH, dir.path(), kAdmin, {"--devices", "cpu:1", "--torch-threads", "1"});
  HttpClient c("127.0.0.1", mufld.port());
  std::string tenant_id;
  const std::string token = make_tenant(c, "hospital", &tenant_id);

  const json common = {{"task", "class"}, {"rounds", 2}, {"clients_per_round", 4}, {"seed", 7}, {"merge", false},
                       {"batch_size", 64}};
  json sim_spec = common;
  sim_spec["name"] = "simulated";
  sim_spec["dataset"] = "synthetic";
  sim_spec["clients"] = 4;
  const std::string sim = submit(c, token, sim_spec);
  REQUIRE(wait_done(c, token, sim)["state"] == "succeeded");

  const Fed fed = make_federation(c, token);
  auto clients = start_clients(c, mufld.port(), token, fed, shards.path(), 4);
  json fed_spec = common;
  fed_spec["name"] = "federated";
  fed_spec["federation"] = fed.id;
  const std::string real = submit(c, token, fed_spec);
  const json done = wait_done(c, token, real);
  INFO(done.dump());
  REQUIRE(done["state"] == "succeeded");
  CHECK(done["federation"] == fed.id);

  for (const auto& r : get_all_items(c, "/v1/activities/" + real + "/rounds", token)) {
    CHECK(r["clients_sampled"] == 4);
    CHECK(r["clients_reported"] == 4);
    // Federated evaluation: every client holds a share of the test set.
    CHECK(r["metrics"]["class"]["accuracy"].get<double>() > 0);
    // It ran on a federation lane, not on the device.
    CHECK(r["device"].get<std::string>().rfind("federation:", 0) == 0);
  }

  // Energy at the edge: the clients' own joules beside the server's, per activity, per tenant
  // and in the metrics; the simulated activity has none.
  const json energy = done["energy"];
  INFO(energy.dump());
  CHECK(energy["client_joules"].get<double>() > 0);
  CHECK(energy["joules"].get<double>() > 0);  // the server's aggregation
  CHECK(energy["work_units"] == 2);
  const json sim_done = json::parse(c.get("/v1/activities/" + sim, token).body);
  CHECK(sim_done["energy"]["client_joules"] == 0);
  const json usage = json::parse(c.get("/v1/usage", token).body);
  CHECK(usage["total"]["client_joules"].get<double>() == Approx(energy["client_joules"].get<double>()));
  const double metered = metric(c.get("/metrics").body,
                                "mufl_tenant_client_energy_joules_total{tenant=\"" + tenant_id + "\"}");
  CHECK(metered == Approx(energy["client_joules"].get<double>()));
  const double diff = model_difference(c, token, sim, real, "class");
  WARN("largest weight difference, federation against simulation: " << diff);
  CHECK(diff <= 1e-6);

  const CliRun log = clients[0]->stop(SIGTERM);
  CHECK(log.exit_code == 0);
  CHECK_THAT(log.out + log.err, Catch::Contains("update accepted"));
  const std::string text = log.out + log.err;
  CHECK((text.find(" J (model); update accepted") != std::string::npos ||
         text.find(" J (rapl); update accepted") != std::string::npos));
}

TEST_CASE("federated training: personalised epochs on real clients train what the simulation trains, and less than fixed epochs") {
  TempDir dir, shards;
  cut_shards(dir.path(), shards.path(), 4, 5, 0.5);  // clients of unequal sizes
  MufldProcess mufld(MUFLD_PATH, dir.path(), kAdmin, {"--devices", "cpu:1", "--torch-threads", "1"});
  HttpClient c("127.0.0.1", mufld.port());
  const std::string token = make_tenant(c, "clinic");

  const json common = {{"task", "class"}, {"rounds", 2}, {"clients_per_round", 4}, {"seed", 5}, {"merge", false},
                       {"batch_size", 64}, {"local_epochs", "personalized"}, {"max_local_epochs", 3}};
  const SideBySide run = simulate_then_federate(c, mufld.port(), token, common, shards.path(), 4);
  CHECK(run.done["local_epochs"] == "personalized");
  CHECK(run.done["max_local_epochs"] == 3);

  // Every client trained once a round: samples = the sum of its epochs x its samples, which
  // the simulation's rounds count alike, and fewer than three epochs of every client.
  int64_t held = 0;
  for (const auto& item : get_all_items(c, "/v1/federations/" + run.fed.id + "/clients", token))
    held += item["train_samples"].get<int64_t>();
  const auto fed_rounds = get_all_items(c, "/v1/activities/" + run.real + "/rounds", token);
  const auto sim_rounds = get_all_items(c, "/v1/activities/" + run.sim + "/rounds", token);
  REQUIRE(fed_rounds.size() == 2);
  REQUIRE(sim_rounds.size() == 2);
  for (size_t r = 0; r < fed_rounds.size(); ++r) {
    CHECK(fed_rounds[r]["clients_reported"] == 4);
    CHECK(fed_rounds[r]["samples"] == sim_rounds[r]["samples"]);
    CHECK(fed_rounds[r]["samples"].get<int64_t>() < 3 * held);
    CHECK(fed_rounds[r]["samples"].get<int64_t>() > held);
  }
  CHECK(model_difference(c, token, run.sim, run.real, "class") <= 1e-6);
}

TEST_CASE("federated training: ssl with fedema on real clients trains the simulation's weights, each client probing its own data") {
  TempDir dir, shards;
  cut_shards(dir.path(), shards.path(), 3, 9, 0.5);
  MufldProcess mufld(MUFLD_PATH, dir.path(), kAdmin, {"--devices", "cpu:1", "--torch-threads", "1"});
  HttpClient c("127.0.0.1", mufld.port());
  const std::string token = make_tenant(c, "lab");

  const json common = {{"task", "ssl"}, {"rounds", 2}, {"clients_per_round", 3}, {"seed", 9}, {"merge", false},
                       {"batch_size", 64}, {"local_update", "fedema"}, {"ema_lambda", 0.5}};
  const SideBySide run = simulate_then_federate(c, mufld.port(), token, common, shards.path(), 3);
  for (const auto& r : get_all_items(c, "/v1/activities/" + run.real + "/rounds", token)) {
    CHECK(r["clients_reported"] == 3);
    // Each client fitted the probe on its own training part and scored its held-out part.
    const double probe = r["metrics"]["ssl"]["linear_probe_accuracy"].get<double>();
    CHECK(probe > 0);
    CHECK(probe <= 1);
  }
  CHECK(model_difference(c, token, run.sim, run.real, "ssl") <= 1e-6);
}

TEST_CASE("federated training: client clustering on real clients forms the simulation's clusters and trains its weights") {
  TempDir dir, shards;
  cut_shards(dir.path(), shards.path(), 4, 3, 0.5);
  MufldProcess mufld(MUFLD_PATH, dir.path(), kAdmin, {"--devices", "cpu:1", "--torch-threads", "1"});
  HttpClient c("127.0.0.1", mufld.port());
  const std::string token = make_tenant(c, "labs");

  const json common = {{"task", "class"}, {"rounds", 2}, {"clients_per_round", 4}, {"seed", 3}, {"merge", false},
                       {"batch_size", 64}, {"client_clusters", 2}, {"cluster_round", 1}};
  const SideBySide run = simulate_then_federate(c, mufld.port(), token, common, shards.path(), 4);
  const json sim = json::parse(c.get("/v1/activities/" + run.sim, token).body);
  INFO(sim.dump() << run.done.dump());
  // The same clients in the same clusters: both clustered on the same updates.
  REQUIRE(run.done.contains("clusters"));
  REQUIRE(run.done["clusters"].size() == sim["clusters"].size());
  for (size_t k = 0; k < sim["clusters"].size(); ++k)
    CHECK(run.done["clusters"][k]["clients"] == sim["clusters"][k]["clients"]);
  // Round 2 trained each cluster from its own model, a draw each; the clients evaluated.
  const auto rounds = get_all_items(c, "/v1/activities/" + run.real + "/rounds", token);
  REQUIRE(rounds.size() == 2);
  CHECK(rounds[1]["clients_reported"] == 4);
  CHECK(rounds[1]["metrics"]["class"]["accuracy"].get<double>() > 0);
  CHECK(model_difference(c, token, run.sim, run.real, "class") <= 1e-6);
  // Every cluster's own model, too.
  for (size_t k = 0; k < sim["clusters"].size(); ++k)
    CHECK(model_difference(c, token, run.sim, run.real, "class", "?cluster=" + std::to_string(k)) <= 1e-6);
}

TEST_CASE("federated training: cosine weights on real clients train the simulation's weights") {
  TempDir dir, shards;
  cut_shards(dir.path(), shards.path(), 3, 7, 0.5);
  MufldProcess mufld(MUFLD_PATH, dir.path(), kAdmin, {"--devices", "cpu:1", "--torch-threads", "1"});
  HttpClient c("127.0.0.1", mufld.port());
  const std::string token = make_tenant(c, "reid");

  const json common = {{"task", "class"}, {"rounds", 2}, {"clients_per_round", 3}, {"seed", 7}, {"merge", false},
                       {"batch_size", 64}, {"weighting", "cosine"}};
  const SideBySide run = simulate_then_federate(c, mufld.port(), token, common, shards.path(), 3);
  CHECK(run.done["weighting"] == "cosine");
  CHECK(model_difference(c, token, run.sim, run.real, "class") <= 1e-6);
  // The weights are not the sample counts': the same run with them trains another model.
  json plain = common;
  plain.erase("weighting");
  plain["name"] = "by samples";
  plain["federation"] = run.fed.id;
  const std::string by_samples = submit(c, token, plain);
  REQUIRE(wait_done(c, token, by_samples)["state"] == "succeeded");
  CHECK(model_difference(c, token, run.real, by_samples, "class") > 1e-4);
}

TEST_CASE("federated training: a group waiting for its clients holds no device, and a local activity trains meanwhile") {
  TempDir dir, shards;
  cut_shards(dir.path(), shards.path(), 1, 4);
  MufldProcess mufld(MUFLD_PATH, dir.path(), kAdmin, {"--devices", "cpu:1", "--torch-threads", "1"});
  HttpClient c("127.0.0.1", mufld.port());
  const std::string token = make_tenant(c, "hospital");
  const Fed fed = make_federation(c, token);
  // No client is online: the round waits for one (up to its timeout, per draw).
  const std::string waiting = submit(c, token, {{"name", "waits"}, {"federation", fed.id}, {"task", "class"},
                                                {"rounds", 1}, {"clients_per_round", 1}, {"merge", false},
                                                {"round_timeout_seconds", 60}});
  const json grouped = wait_for(c, "/v1/activities/" + waiting, token, [](const json& a) {
    return a.contains("groups") && !a["groups"].empty();
  });
  const std::string group_id = grouped["groups"][0];
  wait_for(c, "/v1/groups/" + group_id, token, [](const json& g) {
    return g["device"].is_string() && g["device"].get<std::string>().rfind("federation:", 0) == 0;
  });
  const json devices = json::parse(c.get("/v1/devices", token).body);
  INFO(devices.dump());
  CHECK(devices["items"][0]["state"] == "idle");

  // The only device is free: a local activity trains to the end while the other still waits.
  const std::string local = submit(c, token, {{"name", "local"}, {"dataset", "synthetic"}, {"task", "class"},
                                              {"rounds", 2}, {"clients", 2}, {"merge", false}});
  CHECK(wait_done(c, token, local)["state"] == "succeeded");
  const json still = json::parse(c.get("/v1/activities/" + waiting, token).body);
  CHECK(still["progress"]["round"] == 0);
  CHECK(still["state"] == "training");

  // A client comes online: the waiting round takes it and the activity finishes.
  auto clients = start_clients(c, mufld.port(), token, fed, shards.path(), 1);
  const json done = wait_done(c, token, waiting);
  INFO(done.dump());
  CHECK(done["state"] == "succeeded");
}

namespace {

// The leases a client's log says it trained: (group, round, heads) per accepted update.
struct TrainedLease {
  std::string group;
  int round = 0, heads = 0;
};
std::vector<TrainedLease> trained_leases(const std::string& log) {
  std::vector<TrainedLease> out;
  const std::string marker = " (group ";
  for (size_t at = log.find(marker); at != std::string::npos; at = log.find(marker, at + 1)) {
    const size_t line_end = log.find('\n', at);
    const std::string line = log.substr(at, line_end - at);
    if (line.find("update accepted") == std::string::npos) continue;
    TrainedLease t;
    char group[64] = {};
    if (std::sscanf(line.c_str(), " (group %63[^,], round %d, %d heads)", group, &t.round, &t.heads) != 3) continue;
    t.group = group;
    out.push_back(t);
  }
  return out;
}

}  // namespace

TEST_CASE("federated training: three activities of two tenants on one federation merge, one lease per client and round") {
  TempDir dir, shards;
  cut_shards(dir.path(), shards.path(), 3, 5);
  MufldProcess mufld(MUFLD_PATH, dir.path(), kAdmin,
                     {"--devices", "cpu:1", "--torch-threads", "1", "--merge-window", "1", "--affinity-every", "4",
                      "--consolidation-fraction", "0.5"});
  HttpClient c("127.0.0.1", mufld.port());
  const std::string owner = make_tenant(c, "hospital");
  std::string guest_id;
  const std::string guest = make_tenant(c, "insurer", &guest_id);
  const Fed fed = make_federation(c, owner, {guest_id});
  auto clients = start_clients(c, mufld.port(), owner, fed, shards.path(), 3);

  const json common = {{"federation", fed.id}, {"rounds", 4}, {"clients_per_round", 3}, {"seed", 5}};
  std::vector<std::pair<std::string, std::string>> ids;  // token, id
  for (const auto& [token, task] : std::vector<std::pair<std::string, std::string>>{
           {owner, "class"}, {owner, "segment"}, {guest, "parity"}}) {
    json spec = common;
    spec["name"] = task;
    spec["task"] = task;
    ids.emplace_back(token, submit(c, token, spec));
  }
  std::string root;
  for (const auto& [token, id] : ids) {
    const json done = wait_done(c, token, id);
    INFO(done.dump());
    REQUIRE(done["state"] == "succeeded");
    if (root.empty()) root = done["groups"][0];
    CHECK(done["groups"][0] == root);  // all three trained in one group first
    const auto rounds = get_all_items(c, "/v1/activities/" + id + "/rounds", token);
    CHECK(rounds.size() == 4);
    for (const auto& r : rounds) CHECK(r["metrics"].size() == 1);  // its own task, evaluated by the clients
    CHECK(c.get("/v1/activities/" + id + "/model", token).status == 200);
  }
  const json group = json::parse(c.get("/v1/groups/" + root, owner).body);
  CHECK(group["consolidation_rounds"] == 2);
  CHECK(group["affinity"]["rounds_measured"] == 2);
  REQUIRE(group["split"].is_object());  // the split decision was taken

  // Each client trained the merged group once per consolidation round, all three heads in one lease.
  int merged_leases = 0;
  for (auto& client : clients) {
    const CliRun log = client->stop(SIGTERM);
    std::map<int, int> per_round;
    for (const auto& t : trained_leases(log.out + log.err)) {
      if (t.group != root) continue;
      CHECK(t.heads == 3);
      per_round[t.round] += 1;
      ++merged_leases;
    }
    const std::map<int, int> once_each{{1, 1}, {2, 1}};
    CHECK(per_round == once_each);
  }
  CHECK(merged_leases == 6);
}

TEST_CASE("federated training: two clustered activities on real clients merge, cluster their clients once, and export every cluster") {
  TempDir dir, shards;
  cut_shards(dir.path(), shards.path(), 4, 3, 0.5);
  MufldProcess mufld(MUFLD_PATH, dir.path(), kAdmin,
                     {"--devices", "cpu:1", "--torch-threads", "1", "--merge-window", "1", "--affinity-every", "4",
                      "--consolidation-fraction", "0.5"});
  HttpClient c("127.0.0.1", mufld.port());
  const std::string token = make_tenant(c, "labs");
  const Fed fed = make_federation(c, token);
  auto clients = start_clients(c, mufld.port(), token, fed, shards.path(), 4);

  const json common = {{"federation", fed.id}, {"rounds", 4}, {"clients_per_round", 4}, {"seed", 3},
                       {"batch_size", 64}, {"client_clusters", 2}, {"cluster_round", 1}};
  std::vector<std::string> ids;
  for (const std::string task : {"class", "parity"}) {
    json spec = common;
    spec["name"] = task;
    spec["task"] = task;
    ids.push_back(submit(c, token, spec));
  }
  json first_clusters;
  for (const auto& id : ids) {
    const json done = wait_done(c, token, id);
    INFO(done.dump());
    REQUIRE(done["state"] == "succeeded");
    CHECK(done["groups"].size() >= 1);
    // The clients of round 1 (the clustering round, merged) stay in their clusters to the end.
    const auto rounds = get_all_items(c, "/v1/activities/" + id + "/rounds", token);
    REQUIRE(rounds.size() == 4);
    const json formed = rounds[0].at("clusters");
    REQUIRE(formed.size() == 2);
    for (const auto& r : rounds) {
      REQUIRE(r.at("clusters").size() == 2);
      for (size_t k = 0; k < 2; ++k) CHECK(r["clusters"][k]["clients"] == formed[k]["clients"]);
    }
    if (first_clusters.is_null()) first_clusters = formed;
    for (size_t k = 0; k < 2; ++k) CHECK(formed[k]["clients"] == first_clusters[k]["clients"]);  // one clustering
    for (size_t k = 0; k < 2; ++k)
      CHECK(c.get("/v1/activities/" + id + "/model?cluster=" + std::to_string(k), token).status == 200);
  }
  const json a = json::parse(c.get("/v1/activities/" + ids[0], token).body);
  CHECK(a["groups"][0] == json::parse(c.get("/v1/activities/" + ids[1], token).body)["groups"][0]);  // merged
}

TEST_CASE("federated training: a client killed with -9 is a dropout, and the rounds go on with the others") {
  TempDir dir, shards;
  cut_shards(dir.path(), shards.path(), 3, 3);
  MufldProcess mufld(MUFLD_PATH, dir.path(), kAdmin, {"--devices", "cpu:1", "--torch-threads", "1"});
  HttpClient c("127.0.0.1", mufld.port());
  const std::string token = make_tenant(c, "hospital");
  const Fed fed = make_federation(c, token);
  auto clients = start_clients(c, mufld.port(), token, fed, shards.path(), 3);
  const json spec = {{"name", "dropout"}, {"federation", fed.id}, {"task", "class"}, {"rounds", 3},
                     {"clients_per_round", 3}, {"min_clients", 2}, {"round_timeout_seconds", 5}, {"merge", false}};
  const std::string id = submit(c, token, spec);
  wait_for(c, "/v1/activities/" + id, token, [](const json& a) { return a["progress"]["round"].get<int>() >= 1; });
  clients[2]->stop(SIGKILL);  // still "online" for a while: chosen, it never reports

  const json done = wait_done(c, token, id);
  INFO(done.dump());
  REQUIRE(done["state"] == "succeeded");
  const auto rounds = get_all_items(c, "/v1/activities/" + id + "/rounds", token);
  REQUIRE(rounds.size() == 3);
  CHECK(rounds[2]["clients_sampled"] == 3);
  CHECK(rounds[2]["clients_reported"] == 2);
  CHECK(rounds[2]["clients_dropped"] == 1);
}

TEST_CASE("federated training: mufld killed with -9 mid-activity restarts, its clients come back by themselves, and it finishes") {
  TempDir dir, shards;
  cut_shards(dir.path(), shards.path(), 3, 9);
  MufldProcess mufld(MUFLD_PATH, dir.path(), kAdmin, {"--devices", "cpu:1", "--torch-threads", "1"});
  HttpClient c("127.0.0.1", mufld.port());
  const std::string token = make_tenant(c, "hospital");
  const Fed fed = make_federation(c, token);
  auto clients = start_clients(c, mufld.port(), token, fed, shards.path(), 3);
  // min_clients 3: every round waits for all three, so the clients must come back by themselves.
  const json spec = {{"name", "restart"}, {"federation", fed.id}, {"task", "class"}, {"rounds", 4},
                     {"clients_per_round", 3}, {"min_clients", 3}, {"merge", false}};
  const std::string id = submit(c, token, spec);
  wait_for(c, "/v1/activities/" + id, token, [](const json& a) { return a["progress"]["round"].get<int>() >= 1; });
  REQUIRE(mufld.stop(SIGKILL) == 128 + SIGKILL);
  mufld.start();

  const json done = wait_done(c, token, id);
  INFO(done.dump());
  REQUIRE(done["state"] == "succeeded");
  const auto rounds = get_all_items(c, "/v1/activities/" + id + "/rounds", token);
  REQUIRE(rounds.size() == 4);
  for (const auto& r : rounds) CHECK(r["clients_reported"] == 3);
  for (auto& client : clients) CHECK(client->stop(SIGTERM).exit_code == 0);
}
