#pragma once
// ActivityService: the activity lifecycle as tenants see it — submit, read, list, cancel —
// with validation, quotas, idempotency and tenant isolation. Training itself is the
// scheduler's; this class only moves activities through the states a caller may ask for.
//
// Tenant isolation: a tenant only ever sees its own activities; another tenant's id reads as
// kNotFound, exactly like an id that does not exist. The admin sees all.
// Thread safety: all methods may be called from any thread. Blocking: calls the Store.
#include <optional>
#include <string>

#include <nlohmann/json_fwd.hpp>

#include "core/catalog.h"
#include "core/clock.h"
#include "core/random.h"
#include "core/result.h"
#include "core/tenant.h"
#include "storage/store.h"

namespace mufl::tenants {

class ActivityService {
 public:
  ActivityService(storage::Store& store, const Catalog& catalog, const Clock& clock, RandomSource& rng);

  // Validates `body` (see activity_spec.h) and stores a new queued activity.
  // With `idempotency_key`: the same key and body return the first activity (replayed = true);
  // the same key with another body is kConflict. kPermissionDenied for the admin (who owns no
  // activities), kInvalidArgument for a bad body or key, kResourceExhausted over quota.
  Result<storage::SubmitResult> submit(const Principal& who, const nlohmann::json& body,
                                       const std::optional<std::string>& idempotency_key);
  // kNotFound when it does not exist or belongs to another tenant.
  Result<Activity> get(const Principal& who, const std::string& id);
  // Newest first. The principal's scope replaces query.scope.
  Result<storage::ActivityPage> list(const Principal& who, storage::ActivityQuery query);
  // Cancels; cancelling a finished activity returns it unchanged. kNotFound as get.
  Result<Activity> cancel(const Principal& who, const std::string& id);

 private:
  storage::Store& store_;
  const Catalog& catalog_;
  const Clock& clock_;
  RandomSource& rng_;
};

// The API form of an activity: its spec fields, plus id, tenant_id, state, state_reason,
// created_at and updated_at.
nlohmann::json activity_to_json(const Activity& a);

}  // namespace mufl::tenants
