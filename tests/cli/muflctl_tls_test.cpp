// muflctl against an https:// mufld (the real binaries, a certificate the test makes with
// openssl): --ca-file trusts it; without it the certificate is refused with a clear message and
// exit code 8, as is an https:// URL for a server that speaks plain HTTP.
#include <catch2/catch.hpp>

#include <nlohmann/json.hpp>

#include "cli/exit_codes.h"
#include "tests/cli/cli_runner.h"
#include "tests/support/mufld_process.h"
#include "tests/support/temp_dir.h"
#include "tests/support/tls_cert.h"

using namespace mufl::testing;
using nlohmann::json;

namespace {

const std::string kAdmin = "cli-tls-admin-token";

CliRun muflctl(const std::vector<std::string>& args, const std::map<std::string, std::string>& env = {}) {
  std::map<std::string, std::string> e = env;
  e.emplace("MUFL_TOKEN", kAdmin);
  CliRun r = run_cli(MUFLCTL_PATH, args, e);
  UNSCOPED_INFO("muflctl exit " << r.exit_code << "\nstdout:\n" << r.out << "\nstderr:\n" << r.err);
  return r;
}

}  // namespace

TEST_CASE("muflctl tls: --ca-file trusts the server, without it the certificate is refused with exit 8") {
  TempDir certs, dir;
  const auto cert = make_test_certificate(certs);
  MufldProcess mufld(MUFLD_PATH, dir.path(), kAdmin,
                     {"--devices", "none", "--tls-cert", cert.cert_file, "--tls-key", cert.key_file});
  const std::string server = "https://127.0.0.1:" + std::to_string(mufld.port());

  CliRun trusted = muflctl({"--server", server, "--ca-file", cert.cert_file, "--json", "devices"});
  CHECK(trusted.exit_code == mufl::cli::kExitOk);
  CHECK(json::parse(trusted.out).contains("items"));
  CliRun from_env = muflctl({"devices"}, {{"MUFL_SERVER", server}, {"MUFL_CA_FILE", cert.cert_file}});
  CHECK(from_env.exit_code == mufl::cli::kExitOk);

  CliRun refused = muflctl({"--server", server, "devices"});
  CHECK(refused.exit_code == mufl::cli::kExitTls);
  CHECK(refused.out.empty());
  CHECK_THAT(refused.err, Catch::Contains("muflctl: TLS: certificate verify failed (self-signed certificate) for " +
                                          server + "; pass --ca-file"));

  CliRun no_ca = muflctl({"--server", server, "--ca-file", certs.file("absent.pem"), "devices"});
  CHECK(no_ca.exit_code == mufl::cli::kExitLocal);
  CHECK_THAT(no_ca.err, Catch::Contains("cannot read the CA file " + certs.file("absent.pem")));
}

TEST_CASE("muflctl tls: an https URL for a plain HTTP server fails the handshake with exit 8") {
  TempDir dir;
  MufldProcess mufld(MUFLD_PATH, dir.path(), kAdmin, {"--devices", "none"});
  CliRun r = muflctl({"--server", "https://127.0.0.1:" + std::to_string(mufld.port()), "devices"});
  CHECK(r.exit_code == mufl::cli::kExitTls);
  CHECK_THAT(r.err, Catch::Contains("TLS: the handshake with https://127.0.0.1:" + std::to_string(mufld.port())));
  CHECK_THAT(r.err, Catch::Contains("does it serve HTTPS?"));
}
