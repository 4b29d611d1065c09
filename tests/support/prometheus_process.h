#pragma once
// Runs a real Prometheus server (the Debian package's /usr/bin/prometheus) as a child process
// for end-to-end tests: writes nothing itself but keeps its TSDB and log under a given folder,
// listens on a free loopback port, waits for /-/ready (polled with a deadline, no sleeps
// standing in for it), answers instant queries, and is always stopped: SIGTERM then SIGKILL
// in the destructor, and PR_SET_PDEATHSIG so it dies with the test even when the test crashes.
//
// Thread safety: none; use from the thread that created it (the death signal is tied to it).
#include <sys/types.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "tests/support/http_client.h"

namespace mufl::testing {

class PrometheusProcess {
 public:
  // Starts `binary --config.file=config --storage.tsdb.path=work_dir/tsdb
  // --web.listen-address=127.0.0.1:<free port>` plus `extra_args` (e.g. the console flags), its
  // output in work_dir/prometheus.log, and returns once GET /-/ready answers 200. A port taken
  // between choosing and binding is retried on another (3 tries). Throws std::runtime_error,
  // with the end of the log, when it exits or is not ready within `ready_seconds`.
  PrometheusProcess(const std::string& binary, const std::string& config, const std::string& work_dir,
                    const std::vector<std::string>& extra_args = {}, int ready_seconds = 60);
  // Stops the server: SIGTERM, and SIGKILL when it has not exited within 10 s.
  ~PrometheusProcess();
  PrometheusProcess(const PrometheusProcess&) = delete;
  PrometheusProcess& operator=(const PrometheusProcess&) = delete;

  uint16_t port() const { return port_; }
  // The last 4 KiB of the server's log, for failure messages.
  std::string log_tail() const;

  // GET /api/v1/query?query=<promql>: the "result" array of a successful answer (a vector, one
  // element per series). Throws std::runtime_error when Prometheus rejects the query.
  nlohmann::json query(const std::string& promql);
  // GET /api/v1/query_range?query=<promql>&start=&end=&step= (Unix seconds): the "result"
  // array (a matrix, one element per series with its "values"). Throws as query() does.
  nlohmann::json query_range(const std::string& promql, double start, double end, double step);
  // GET `target` (a path and query) from the server, for its web pages.
  ClientResponse get(const std::string& target) { return client_->get(target); }
  // query() every 100 ms until `done` holds for the result, and returns that result; returns
  // the last result with `ok` false when `seconds` pass first.
  nlohmann::json wait_for(const std::string& promql, const std::function<bool(const nlohmann::json&)>& done,
                          bool& ok, int seconds = 60);

 private:
  bool start(const std::string& binary, const std::string& config, const std::string& work_dir,
             const std::vector<std::string>& extra_args, int ready_seconds);
  void stop();

  pid_t pid_ = -1;
  uint16_t port_ = 0;
  std::string log_path_;
  std::unique_ptr<HttpClient> client_;
};

// `s` percent-encoded for a URL query value (RFC 3986 unreserved characters kept).
std::string url_encode(const std::string& s);

// The value of the one sample in an instant-query result, as a double; NaN when the result
// does not hold exactly one sample.
double single_value(const nlohmann::json& result);

}  // namespace mufl::testing
