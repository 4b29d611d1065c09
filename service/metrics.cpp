#include "service/metrics.h"

#include <algorithm>

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
  rounds_ = &prometheus::BuildCounter()
                 .Name("mufl_fl_rounds_total")
                 .Help("Federated rounds aggregated, by device.")
                 .Register(*registry_);
  round_seconds_ = &prometheus::BuildHistogram()
                        .Name("mufl_fl_round_duration_seconds")
                        .Help("Wall time of a federated round (client training, aggregation, evaluation), in seconds.")
                        .Register(*registry_);
  client_updates_ = &prometheus::BuildCounter()
                         .Name("mufl_fl_client_updates_total")
                         .Help("Client updates aggregated into a global model.")
                         .Register(*registry_)
                         .Add({});
  client_dropouts_ = &prometheus::BuildCounter()
                          .Name("mufl_fl_client_dropouts_total")
                          .Help("Sampled clients that did not report their update.")
                          .Register(*registry_)
                          .Add({});
  samples_ = &prometheus::BuildCounter()
                  .Name("mufl_fl_samples_trained_total")
                  .Help("Training samples processed by clients, counting every local epoch.")
                  .Register(*registry_)
                  .Add({});
  activity_rounds_ = &prometheus::BuildGauge()
                          .Name("mufl_activity_rounds_completed")
                          .Help("Rounds completed by each activity that is training now.")
                          .Register(*registry_);
  activity_progress_ = &prometheus::BuildGauge()
                            .Name("mufl_activity_progress_ratio")
                            .Help("Rounds completed / rounds requested, for each activity that is training now.")
                            .Register(*registry_);
  groups_ = &prometheus::BuildGauge()
                 .Name("mufl_groups")
                 .Help("Training groups in each phase (consolidating, training, split, done, failed).")
                 .Register(*registry_);
  auto& group_events = prometheus::BuildCounter()
                           .Name("mufl_group_events_total")
                           .Help("Grouping events: merge (a group of two or more activities forms), join (an "
                                 "activity joins a consolidating group), split (a group splits by affinity).")
                           .Register(*registry_);
  merges_ = &group_events.Add({{"event", "merge"}});
  joins_ = &group_events.Add({{"event", "join"}});
  splits_ = &group_events.Add({{"event", "split"}});
  affinity_seconds_ = &prometheus::BuildCounter()
                           .Name("mufl_affinity_computation_seconds_total")
                           .Help("Time clients spent on the task affinity lookahead while consolidating.")
                           .Register(*registry_)
                           .Add({});
  device_power_ = &prometheus::BuildGauge()
                       .Name("mufl_device_power_watts")
                       .Help("Power each device draws now, in watts, by the meter that measures it (nvml, rapl, model).")
                       .Register(*registry_);
  device_energy_ = &prometheus::BuildCounter()
                        .Name("mufl_device_energy_joules_total")
                        .Help("Energy each device used since mufld started, in joules, by its meter.")
                        .Register(*registry_);
  device_state_ = &prometheus::BuildGauge()
                       .Name("mufl_device_state")
                       .Help("1 for each device's state (idle, busy, draining, drained, unavailable), 0 for the others.")
                       .Register(*registry_);
  device_info_ = &prometheus::BuildGauge()
                      .Name("mufl_device_info")
                      .Help("1 for each device, labelled with its kind (cpu, cuda), and for a Slurm cluster's GPUs "
                            "their node (host) and GRES (gpu:TYPE); join on device.")
                      .Register(*registry_);
  tenant_energy_ = &prometheus::BuildCounter()
                        .Name("mufl_tenant_energy_joules_total")
                        .Help("Energy attributed to each tenant's activities in the energy ledger, in joules.")
                        .Register(*registry_);
  tenant_client_energy_ = &prometheus::BuildCounter()
                               .Name("mufl_tenant_client_energy_joules_total")
                               .Help("Energy federation clients metered over their leases and reported, attributed "
                                     "to each tenant's activities in the energy ledger, in joules (beside "
                                     "mufl_tenant_energy_joules_total, mufld's own).")
                               .Register(*registry_);
  tenant_co2e_ = &prometheus::BuildCounter()
                      .Name("mufl_tenant_co2e_grams_total")
                      .Help("Emissions attributed to each tenant's activities, in grams CO2e.")
                      .Register(*registry_);
  tenant_budget_ = &prometheus::BuildGauge()
                       .Name("mufl_tenant_energy_budget_joules")
                       .Help("Energy budget of each tenant that has one, in joules (its quota energy_budget_joules); "
                             "its work pauses once mufl_tenant_energy_joules_total reaches it.")
                       .Register(*registry_);
  policy_info_ = &prometheus::BuildGauge()
                      .Name("mufl_scheduler_policy_info")
                      .Help("Always 1; the label names the placement policy in force (fifo, fair, energy, carbon).")
                      .Register(*registry_);
  updates_rejected_ = &prometheus::BuildCounter()
                           .Name("mufl_client_updates_rejected_total")
                           .Help("Federation clients' updates refused and never aggregated, by reason.")
                           .Register(*registry_);
  for (const char* reason : {"too_large", "malformed", "non_finite", "tensors", "report", "unknown_lease", "conflict",
                             "late"})
    updates_rejected_->Add({{"reason", reason}});  // every series from the start: rate() needs a zero
  waiting_polls_ = &prometheus::BuildGauge()
                        .Name("mufl_client_polls_waiting")
                        .Help("Federation clients long-polling for work now.")
                        .Register(*registry_)
                        .Add({});
  open_leases_ = &prometheus::BuildGauge()
                      .Name("mufl_client_leases_open")
                      .Help("Work leases handed out and not yet reported, expired or abandoned.")
                      .Register(*registry_)
                      .Add({});
  decisions_ = &prometheus::BuildCounter()
                    .Name("mufl_scheduler_decisions_total")
                    .Help("Placement decisions: run (a device claims a group) or hold (the policy keeps a group "
                          "waiting, e.g. carbon deferral), by policy.")
                    .Register(*registry_);
  held_groups_ = &prometheus::BuildGauge()
                      .Name("mufl_scheduler_held_groups")
                      .Help("Groups the placement policy holds back now (carbon deferral).")
                      .Register(*registry_)
                      .Add({});
  waiting_groups_ = &prometheus::BuildGauge()
                         .Name("mufl_scheduler_waiting_groups")
                         .Help("Live groups without a device, by why they wait: budget, max_devices, storage, "
                               "carbon, better_device, no_fit, no_free_device or pending (docs/scheduling.md).")
                         .Register(*registry_);
  for (scheduler::WaitReason r : scheduler::kAllWaitReasons) waiting_groups_->Add({{"reason", to_string(r)}});
  event_subscribers_ = &prometheus::BuildGauge()
                            .Name("mufl_event_subscribers")
                            .Help("Open GET /v1/events streams.")
                            .Register(*registry_)
                            .Add({});
  events_published_ = &prometheus::BuildCounter()
                           .Name("mufl_events_published_total")
                           .Help("Events committed (and published to the streams) since mufld started.")
                           .Register(*registry_)
                           .Add({});
  auto& read_cache = prometheus::BuildCounter()
                         .Name("mufl_read_cache_requests_total")
                         .Help("GET /v1/activities/{id} reads answered from the in-memory read cache (hit) "
                               "or from the database (miss); --read-cache.")
                         .Register(*registry_);
  read_cache_hits_ = &read_cache.Add({{"result", "hit"}});
  read_cache_misses_ = &read_cache.Add({{"result", "miss"}});
}

