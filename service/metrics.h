#pragma once
// The service's Prometheus metrics, registered once here and exported in the text format by
// GET /metrics (prometheus-cpp's TextSerializer, served by our own HTTP server).
// Series (docs/metrics.md lists them with units and labels):
//   mufl_http_requests_total{route,method,code}        counter
//   mufl_http_request_duration_seconds{route,method}   histogram
//   mufl_activities{state}                             gauge, read from the store at scrape
//   mufl_tenants                                       gauge, read from the store at scrape
//   mufl_build_info{version}                           gauge, always 1
//   mufl_process_start_time_seconds                    gauge
// Label values are bounded: route is a template, method one of a fixed set, state an enum.
//
// Thread safety: all methods may be called from any thread.
#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "core/activity.h"

namespace prometheus {
class Registry;
class Counter;
class Histogram;
class Gauge;
template <typename T>
class Family;
}  // namespace prometheus

namespace mufl::service {

class Metrics {
 public:
  Metrics(const std::string& version, int64_t start_unix_ms);
  ~Metrics();

  // Counts one answered request and its duration. `method` outside the usual verbs is
  // recorded as "other" so that label stays bounded.
  void observe_request(const std::string& route, const std::string& method, int status, double seconds);

  // Sets the gauges that mirror stored state; called just before each scrape.
  void set_activity_counts(const std::vector<std::pair<ActivityState, int64_t>>& counts);
  void set_tenant_count(int64_t n);

  // Everything registered, in the Prometheus text exposition format 0.0.4.
  std::string serialize() const;

  std::shared_ptr<prometheus::Registry> registry() const { return registry_; }

 private:
  std::shared_ptr<prometheus::Registry> registry_;
  prometheus::Family<prometheus::Counter>* requests_;
  prometheus::Family<prometheus::Histogram>* durations_;
  prometheus::Family<prometheus::Gauge>* activities_;
  prometheus::Gauge* tenants_;
};

}  // namespace mufl::service
