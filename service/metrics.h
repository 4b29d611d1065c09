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
//   mufl_fl_rounds_total{device}                       counter, rounds aggregated
//   mufl_fl_round_duration_seconds{device}             histogram
//   mufl_fl_client_updates_total                       counter, client updates aggregated
//   mufl_fl_client_dropouts_total                      counter, sampled clients that did not report
//   mufl_fl_samples_trained_total                      counter, client training samples (all epochs)
//   mufl_activity_rounds_completed{activity_id}        gauge, while the activity trains
//   mufl_activity_progress_ratio{activity_id}          gauge, rounds done / rounds, while it trains
//   mufl_device_power_watts{device,meter}              gauge, read from the meter at scrape
//   mufl_device_energy_joules_total{device,meter}      counter, since mufld started
//   mufl_device_info{device,kind,host,gres}            gauge, 1: what each device is (host and gres
//                                                      for a Slurm cluster's GPUs, empty for this host's)
//   mufl_device_state{device,state}                    gauge, 1 for the device's state, 0 otherwise
//   mufl_tenant_energy_joules_total{tenant}            counter, the tenant's shares of the ledger
//   mufl_tenant_client_energy_joules_total{tenant}     counter, its federation clients' reported joules
//   mufl_tenant_co2e_grams_total{tenant}               counter, likewise in grams CO2e
//   mufl_tenant_energy_budget_joules{tenant}           gauge, only for live tenants with a budget
//   mufl_scheduler_policy_info{policy}                 gauge, 1 for the placement policy in force
//   mufl_scheduler_decisions_total{policy,decision}    counter, placement decisions (run, hold)
//   mufl_scheduler_held_groups                         gauge, groups the policy holds now
//   mufl_scheduler_waiting_groups{reason}              gauge, live groups without a device, by why
//   mufl_read_cache_requests_total{result}             counter, activity reads by hit or miss of the cache
// Label values are bounded: route is a template, method one of a fixed set, state an enum.
//
// Thread safety: all methods may be called from any thread.
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <shared_mutex>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include "core/activity.h"
#include "core/tenant.h"
#include <map>

#include "storage/store.h"

#include "scheduler/executor.h"
#include "scheduler/placement/waiting.h"

namespace prometheus {
class Registry;
class Counter;
class Histogram;
class Gauge;
template <typename T>
class Family;
}  // namespace prometheus

namespace mufl::service {

class Metrics : public scheduler::ExecutorObserver {
 public:
  Metrics(const std::string& version, int64_t start_unix_ms);
  ~Metrics();

  // Counts one answered request and its duration. `method` outside the usual verbs is
  // recorded as "other" so that label stays bounded.
  void observe_request(const std::string& route, const std::string& method, int status, double seconds);

  // Sets the gauges that mirror stored state; called just before each scrape.
  void set_activity_counts(const std::vector<std::pair<ActivityState, int64_t>>& counts);
  // The live tenants: their count, and the budget gauge of each that has an energy budget
  // (series of tenants deleted or made unlimited since the last call are removed). A tenant
  // with a budget also gets its energy counter at 0 before its first unit, so an alert can
  // compare the two from the start.
  void set_tenants(const std::vector<Tenant>& tenants);

  // Everything registered, in the Prometheus text exposition format 0.0.4.
  std::string serialize() const;

  std::shared_ptr<prometheus::Registry> registry() const { return registry_; }

  // ExecutorObserver: training progress. Per-activity series exist only while it trains, so
  // their number is bounded by the number of devices.
  void round_finished(const Group& g, const std::string& device, const fl::RoundReport& r) override;
  void activity_progress(const std::string& activity_id, int64_t rounds_done, int64_t rounds) override;
  void activity_ended(const std::string& activity_id, ActivityState final_state) override;
  void groups_formed(int64_t merged, int64_t joins) override;
  void group_split(const Group& parent, size_t children) override;
  void set_group_counts(const std::vector<std::pair<GroupPhase, int64_t>>& counts);

  // Energy. energy_recorded adds a unit's shares to its tenants' counters; seed_tenant_energy
  // starts them from the ledger's totals (at start-up); set_device_status sets the device
  // series from the inventory (just before a scrape).
  void energy_recorded(const storage::EnergyUnit& unit) override;
  void seed_tenant_energy(const std::vector<std::pair<std::string, storage::EnergyTotals>>& totals);
  void set_device_status(const std::vector<scheduler::DeviceStatus>& devices);

