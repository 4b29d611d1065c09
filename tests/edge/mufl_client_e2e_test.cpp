// mufl-client against the real mufld (both binaries, loopback): it enrolls with the
// federation's enrollment token and keeps its own token in a 0600 file, comes back with that
// token, shows online while it polls, stops at once on SIGTERM, and stops with a clear message
// and exit 3 when revoked or when its data does not fit the federation's schema. Over https it
// needs the CA (exit 8 without it).
#include <catch2/catch.hpp>

#include <signal.h>
#include <sys/stat.h>

#include <chrono>
#include <fstream>
#include <future>
#include <random>
#include <thread>

#include <nlohmann/json.hpp>

#include "edge/agent.h"
#include "tests/cli/cli_runner.h"
#include "tests/support/http_client.h"
#include "tests/support/mufld_process.h"
#include "tests/support/temp_dir.h"
#include "tests/support/tls_cert.h"

using namespace mufl::testing;
using nlohmann::json;

namespace {

const std::string kAdmin = "edge-admin-token";

void write_be32(std::ofstream& out, uint32_t v) {
  const unsigned char b[4] = {static_cast<unsigned char>(v >> 24), static_cast<unsigned char>(v >> 16),
                              static_cast<unsigned char>(v >> 8), static_cast<unsigned char>(v)};
  out.write(reinterpret_cast<const char*>(b), 4);
}

// Writes `n` random side×side images with labels 0..9 as idx files named `prefix`-….
void write_idx(const std::string& dir, const std::string& prefix, uint32_t n, uint32_t side = 28) {
  std::mt19937 rng(n);
  std::ofstream images(dir + "/" + prefix + "-images-idx3-ubyte", std::ios::binary);
  write_be32(images, 0x803);
  write_be32(images, n);
  write_be32(images, side);
  write_be32(images, side);
  for (uint32_t i = 0; i < n * side * side; ++i) images.put(static_cast<char>(rng() & 0xff));
  std::ofstream labels(dir + "/" + prefix + "-labels-idx1-ubyte", std::ios::binary);
  write_be32(labels, 0x801);
  write_be32(labels, n);
  for (uint32_t i = 0; i < n; ++i) labels.put(static_cast<char>(i % 10));
}

struct Federation {
  std::string id, enroll_token, owner_token;
};

Federation make_federation(HttpClient& http, json schema = {{"channels", 1}, {"height", 28}, {"width", 28}, {"labels", 10}}) {
  auto t = http.post("/v1/tenants", json{{"name", "hospital"}}.dump(), kAdmin);
  REQUIRE(t.status == 201);
  const std::string tok = json::parse(t.body)["token"];
  auto f = http.post("/v1/federations", json{{"name", "wards"}, {"schema", schema}}.dump(), tok);
  REQUIRE(f.status == 201);
  json fj = json::parse(f.body);
  return {fj["id"], fj["enrollment_token"], tok};
}

json clients_of(HttpClient& http, const Federation& f) {
  auto r = http.get("/v1/federations/" + f.id + "/clients", f.owner_token);
  REQUIRE(r.status == 200);
  return json::parse(r.body)["items"];
}

CliRun client(const std::vector<std::string>& args, const std::map<std::string, std::string>& env = {},
              const std::function<void(pid_t)>& on_start = {}) {
  CliRun r = run_cli(MUFL_CLIENT_PATH, args, env, "", on_start);
  UNSCOPED_INFO("mufl-client exit " << r.exit_code << "\nstdout:\n" << r.out << "\nstderr:\n" << r.err);
  return r;
}

}  // namespace

