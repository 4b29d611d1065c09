// mufld --tls-cert/--tls-key end to end: the real binary serving HTTPS with a certificate the
// test makes with openssl. An HTTPS request with the CA, plain HTTP on the TLS port (refused,
// and mufld serves on), the event stream over TLS, and the start-up errors of bad TLS flags.
#include <catch2/catch.hpp>

#include <signal.h>

#include <fstream>
#include <nlohmann/json.hpp>

#include "tests/support/http_client.h"
#include "tests/support/mufld_process.h"
#include "tests/support/temp_dir.h"
#include "tests/support/tls_cert.h"

using namespace mufl::testing;
using nlohmann::json;

namespace {

const std::string kAdmin = "mufl_tls_admin_token_for_tests";

// One mufld serving HTTPS with a fresh self-signed certificate, and a client that trusts it.
struct TlsFixture {
  TlsFixture()
      : cert(make_test_certificate(certs)),
        mufld(MUFLD_PATH, dir.path(), kAdmin,
              {"--devices", "none", "--tls-cert", cert.cert_file, "--tls-key", cert.key_file}),
        https("127.0.0.1", mufld.port(), https_options(cert.cert_file)) {}

  TempDir certs, dir;
  TestCertificate cert;
  MufldProcess mufld;
  mufl::client::HttpClient https;
};

// mufld's exit code for `args`; what it printed in `output`.
int mufld_exit(const std::string& args, std::string& output) {
  TempDir data;
  return run_command(std::string(MUFLD_PATH) + " --listen 127.0.0.1:0 --devices none --data-dir '" + data.path() +
                         "' " + args,
                     output);
}

}  // namespace

TEST_CASE("e2e tls: mufld serves HTTPS, and plain HTTP on its port is closed while it serves on") {
  TlsFixture f;
  auto health = f.https.get("/healthz");
  CHECK(health.status == 200);
  auto tenant = f.https.post("/v1/tenants", R"({"name":"tls"})", kAdmin);
  CHECK(tenant.status == 201);

  const std::string plain = raw_exchange("127.0.0.1", f.mufld.port(), "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n");
  CHECK(plain.find("HTTP/1.1") == std::string::npos);
  CHECK(f.https.get("/healthz").status == 200);  // the keep-alive TLS connection still works
  mufl::client::HttpClient fresh("127.0.0.1", f.mufld.port(), https_options(f.cert.cert_file));
  CHECK(fresh.get("/healthz").status == 200);
  CHECK(f.mufld.stop(SIGTERM) == 0);
}

TEST_CASE("e2e tls: GET /v1/events streams an event over TLS") {
  TlsFixture f;
  auto tenant = f.https.post("/v1/tenants", R"({"name":"tls-events"})", kAdmin);
  REQUIRE(tenant.status == 201);
  const std::string token = json::parse(tenant.body)["token"];
  const std::map<std::string, std::string> auth = {{"Authorization", "Bearer " + token},
                                                   {"Accept", "text/event-stream"}};

  std::string id, seen;
  mufl::client::HttpClient events("127.0.0.1", f.mufld.port(), https_options(f.cert.cert_file));
  auto head = events.stream(
      "/v1/events", auth,
      [&](const mufl::client::Response&) {  // the stream is open: make an event
        auto created = f.https.post("/v1/activities",
                                    R"({"name":"e","dataset":"synthetic","task":"class","rounds":1})", token);
        if (created.status != 201) return false;
        id = json::parse(created.body)["id"];
        return true;
      },
      [&](std::string_view bytes) {
        seen.append(bytes);
        return seen.find("\n\n") == std::string::npos || seen.find(id) == std::string::npos;
      },
      std::chrono::seconds(60));
  REQUIRE(head.ok());
  CHECK(head->status == 200);
  CHECK(head->header("content-type").rfind("text/event-stream", 0) == 0);
  REQUIRE_FALSE(id.empty());
  CHECK(seen.find("event: activity.state") != std::string::npos);
  CHECK(seen.find(id) != std::string::npos);
  CHECK(f.mufld.stop(SIGTERM) == 0);
}

TEST_CASE("e2e tls: mufld refuses to start with one TLS flag, an unreadable certificate, or a bad key") {
  TempDir certs;
  const auto cert = make_test_certificate(certs);
  const std::string garbage = certs.file("garbage.pem");
  std::ofstream(garbage) << "not a key\n";
  std::string out;

  CHECK(mufld_exit("--tls-cert " + cert.cert_file, out) == 2);
  CHECK_THAT(out, Catch::Contains("--tls-cert needs --tls-key"));
  CHECK(mufld_exit("--tls-key " + cert.key_file, out) == 2);
  CHECK_THAT(out, Catch::Contains("--tls-key needs --tls-cert"));
  CHECK(mufld_exit("--tls-cert " + certs.file("absent.crt") + " --tls-key " + cert.key_file, out) == 1);
  CHECK_THAT(out, Catch::Contains("--tls-cert " + certs.file("absent.crt") + ": cannot read it"));
  CHECK(mufld_exit("--tls-cert " + cert.cert_file + " --tls-key " + garbage, out) == 1);
  CHECK_THAT(out, Catch::Contains("--tls-key " + garbage + ": not a PEM private key"));
  CHECK(out.find("mufld listening on") == std::string::npos);
}