void Metrics::set_read_cache(const storage::Store::ReadCacheStats& stats) {
  // A counter follows a count kept elsewhere: it grows by what the count gained since last time.
  auto follow = [](prometheus::Counter* counter, int64_t& seen, int64_t now) {
    if (now <= seen) return;
    counter->Increment(static_cast<double>(now - seen));
    seen = now;
  };
  std::lock_guard lock(read_cache_mu_);
  follow(read_cache_hits_, read_cache_seen_.hits, stats.hits);
  follow(read_cache_misses_, read_cache_seen_.misses, stats.misses);
}

void Metrics::set_event_status(size_t subscribers, int64_t last_event_id) {
  event_subscribers_->Set(static_cast<double>(subscribers));
  if (last_event_id_ >= 0 && last_event_id > last_event_id_)
    events_published_->Increment(static_cast<double>(last_event_id - last_event_id_));
  if (last_event_id > last_event_id_) last_event_id_ = last_event_id;
}

void Metrics::set_policy(const std::string& policy) {
  policy_info_->Add({{"policy", policy}}).Set(1);
  for (const char* d : {"run", "hold"}) decisions_->Add({{"policy", policy}, {"decision", d}});
}

void Metrics::client_update_rejected(const std::string& reason) {
  updates_rejected_->Add({{"reason", reason}}).Increment();
}