TEST_CASE("mufl-client: enrolls once, keeps its token 0600, comes back with it, and is refused once revoked") {
  TempDir dir, data;
  write_idx(data.path(), "train", 50);
  write_idx(data.path(), "t10k", 10);
  MufldProcess mufld(MUFLD_PATH, dir.path(), kAdmin, {"--devices", "none"});
  const std::string server = "http://127.0.0.1:" + std::to_string(mufld.port());
  HttpClient http("127.0.0.1", mufld.port());
  Federation f = make_federation(http);

  CliRun first = client({"--server", server, "--data", data.path(), "--name", "ward-1", "--poll-wait", "1", "--once"},
                        {{"MUFL_ENROLL_TOKEN", f.enroll_token}});
  REQUIRE(first.exit_code == mufl::edge::kExitOk);
  CHECK_THAT(first.err + first.out, Catch::Contains("data: 50 training and 10 held-out samples of 1x28x28"));
  CHECK_THAT(first.err + first.out, Catch::Contains("enrolled as cli_"));
  struct stat st {};
  REQUIRE(::stat(data.file(".mufl-client-token").c_str(), &st) == 0);
  CHECK((st.st_mode & 0777) == 0600);
  json items = clients_of(http, f);
  REQUIRE(items.size() == 1);
  CHECK(items[0]["name"] == "ward-1");
  CHECK(items[0]["state"] == "online");
  CHECK(items[0]["train_samples"] == 50);
  CHECK(items[0]["test_samples"] == 10);

  // The token file is enough from now on: no enrollment token, no name.
  CliRun again = client({"--server", server, "--data", data.path(), "--poll-wait", "1", "--once"});
  CHECK(again.exit_code == mufl::edge::kExitOk);
  CHECK_THAT(again.err + again.out, !Catch::Contains("enrolled as"));
  CHECK(clients_of(http, f).size() == 1);

  const std::string id = items[0]["id"];
  REQUIRE(http.del("/v1/federations/" + f.id + "/clients/" + id, f.owner_token).status == 200);
  CliRun revoked = client({"--server", server, "--data", data.path(), "--poll-wait", "1", "--once"});
  CHECK(revoked.exit_code == mufl::edge::kExitRefused);
  CHECK_THAT(revoked.err + revoked.out, Catch::Contains("no longer works (HTTP 401)"));

  // Enrollment's refusals: a name taken, a wrong token.
  TempDir other;
  write_idx(other.path(), "train", 20);
  CliRun wrong = client({"--server", server, "--data", other.path(), "--name", "ward-2", "--enroll-token", "mufle_nope",
                         "--once"});
  CHECK(wrong.exit_code == mufl::edge::kExitRefused);
  CHECK_THAT(wrong.err + wrong.out, Catch::Contains("enrollment refused (HTTP 401)"));
}

TEST_CASE("mufl-client: bad flags, bad data and a schema that does not fit are refused with a reason") {
  TempDir dir, data, empty;
  write_idx(data.path(), "train", 30, 32);  // 1x32x32
  MufldProcess mufld(MUFLD_PATH, dir.path(), kAdmin, {"--devices", "none"});
  const std::string server = "http://127.0.0.1:" + std::to_string(mufld.port());
  HttpClient http("127.0.0.1", mufld.port());
  Federation f = make_federation(http);

  CliRun misfit = client({"--server", server, "--data", data.path(), "--name", "n", "--enroll-token", f.enroll_token,
                          "--once"});
  CHECK(misfit.exit_code == mufl::edge::kExitRefused);
  CHECK_THAT(misfit.err + misfit.out, Catch::Contains("enrollment refused (HTTP 400)"));
  CHECK_THAT(misfit.err + misfit.out,
             Catch::Contains("samples are 1x32x32, which does not fit the federation's schema (1x28x28, 10 labels)"));
  CHECK(clients_of(http, f).empty());  // refused before it enrolled

  CliRun no_data = client({"--server", server, "--data", empty.path(), "--once"});
  CHECK(no_data.exit_code == mufl::edge::kExitLocal);
  CHECK_THAT(no_data.err + no_data.out, Catch::Contains("train-images-idx3-ubyte"));

  CliRun remote = client({"--server", "http://10.1.2.3:8080", "--data", data.path()});
  CHECK(remote.exit_code == mufl::edge::kExitUsage);
  CHECK_THAT(remote.err, Catch::Contains("refusing plain http:// to 10.1.2.3"));
  CHECK(client({"--server", server, "--data", data.path(), "--device", "gpu"}).exit_code == mufl::edge::kExitUsage);
  CHECK(client({"--server", server}).exit_code == mufl::edge::kExitUsage);
  CHECK(client({"--server", server, "--data", data.path(), "--poll-wait", "61"}).exit_code == mufl::edge::kExitUsage);
  CHECK(client({"--server", server, "--data", data.path(), "--energy-meter", "guess"}).exit_code ==
        mufl::edge::kExitUsage);
  CliRun profile = client({"--server", server, "--data", data.path(), "--power-profile", "Z9000"});
  CHECK(profile.exit_code == mufl::edge::kExitUsage);
  CHECK_THAT(profile.err, Catch::Contains("--power-profile: no profile named 'Z9000'"));
  CliRun no_enroll = client({"--server", server, "--data", data.path(), "--once"});
  CHECK(no_enroll.exit_code == mufl::edge::kExitUsage);
  CHECK_THAT(no_enroll.err + no_enroll.out, Catch::Contains("enrolling needs --enroll-token and --name"));
}

