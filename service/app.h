#pragma once
// App: the service wired together — tenants, activities, metrics and the router over one
// Store. handle() is the whole request path minus sockets: route, authenticate, run the handler,
// record metrics and log. mufld's main puts an HttpServer in front of it; tests call it directly.
//
// Thread safety: handle() may run on many threads at once.
#include <memory>
#include <string>

#include "core/catalog.h"
#include "core/clock.h"
#include "core/random.h"
#include "federation/client_registry.h"
#include "federation/federation_registry.h"
#include "federation/lease_desk.h"
#include "federation/work_board.h"
#include "fl/client_pool.h"
#include "service/event_hub.h"
#include "service/event_stream.h"
#include "service/http_types.h"
#include "service/metrics.h"
#include "service/metrics_endpoint.h"
#include "service/router.h"
#include "service/routes.h"
#include "service/served_datasets.h"
#include "storage/store.h"
#include "tenants/activity_service.h"
#include "tenants/tenant_registry.h"

namespace mufl::service {

class App {
 public:
  // The references must outlive the App. `admin_token_hash` is tenants::sha256_hex(token).
  // `hooks` connect activity changes to the executor and check data sets at submission.
  // `energy`: the devices (GET /v1/devices, their /metrics series) and the carbon figures of
  // /v1/usage; the inventory, when given, must outlive the App.
  // The App's EventHub is the Store's event listener while the App lives (GET /v1/events);
  // `events` sets the streams' keep-alive. `scrape` says where GET /metrics is served (the main
  // router, or handle_metrics only) and whether it needs a token. `data_dir` (mufld's
  // --data-dir) holds the federation leases' weights and updates (<data_dir>/leases/) and the
  // data sets served to cluster workers (<data_dir>/datasets/).
  App(storage::Store& store, const Clock& clock, RandomSource& rng, const std::string& admin_token_hash,
      tenants::ActivityHooks hooks = {}, EnergyOptions energy = {}, EventStreamOptions events = {},
      MetricsEndpointOptions scrape = {}, std::string data_dir = "var");
  ~App();
  App(const App&) = delete;
  App& operator=(const App&) = delete;

  HttpResponse handle(HttpRequest&& request);
  // The request path of a listener for /metrics alone (mufld's --metrics-listen): GET /metrics
  // as `scrape` says, 404 problem+json for every other path. Requests are counted in /metrics
  // like handle()'s. Thread safety as handle().
  HttpResponse handle_metrics(HttpRequest&& request);

  const Router& router() const { return router_; }
  Metrics& metrics() { return metrics_; }
  EventHub& events() { return *hub_; }
  federation::WorkBoard& work() { return work_; }
  federation::LeaseDesk& leases() { return leases_; }
  // The workers of a Slurm cluster (docs/cluster.md), for the cluster backend.
  scheduler::WorkerDesk& workers() { return workers_; }
  // The clients of each federation as a pool of a job's rounds (federation/federation_pool.h),
  // for the executor (scheduler::ExecutorOptions::client_pools). The App must outlive them.
  std::shared_ptr<fl::ClientPool> client_pool(const std::string& federation_id);

 private:
  storage::Store& store_;
  std::unique_ptr<EventHub> hub_;  // before the routes that use it
  const Clock& clock_;
  Metrics metrics_;
  tenants::TenantRegistry registry_;
  federation::FederationRegistry federations_;
  federation::ClientRegistry clients_;
  federation::WorkBoard work_;  // the clients' open leases and long polls
  ServedDatasets datasets_;     // before leases_, which takes the data dir's string
  federation::LeaseDesk leases_;
  scheduler::WorkerDesk workers_;  // cluster workers' rounds and long polls
  tenants::ActivityService activities_;
  Router router_;
  Router metrics_router_;  // GET /metrics when it is not on router_; nothing else

  HttpResponse finish(const HttpRequest& request, Router::Outcome out, int64_t start_ns);
  // `hooks` with the schema lookup of activities on federations, unless the caller set one.
  tenants::ActivityHooks with_federations(tenants::ActivityHooks hooks);
};

}  // namespace mufl::service