void Metrics::set_client_work(size_t waiting_polls, size_t open_leases) {
  waiting_polls_->Set(static_cast<double>(waiting_polls));
  open_leases_->Set(static_cast<double>(open_leases));
}

void Metrics::placement_decided(const std::string& policy, const char* decision, int64_t n) {
  decisions_->Add({{"policy", policy}, {"decision", decision}}).Increment(static_cast<double>(n));
}

void Metrics::set_waiting_groups(const std::map<scheduler::WaitReason, int64_t>& counts) {
  for (const auto& [reason, n] : counts) {
    waiting_groups_->Add({{"reason", to_string(reason)}}).Set(static_cast<double>(n));
    if (reason == scheduler::WaitReason::kCarbon) held_groups_->Set(static_cast<double>(n));
  }
}

Metrics::~Metrics() = default;

void Metrics::energy_recorded(const storage::EnergyUnit& unit) {
  for (const auto& s : unit.shares) {
    tenant_energy_->Add({{"tenant", s.tenant_id}}).Increment(s.joules);
    tenant_co2e_->Add({{"tenant", s.tenant_id}}).Increment(s.grams_co2e);
    if (s.client_joules > 0) tenant_client_energy_->Add({{"tenant", s.tenant_id}}).Increment(s.client_joules);
  }
}

void Metrics::seed_tenant_energy(const std::vector<std::pair<std::string, storage::EnergyTotals>>& totals) {
  for (const auto& [tenant, t] : totals) {
    tenant_energy_->Add({{"tenant", tenant}}).Increment(t.joules);
    tenant_co2e_->Add({{"tenant", tenant}}).Increment(t.grams_co2e);
    if (t.client_joules > 0) tenant_client_energy_->Add({{"tenant", tenant}}).Increment(t.client_joules);
  }
}

void Metrics::set_device_status(const std::vector<scheduler::DeviceStatus>& devices) {
  std::lock_guard lock(device_mu_);
  for (const auto& d : devices) {
    device_power_->Add({{"device", d.name}, {"meter", d.meter}}).Set(d.power_watts);
    auto& energy = device_energy_->Add({{"device", d.name}, {"meter", d.meter}});
    // A counter only goes up: add what the meter counted since the last scrape.
    if (d.energy_joules > energy.Value()) energy.Increment(d.energy_joules - energy.Value());
    device_info_->Add({{"device", d.name}, {"kind", d.kind}, {"host", d.host}, {"gres", d.gres}}).Set(1);
    for (auto s : scheduler::kAllDeviceStates)
      device_state_->Add({{"device", d.name}, {"state", scheduler::to_string(s)}}).Set(s == d.state ? 1 : 0);
  }
}