TEST_CASE("mufl-client: SIGTERM while it waits for work stops it at once") {
  TempDir dir, data;
  write_idx(data.path(), "train", 20);
  MufldProcess mufld(MUFLD_PATH, dir.path(), kAdmin, {"--devices", "none"});
  const std::string server = "http://127.0.0.1:" + std::to_string(mufld.port());
  HttpClient http("127.0.0.1", mufld.port());
  Federation f = make_federation(http);

  std::promise<pid_t> started;
  auto run = std::async(std::launch::async, [&] {
    return client({"--server", server, "--data", data.path(), "--name", "w", "--enroll-token", f.enroll_token,
                   "--poll-wait", "60"},
                  {}, [&](pid_t pid) { started.set_value(pid); });
  });
  const pid_t pid = started.get_future().get();
  // Online means enrolled and polling (the first poll follows the identity check at once).
  const auto limit = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  while (std::chrono::steady_clock::now() < limit) {
    json items = clients_of(http, f);
    if (!items.empty() && items[0]["state"] == "online") break;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  REQUIRE(clients_of(http, f).size() == 1);
  std::this_thread::sleep_for(std::chrono::milliseconds(200));  // into the 60 s poll
  const auto signalled = std::chrono::steady_clock::now();
  REQUIRE(::kill(pid, SIGTERM) == 0);
  CliRun r = run.get();
  CHECK(r.exit_code == mufl::edge::kExitOk);
  CHECK(std::chrono::steady_clock::now() - signalled < std::chrono::seconds(5));
  CHECK_THAT(r.err + r.out, Catch::Contains("SIGTERM: stopping"));
}

TEST_CASE("mufl-client: over https it trusts --ca-file, and without it fails with exit 8, and it trains a round over TLS") {
  TempDir certs, dir, data;
  write_idx(data.path(), "train", 20);
  const auto cert = make_test_certificate(certs);
  MufldProcess mufld(MUFLD_PATH, dir.path(), kAdmin,
                     {"--devices", "cpu:1", "--torch-threads", "1", "--tls-cert", cert.cert_file, "--tls-key",
                      cert.key_file});
  const std::string server = "https://127.0.0.1:" + std::to_string(mufld.port());
  HttpClient http("127.0.0.1", mufld.port());
  mufl::client::HttpClient https("127.0.0.1", mufld.port(), https_options(cert.cert_file));
  auto t = https.post("/v1/tenants", json{{"name", "h"}}.dump(), kAdmin);
  REQUIRE(t.status == 201);
  const std::string tok = json::parse(t.body)["token"];
  auto fr = https.post("/v1/federations",
                       json{{"name", "w"}, {"schema", {{"channels", 1}, {"height", 28}, {"width", 28}, {"labels", 10}}}}
                           .dump(),
                       tok);
  REQUIRE(fr.status == 201);
  const std::string enroll = json::parse(fr.body)["enrollment_token"];

  CliRun untrusted = client({"--server", server, "--data", data.path(), "--name", "a", "--enroll-token", enroll,
                             "--once"});
  CHECK(untrusted.exit_code == mufl::edge::kExitTls);
  CHECK_THAT(untrusted.err + untrusted.out, Catch::Contains("certificate verify failed"));

  CliRun trusted = client({"--server", server, "--ca-file", cert.cert_file, "--data", data.path(), "--name", "a",
                           "--enroll-token", enroll, "--poll-wait", "1", "--once"});
  CHECK(trusted.exit_code == mufl::edge::kExitOk);
  CHECK_THAT(trusted.err + trusted.out, Catch::Contains("enrolled as cli_"));

  // A round over TLS: the lease, its weights and the update all cross HTTPS.
  const std::string fed = json::parse(fr.body)["id"];
  auto sub = https.post("/v1/activities",
                        json{{"name", "tls"}, {"federation", fed}, {"task", "class"}, {"rounds", 1},
                             {"clients_per_round", 1}, {"merge", false}}.dump(),
                        tok);
  REQUIRE(sub.status == 201);
  const std::string id = json::parse(sub.body)["id"];
  CliRun trains = client({"--server", server, "--ca-file", cert.cert_file, "--data", data.path(), "--poll-wait", "30",
                          "--once"});
  INFO(trains.err + trains.out);
  CHECK(trains.exit_code == mufl::edge::kExitOk);
  CHECK_THAT(trains.err + trains.out, Catch::Contains("update accepted"));
  json a;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  do {  // the round aggregates once the update is in
    a = json::parse(https.get("/v1/activities/" + id, tok).body);
    if (a["state"] == "succeeded" || a["state"] == "failed") break;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  } while (std::chrono::steady_clock::now() < deadline);
  CHECK(a["state"] == "succeeded");
  CHECK(a["energy"]["client_joules"].get<double>() > 0);
}
