#pragma once
// The REST routes, grouped by the part they expose. Each add_* registers its routes on the
// router; docs/openapi.yaml documents every one (a test checks that none is missing).
#include <functional>
#include <optional>
#include <string_view>

#include "core/catalog.h"
#include "core/clock.h"
#include "federation/client_registry.h"
#include "federation/federation_registry.h"
#include "federation/lease_desk.h"
#include "federation/work_board.h"
#include "scheduler/cluster/worker_desk.h"
#include "scheduler/device_inventory.h"
#include "scheduler/energy/energy_ledger.h"
#include "scheduler/placement/dispatch.h"
#include "scheduler/placement/waiting.h"
#include "service/event_stream.h"
#include "service/metrics.h"
#include "service/router.h"
#include "service/served_datasets.h"
#include "storage/store.h"
#include "tenants/activity_service.h"
#include "tenants/tenant_registry.h"

namespace mufl::service {

// What the energy routes show about the ledger's carbon figures.
struct EnergyOptions {
  scheduler::DeviceInventory* inventory = nullptr;  // the devices; nullptr: none (API-only tests)
  std::string carbon_source = "constant";           // the --carbon-file path, or "constant"
  double carbon_constant_g_per_kwh = scheduler::kDefaultCarbonGPerKwh;  // with "constant"
  std::string carbon_note = "IEA world average for electricity generation, 2019";
  // Called after a tenant's quotas changed (the executor wakes: a raised budget resumes work).
  std::function<void()> on_quotas_changed;
  // The placement policy in force (GET /v1/devices, /metrics) and why groups wait (GET
  // /v1/groups, /v1/activities/{id}, mufl_scheduler_waiting_groups); nullptr: none shown. Not owned.
  const scheduler::Dispatcher* dispatcher = nullptr;
  const scheduler::WaitingExplainer* waiting = nullptr;
  // The executor's storage health (Executor::storage_health): a failure makes /readyz 503,
  // naming it. Empty: not asked.
  std::function<Status()> training_health;
};

// /v1/tenants… (admin) and /v1/me. `on_quotas_changed` runs after a PATCH that changed quotas.
void add_tenant_routes(Router& router, tenants::TenantRegistry& registry,
                       std::function<void()> on_quotas_changed = {});
// /v1/federations… (tenants and the admin) and /v1/clients… (enrollment; the clients' own routes).
// `work` holds the open leases that GET /v1/clients/me/work hands out; `leases` serves their
// weights and takes their updates (/v1/work/{id}/…).
void add_federation_routes(Router& router, federation::FederationRegistry& federations,
                           federation::ClientRegistry& clients, federation::WorkBoard& work,
                           federation::LeaseDesk& leases);
// The body limit of a request (HttpServerOptions::body_limit_for): for PUT /v1/work/{id}/update
// of an open lease, the largest update its model implies; nullopt (the server's default) for
// anything else.
std::optional<size_t> work_body_limit(const federation::LeaseDesk& leases, std::string_view method,
                                      std::string_view target);
// /v1/workers/{id}/… (docs/cluster.md): the long poll, checkpoint and result of `mufl-worker`
// jobs on a Slurm cluster, and the files of the data sets they train on (`datasets`, which
// must outlive the router), each authenticated by the worker's own token.
void add_worker_routes(Router& router, scheduler::WorkerDesk& desk, ServedDatasets& datasets);
// The body limit of PUT /v1/workers/{id}/rounds/{round} (HttpServerOptions::body_limit_for):
// WorkerDesk::result_body_limit when `authorization` is "Bearer <that worker's token>";
// nullopt (the server's default limit) for anything else, so that a stranger who knows a
// worker id cannot send a large body.
std::optional<size_t> worker_body_limit(const scheduler::WorkerDesk& desk, std::string_view method,
                                        std::string_view target, std::string_view authorization);
// /v1/activities… (with rounds and model download) and /v1/catalog.
// `waiting`: why a group waits, shown as `waiting` and `waiting_reason` (nullptr: always null).
void add_activity_routes(Router& router, tenants::ActivityService& activities, const Catalog& catalog,
                         const Clock& clock, const scheduler::WaitingExplainer* waiting = nullptr);
// /v1/groups and /v1/groups/{id}: merge-and-split groups, scoped to the caller.
// `waiting`: why a group waits, shown as `waiting` and `waiting_reason` (nullptr: always null).
void add_group_routes(Router& router, storage::Store& store, const scheduler::WaitingExplainer* waiting = nullptr);
// /v1/devices and the admin's POST /v1/devices/{name}/drain and /resume.
// `dispatcher`: the policy shown as `policy` in the list (nullptr: null).
void add_device_routes(Router& router, storage::Store& store, scheduler::DeviceInventory* inventory,
                       const Clock& clock, const scheduler::Dispatcher* dispatcher = nullptr);
// /v1/usage: a tenant's energy and carbon per day.
void add_usage_routes(Router& router, storage::Store& store, const EnergyOptions& energy, const Clock& clock);
// /v1/events: Server-Sent Events about the caller's activities and the devices (docs/events.md).
// `hub` must be the Store's event listener and outlive the router.
void add_event_routes(Router& router, storage::Store& store, EventHub& hub, EventStreamOptions options = {});
// /healthz, /readyz (the store's readiness, then `training_health` when set), and the web
// dashboard (/ and /assets/{name}).
void add_system_routes(Router& router, storage::Store& store, std::function<Status()> training_health = {});
// GET /metrics (Prometheus text). `token` non-empty: a scrape must send it as a bearer token
// (service/metrics_endpoint.h), else 401.
void add_metrics_route(Router& router, storage::Store& store, Metrics& metrics, const std::string& token);

}  // namespace mufl::service