void Metrics::round_finished(const Group&, const std::string& device, const fl::RoundReport& r) {
  rounds_->Add({{"device", device}}).Increment();
  static const prometheus::Histogram::BucketBoundaries kBuckets = {0.1, 0.25, 0.5, 1, 2.5, 5, 10, 25, 60, 120, 300};
  round_seconds_->Add({{"device", device}}, kBuckets).Observe(r.seconds);
  client_updates_->Increment(static_cast<double>(r.clients_reported));
  client_dropouts_->Increment(static_cast<double>(r.clients_dropped));
  samples_->Increment(static_cast<double>(r.samples));
  affinity_seconds_->Increment(r.affinity_seconds);
}

void Metrics::activity_progress(const std::string& id, int64_t rounds_done, int64_t rounds) {
  activity_rounds_->Add({{"activity_id", id}}).Set(static_cast<double>(rounds_done));
  activity_progress_->Add({{"activity_id", id}})
      .Set(static_cast<double>(rounds_done) / static_cast<double>(std::max<int64_t>(1, rounds)));
}

void Metrics::activity_ended(const std::string& id, ActivityState) {
  activity_rounds_->Remove(&activity_rounds_->Add({{"activity_id", id}}));
  activity_progress_->Remove(&activity_progress_->Add({{"activity_id", id}}));
}

void Metrics::groups_formed(int64_t merged, int64_t joins) {
  merges_->Increment(static_cast<double>(merged));
  joins_->Increment(static_cast<double>(joins));
}

void Metrics::group_split(const Group&, size_t) { splits_->Increment(); }

void Metrics::set_group_counts(const std::vector<std::pair<GroupPhase, int64_t>>& counts) {
  for (const auto& [phase, n] : counts) groups_->Add({{"phase", to_string(phase)}}).Set(static_cast<double>(n));
}

Metrics::RequestSeries& Metrics::request_series(const std::string& route, const std::string& method, int status) {
  const std::string& m = bounded_method(method);
  std::string code = std::to_string(status);
  std::string key = route + '\n' + m + '\n' + code;
  {
    std::shared_lock lock(request_series_mu_);
    if (auto it = request_series_.find(key); it != request_series_.end()) return it->second;
  }
  static const prometheus::Histogram::BucketBoundaries kBuckets = {0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025,
                                                                   0.05,   0.1,   0.25,   0.5,   1.0,  2.5};
  std::unique_lock lock(request_series_mu_);
  RequestSeries series{&requests_->Add({{"route", route}, {"method", m}, {"code", code}}),
                       &durations_->Add({{"route", route}, {"method", m}}, kBuckets)};
  return request_series_.emplace(std::move(key), series).first->second;  // map nodes never move
}

void Metrics::observe_request(const std::string& route, const std::string& method, int status, double seconds) {
  RequestSeries& series = request_series(route, method, status);
  series.count->Increment();
  series.seconds->Observe(seconds);
}

void Metrics::set_activity_counts(const std::vector<std::pair<ActivityState, int64_t>>& counts) {
  for (const auto& [state, n] : counts) activities_->Add({{"state", to_string(state)}}).Set(static_cast<double>(n));
}

void Metrics::set_tenants(const std::vector<Tenant>& tenants) {
  tenants_->Set(static_cast<double>(tenants.size()));
  std::lock_guard lock(tenant_mu_);
  std::vector<std::string> budgeted;
  for (const auto& t : tenants) {
    if (!t.quotas.energy_budget_joules) continue;
    tenant_budget_->Add({{"tenant", t.id}}).Set(*t.quotas.energy_budget_joules);
    tenant_energy_->Add({{"tenant", t.id}});  // 0 until its first unit; never lowered
    budgeted.push_back(t.id);
  }
  std::sort(budgeted.begin(), budgeted.end());
  for (const auto& id : budgeted_tenants_)
    if (!std::binary_search(budgeted.begin(), budgeted.end(), id))
      tenant_budget_->Remove(&tenant_budget_->Add({{"tenant", id}}));
  budgeted_tenants_ = std::move(budgeted);
}

std::string Metrics::serialize() const {
  return prometheus::TextSerializer().Serialize(registry_->Collect());
}

}  // namespace mufl::service
