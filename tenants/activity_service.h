#pragma once
// ActivityService: the activity lifecycle as tenants see it — submit, read, list, cancel —
// with validation, quotas, idempotency and tenant isolation. Training itself is the
// scheduler's; this class only moves activities through the states a caller may ask for.
//
// Tenant isolation: a tenant only ever sees its own activities; another tenant's id reads as
// kNotFound, exactly like an id that does not exist. The admin sees all.
// Thread safety: all methods may be called from any thread. Blocking: calls the Store.
#include <functional>
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

// What the rest of mufl learns about activities from this service, and what it checks for it.
// The executor implements these; tests may leave them empty.
struct ActivityHooks {
  // OK when the data set's files are present; a failure (kFailedPrecondition, say) refuses the
  // submission with its message, so a missing data set fails at once, not later in training.
  std::function<Status(const std::string& dataset)> check_dataset;
  // The data schema of federation `id` as `who` may see it (its owner, or a tenant it is
  // shared with); kNotFound otherwise. Unset: the server takes no activities on federations.
  std::function<Result<DataSchema>(const Principal& who, const std::string& id)> federation_schema;
  // Called after a submission committed (not for a replay), and after a cancel committed.
  std::function<void(const Activity&)> on_submitted;
  std::function<void(const Activity&)> on_cancelled;
};

class ActivityService {
 public:
  ActivityService(storage::Store& store, const Catalog& catalog, const Clock& clock, RandomSource& rng,
                  ActivityHooks hooks = {});

  // Validates `body` (see activity_spec.h) and stores a new queued activity.
  // With `idempotency_key`: the same key and body return the first activity (replayed = true);
  // the same key with another body is kConflict. kPermissionDenied for the admin (who owns no
  // activities), kInvalidArgument for a bad body or key, kResourceExhausted over quota.
  Result<storage::SubmitResult> submit(const Principal& who, const nlohmann::json& body,
                                       const std::optional<std::string>& idempotency_key);
  // kNotFound when it does not exist or belongs to another tenant.
  Result<Activity> get(const Principal& who, const std::string& id);
  // The activity with its groups, energy, tenant and waiting group from one snapshot
  // (storage::ActivityDetail). kNotFound as get.
  Result<storage::ActivityDetail> get_detail(const Principal& who, const std::string& id);
  // Newest first. The principal's scope replaces query.scope.
  Result<storage::ActivityPage> list(const Principal& who, storage::ActivityQuery query);
  // Cancels; cancelling a finished activity returns it unchanged. kNotFound as get.
  Result<Activity> cancel(const Principal& who, const std::string& id);
  // A page of the round history, oldest first. The principal's scope replaces query.scope.
  // kNotFound as get.
  Result<storage::RoundPage> rounds(const Principal& who, const std::string& id, storage::RoundQuery query);
  // The final model file; with `cluster`, that client cluster's model (client clustering).
  // kNotFound as get, or for a cluster the activity does not have; kFailedPrecondition while
  // there is no model yet.
  Result<storage::StoredFile> model(const Principal& who, const std::string& id,
                                    std::optional<int64_t> cluster = std::nullopt);

 private:
  storage::Store& store_;
  const Catalog& catalog_;
  const Clock& clock_;
  RandomSource& rng_;
  ActivityHooks hooks_;
};

// The API form of an activity: its spec fields, plus id, tenant_id, state, state_reason,
// created_at, updated_at, and "progress" {round, rounds, device, started_at, finished_at,
// elapsed_seconds, latest (the last round's report), model_url}. `now_ms` dates elapsed_seconds.
nlohmann::json activity_to_json(const Activity& a, int64_t now_ms);

}  // namespace mufl::tenants
