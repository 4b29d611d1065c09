#pragma once
// The REST routes, grouped by the part they expose. Each add_* registers its routes on the
// router; docs/openapi.yaml documents every one (a test checks that none is missing).
#include <functional>

#include "core/catalog.h"
#include "core/clock.h"
#include "service/metrics.h"
#include "service/router.h"
#include "storage/store.h"
#include "tenants/activity_service.h"
#include "tenants/tenant_registry.h"

namespace mufl::service {

// /v1/tenants… (admin) and /v1/me.
void add_tenant_routes(Router& router, tenants::TenantRegistry& registry);
// /v1/activities… (with rounds and model download) and /v1/catalog.
void add_activity_routes(Router& router, tenants::ActivityService& activities, storage::Store& store,
                         const Catalog& catalog, const Clock& clock);
// /v1/groups and /v1/groups/{id}: merge-and-split groups, scoped to the caller.
void add_group_routes(Router& router, storage::Store& store);
// /healthz, /readyz, /metrics, and the web dashboard (/ and /assets/{name}).
void add_system_routes(Router& router, storage::Store& store, Metrics& metrics);

}  // namespace mufl::service
