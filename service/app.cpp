#include "service/app.h"

#include <spdlog/spdlog.h>

#include "federation/federation_pool.h"
#include "service/routes.h"
#include "service/version.h"
#include "tenants/token.h"

namespace mufl::service {

namespace {

// A hub that hears every event the Store commits from now on.
std::unique_ptr<EventHub> attach_event_hub(storage::Store& store) {
  auto hub = std::make_unique<EventHub>();
  auto last = store.set_event_listener([h = hub.get()](const std::vector<storage::StoredEvent>& events) {
    h->publish(events);
  });
  if (!last.ok()) spdlog::error("events: cannot listen to the database; streams get no live events: {}",
                                last.status().to_string());
  hub->start(last.ok() ? *last : 0);
  return hub;
}

}  // namespace

App::App(storage::Store& store, const Clock& clock, RandomSource& rng, const std::string& admin_token_hash,
         tenants::ActivityHooks hooks, EnergyOptions energy, EventStreamOptions events,
         MetricsEndpointOptions scrape, std::string data_dir)
    : store_(store),
      hub_(attach_event_hub(store)),
      clock_(clock),
      metrics_(kVersion, clock.now_unix_ms()),
      registry_(store, clock, rng, admin_token_hash),
      federations_(store, clock, rng),
      clients_(store, clock, rng),
      datasets_(data_dir),
      leases_(store, work_, clock, rng, std::move(data_dir),
              [this](const std::string& reason) { metrics_.client_update_rejected(reason); }),
      workers_(rng),
      activities_(store, Catalog::builtin(), clock, rng, with_federations(std::move(hooks))),
      router_([this](std::string_view token) {
        // A token's prefix says whose it is (tenants/token.h).
        return token.starts_with(tenants::kClientTokenPrefix) ? clients_.authenticate(token)
                                                              : registry_.authenticate(token);
      }),
      metrics_router_([](std::string_view) -> Result<Principal> {
        return Status::unauthenticated("the metrics listener serves no API");  // no route asks: all are public
      }) {
  add_system_routes(router_, store, energy.training_health);
  add_metrics_route(scrape.on_main_listener ? router_ : metrics_router_, store, metrics_, scrape.token);
  add_tenant_routes(router_, registry_, energy.on_quotas_changed);
  add_federation_routes(router_, federations_, clients_, work_, leases_);
  add_worker_routes(router_, workers_, datasets_);
  add_activity_routes(router_, activities_, Catalog::builtin(), clock, energy.waiting);
  add_group_routes(router_, store, energy.waiting);
  add_device_routes(router_, store, energy.inventory, clock, energy.dispatcher);
  add_usage_routes(router_, store, energy, clock);
  add_event_routes(router_, store, *hub_, events);
  // Leases that were open when mufld stopped go back on the board: their clients pick them up.
  if (auto restored = leases_.restore_open_leases(); !restored.ok())
    spdlog::error("federations: cannot restore the open leases: {}", restored.status().to_string());
  // Each tenant's energy so far, so the counters carry on across restarts.
  if (auto totals = store.energy_by_tenant(); totals.ok()) metrics_.seed_tenant_energy(*totals);
  if (energy.dispatcher) metrics_.set_policy(energy.dispatcher->name());
  scheduler::DeviceInventory* inv = energy.inventory;
  const scheduler::WaitingExplainer* waiting = energy.waiting;
  metrics_.set_event_status(hub_->subscribers(), hub_->last_id());
  metrics_.set_scrape_hook([this, inv, waiting] {
    if (inv) metrics_.set_device_status(inv->list());
    if (waiting)
      if (auto notes = waiting->explain(); notes.ok()) metrics_.set_waiting_groups(scheduler::count_by_reason(*notes));
    metrics_.set_event_status(hub_->subscribers(), hub_->last_id());
    metrics_.set_read_cache(store_.read_cache_stats());
    metrics_.set_client_work(work_.waiting(), work_.open_leases());
  });
}

App::~App() { store_.set_event_listener({}); }

tenants::ActivityHooks App::with_federations(tenants::ActivityHooks hooks) {
  if (!hooks.federation_schema)
    hooks.federation_schema = [this](const Principal& who, const std::string& id) -> Result<DataSchema> {
      auto f = federations_.get(who, id);
      if (!f.ok()) return f.status();
      return f->schema;
    };
  return hooks;
}

std::shared_ptr<fl::ClientPool> App::client_pool(const std::string& federation_id) {
  return std::make_shared<federation::FederationPool>(federation_id, store_, clients_, leases_, clock_);
}

HttpResponse App::handle(HttpRequest&& request) {
  const int64_t start = clock_.monotonic_ns();
  return finish(request, router_.handle(request), start);
}

HttpResponse App::handle_metrics(HttpRequest&& request) {
  const int64_t start = clock_.monotonic_ns();
  return finish(request, metrics_router_.handle(request), start);
}

// Counts and logs a routed request; returns its response.
HttpResponse App::finish(const HttpRequest& request, Router::Outcome out, int64_t start) {
  const double seconds = static_cast<double>(clock_.monotonic_ns() - start) / 1e9;
  metrics_.observe_request(out.route, request.method, out.response.status, seconds);
  if (out.response.status >= 500)
    spdlog::error("{} {} -> {} in {:.1f} ms: {}", request.method, request.path, out.response.status, seconds * 1e3,
                  body_of(out.response));
  else
    spdlog::debug("{} {} -> {} in {:.1f} ms", request.method, request.path, out.response.status, seconds * 1e3);
  return std::move(out.response);
}

}  // namespace mufl::service
