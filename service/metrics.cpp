#include "service/metrics.h"

#include <prometheus/counter.h>
#include <prometheus/gauge.h>
#include <prometheus/histogram.h>
#include <prometheus/registry.h>
#include <prometheus/text_serializer.h>

namespace mufl::service {
namespace {

const std::string& bounded_method(const std::string& m) {
  static const std::string kKnown[] = {"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"};
  static const std::string kOther = "other";
  for (const auto& k : kKnown)
    if (k == m) return k;
  return kOther;
}

}  // namespace

Metrics::Metrics(const std::string& version, int64_t start_unix_ms)
    : registry_(std::make_shared<prometheus::Registry>()) {
  requests_ = &prometheus::BuildCounter()
                   .Name("mufl_http_requests_total")
                   .Help("HTTP requests answered, by route template, method and status code.")
                   .Register(*registry_);
  durations_ = &prometheus::BuildHistogram()
                    .Name("mufl_http_request_duration_seconds")
                    .Help("Time from a parsed request to its response being ready, in seconds.")
                    .Register(*registry_);
  activities_ = &prometheus::BuildGauge()
                     .Name("mufl_activities")
                     .Help("Activities by lifecycle state.")
                     .Register(*registry_);
  for (ActivityState s : kAllActivityStates) activities_->Add({{"state", to_string(s)}});
  tenants_ = &prometheus::BuildGauge()
                  .Name("mufl_tenants")
                  .Help("Tenants that exist (deleted ones excluded).")
                  .Register(*registry_)
                  .Add({});
  prometheus::BuildGauge()
      .Name("mufl_build_info")
      .Help("Always 1; the labels say which build of mufld is running.")
      .Register(*registry_)
      .Add({{"version", version}})
      .Set(1);
  prometheus::BuildGauge()
      .Name("mufl_process_start_time_seconds")
      .Help("When mufld started, in seconds since the Unix epoch.")
      .Register(*registry_)
      .Add({})
      .Set(static_cast<double>(start_unix_ms) / 1000.0);
}

Metrics::~Metrics() = default;

void Metrics::observe_request(const std::string& route, const std::string& method, int status, double seconds) {
  const std::string& m = bounded_method(method);
  requests_->Add({{"route", route}, {"method", m}, {"code", std::to_string(status)}}).Increment();
  static const prometheus::Histogram::BucketBoundaries kBuckets = {0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025,
                                                                   0.05,   0.1,   0.25,   0.5,   1.0,  2.5};
  durations_->Add({{"route", route}, {"method", m}}, kBuckets).Observe(seconds);
}

void Metrics::set_activity_counts(const std::vector<std::pair<ActivityState, int64_t>>& counts) {
  for (const auto& [state, n] : counts) activities_->Add({{"state", to_string(state)}}).Set(static_cast<double>(n));
}

void Metrics::set_tenant_count(int64_t n) { tenants_->Set(static_cast<double>(n)); }

std::string Metrics::serialize() const {
  return prometheus::TextSerializer().Serialize(registry_->Collect());
}

}  // namespace mufl::service
