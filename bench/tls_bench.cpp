// bench/tls: what HTTPS costs a client of mufld, on loopback. Starts the real mufld twice on
// fresh data dirs, once plain and once with a self-signed certificate (openssl), and times
// GET /healthz from one client thread: on a new connection each time (TCP connect, and for TLS
// the full handshake: the client keeps no session to resume) and on one keep-alive connection.
// Plain and TLS alternate round by round, after a warm-up; each figure is the median of
// --rounds rounds of --requests requests. Prints the figures, then one line of JSON with the
// new-connection times as baseline (plain) and candidate (TLS): a ratio below 1 means TLS is
// slower. Exit code: 0 when every response was 200, 1 otherwise, 2 on a setup failure.
#include <signal.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include "cli/http_client.h"
#include "tests/support/mufld_process.h"
#include "tests/support/temp_dir.h"
#include "tests/support/tls_cert.h"

namespace {

using Clock = std::chrono::steady_clock;
using mufl::client::ClientOptions;
using mufl::client::HttpClient;

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

// Milliseconds per GET /healthz over `n` requests: a new client (connection) for each when
// `fresh`, else one keep-alive client. False in `ok` when a response was not 200.
double time_gets(uint16_t port, const ClientOptions& options, int n, bool fresh, bool& ok) {
  std::unique_ptr<HttpClient> kept = fresh ? nullptr : std::make_unique<HttpClient>("127.0.0.1", port, options);
  const auto start = Clock::now();
  for (int i = 0; i < n; ++i) {
    if (fresh) {
      HttpClient once("127.0.0.1", port, options);
      ok = ok && once.get("/healthz").status == 200;
    } else {
      ok = ok && kept->get("/healthz").status == 200;
    }
  }
  return std::chrono::duration<double, std::milli>(Clock::now() - start).count() / n;
}

}  // namespace

int main(int argc, char** argv) {
  int rounds = 7, requests = 200;
  for (int i = 1; i < argc; ++i) {
    const bool has_value = i + 1 < argc;
    if (std::strcmp(argv[i], "--rounds") == 0 && has_value) {
      rounds = std::max(1, std::atoi(argv[++i]));
    } else if (std::strcmp(argv[i], "--requests") == 0 && has_value) {
      requests = std::max(1, std::atoi(argv[++i]));
    } else {
      std::fprintf(std::strcmp(argv[i], "--help") == 0 ? stdout : stderr,
                   "usage: bench/tls [--rounds N (7)] [--requests N per round and kind (200)]\n");
      return std::strcmp(argv[i], "--help") == 0 ? 0 : 2;
    }
  }
  try {
    mufl::testing::TempDir certs, plain_dir, tls_dir;
    const auto cert = mufl::testing::make_test_certificate(certs);
    const std::vector<std::string> common = {"--devices", "none", "--threads", "1"};
    std::vector<std::string> tls_args = common;
    tls_args.insert(tls_args.end(), {"--tls-cert", cert.cert_file, "--tls-key", cert.key_file});
    mufl::testing::MufldProcess plain(MUFLD_PATH, plain_dir.path(), "bench-admin-token", common);
    mufl::testing::MufldProcess tls(MUFLD_PATH, tls_dir.path(), "bench-admin-token", tls_args);
    ClientOptions plain_options;
    ClientOptions tls_options = mufl::testing::https_options(cert.cert_file);

    bool ok = true;
    time_gets(plain.port(), plain_options, requests / 4 + 1, true, ok);  // warm-up
    time_gets(tls.port(), tls_options, requests / 4 + 1, true, ok);
    std::vector<double> plain_new, tls_new, plain_kept, tls_kept;
    for (int r = 0; r < rounds; ++r) {
      plain_new.push_back(time_gets(plain.port(), plain_options, requests, true, ok));
      tls_new.push_back(time_gets(tls.port(), tls_options, requests, true, ok));
      plain_kept.push_back(time_gets(plain.port(), plain_options, requests, false, ok));
      tls_kept.push_back(time_gets(tls.port(), tls_options, requests, false, ok));
    }
    const double pn = median(plain_new), tn = median(tls_new), pk = median(plain_kept), tk = median(tls_kept);
    std::printf("GET /healthz, %d rounds of %d requests, medians:\n", rounds, requests);
    std::printf("  new connection:  plain %.3f ms  TLS %.3f ms  (handshake about %.3f ms)\n", pn, tn, tn - pn);
    std::printf("  keep-alive:      plain %.3f ms  TLS %.3f ms\n", pk, tk);
    std::printf("{\"bench\":\"tls\",\"n\":%d,\"baseline_ms\":%.4f,\"candidate_ms\":%.4f,\"ratio\":%.3f,"
                "\"handshake_ms\":%.4f,\"keepalive_plain_ms\":%.4f,\"keepalive_tls_ms\":%.4f}\n",
                rounds * requests, pn, tn, pn / tn, tn - pn, pk, tk);
    plain.stop(SIGTERM);
    tls.stop(SIGTERM);
    return ok ? 0 : 1;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "bench/tls: %s\n", e.what());
    return 2;
  }
}