  // Placement: the policy in force (set once, at wiring; its decision series start at 0), the
  // executor's decisions, and how many groups wait for each reason now (just before a scrape;
  // the carbon count is also mufl_scheduler_held_groups).
  void set_policy(const std::string& policy);
  void placement_decided(const std::string& policy, const char* decision, int64_t n) override;
  void set_waiting_groups(const std::map<scheduler::WaitReason, int64_t>& counts);
  // The event stream (just before a scrape): open GET /v1/events streams, and the newest event
  // id, from which the published counter grows (event ids are consecutive; the first call, at
  // wiring, sets where the counter starts).
  void set_event_status(size_t subscribers, int64_t last_event_id);
  // The store's read cache (just before a scrape): its hit and miss counts since it opened.
  void set_read_cache(const storage::Store::ReadCacheStats& stats);
  // A federation client's update refused (docs/clients.md): reason too_large, malformed,
  // non_finite, tensors, report, unknown_lease, conflict or late.
  void client_update_rejected(const std::string& reason);
  // Federation clients long-polling for work now, and open leases (the work board).
  void set_client_work(size_t waiting_polls, size_t open_leases);
  // Runs before every scrape (GET /metrics); set once, at wiring.
  void set_scrape_hook(std::function<void()> hook) { scrape_hook_ = std::move(hook); }
  void before_scrape() {
    if (scrape_hook_) scrape_hook_();
  }

 private:
  std::shared_ptr<prometheus::Registry> registry_;
  prometheus::Family<prometheus::Counter>* requests_;
  prometheus::Family<prometheus::Histogram>* durations_;
  // The series of each (route, method, code) seen so far: Family::Add builds a histogram and
  // hashes its labels on every call, which the request path should not pay each time.
  struct RequestSeries {
    prometheus::Counter* count;
    prometheus::Histogram* seconds;
  };
  std::shared_mutex request_series_mu_;
  std::unordered_map<std::string, RequestSeries> request_series_;  // key: route \n method \n code
  RequestSeries& request_series(const std::string& route, const std::string& method, int status);
  prometheus::Family<prometheus::Gauge>* activities_;
  prometheus::Gauge* tenants_;
  prometheus::Family<prometheus::Counter>* rounds_;
  prometheus::Family<prometheus::Histogram>* round_seconds_;
  prometheus::Counter* client_updates_;
  prometheus::Counter* client_dropouts_;
  prometheus::Counter* samples_;
  prometheus::Family<prometheus::Gauge>* activity_rounds_;
  prometheus::Family<prometheus::Gauge>* activity_progress_;
  prometheus::Family<prometheus::Gauge>* groups_;
  prometheus::Counter* merges_;
  prometheus::Counter* joins_;
  prometheus::Counter* splits_;
  prometheus::Counter* affinity_seconds_;
  prometheus::Family<prometheus::Gauge>* device_power_;
  prometheus::Family<prometheus::Counter>* device_energy_;
  prometheus::Family<prometheus::Gauge>* device_state_;
  prometheus::Family<prometheus::Gauge>* device_info_;
  prometheus::Family<prometheus::Counter>* tenant_energy_;
  prometheus::Family<prometheus::Counter>* tenant_client_energy_;
  prometheus::Family<prometheus::Counter>* tenant_co2e_;
  prometheus::Family<prometheus::Gauge>* tenant_budget_;
  std::mutex tenant_mu_;                        // set_tenants from concurrent scrapes
  std::vector<std::string> budgeted_tenants_;  // tenants with a budget series, guarded by tenant_mu_
  prometheus::Family<prometheus::Gauge>* policy_info_;
  prometheus::Family<prometheus::Counter>* decisions_;
  prometheus::Gauge* held_groups_;
  prometheus::Family<prometheus::Gauge>* waiting_groups_;
  prometheus::Gauge* event_subscribers_;
  prometheus::Counter* events_published_;
  int64_t last_event_id_ = -1;  // -1: set_event_status not called yet
  prometheus::Family<prometheus::Counter>* updates_rejected_;
  prometheus::Gauge* waiting_polls_;
  prometheus::Gauge* open_leases_;
  prometheus::Counter* read_cache_hits_;
  prometheus::Counter* read_cache_misses_;
  storage::Store::ReadCacheStats read_cache_seen_;  // the counts the counters hold
  std::mutex read_cache_mu_;                        // guards read_cache_seen_ (two scrapes at once)
  std::mutex device_mu_;  // set_device_status from concurrent scrapes
  std::function<void()> scrape_hook_;
};

}  // namespace mufl::service
