#include "tenants/activity_service.h"

#include <nlohmann/json.hpp>

#include "core/ids.h"
#include "core/time_format.h"
#include "tenants/activity_spec.h"
#include "tenants/token.h"

namespace mufl::tenants {
namespace {

constexpr size_t kMaxIdempotencyKeyLength = 255;

storage::Scope scope_of(const Principal& who) {
  return who.is_admin() ? storage::Scope::all() : storage::Scope::of(who.tenant_id);
}

bool valid_idempotency_key(const std::string& key) {
  if (key.empty() || key.size() > kMaxIdempotencyKeyLength) return false;
  for (unsigned char c : key)
    if (c < 0x21 || c > 0x7e) return false;  // visible ASCII only
  return true;
}

}  // namespace

ActivityService::ActivityService(storage::Store& store, const Catalog& catalog, const Clock& clock,
                                 RandomSource& rng)
    : store_(store), catalog_(catalog), clock_(clock), rng_(rng) {}

Result<storage::SubmitResult> ActivityService::submit(const Principal& who, const nlohmann::json& body,
                                                      const std::optional<std::string>& idempotency_key) {
  if (who.is_admin())
    return Status::permission_denied("activities belong to tenants: submit with a tenant's token");
  const int64_t now = clock_.now_unix_ms();
  auto spec = parse_activity_spec(body, catalog_, now);
  std::optional<storage::IdempotencyKey> idem;
  if (idempotency_key) {
    if (!valid_idempotency_key(*idempotency_key)) {
      std::vector<FieldError> errors =
          spec.ok() ? std::vector<FieldError>{} : spec.status().field_errors();
      errors.push_back({"Idempotency-Key", "must be 1 to 255 visible ASCII characters"});
      return Status::invalid_argument("the activity request has invalid fields", std::move(errors));
    }
    idem = storage::IdempotencyKey{*idempotency_key, sha256_hex(body.dump())};
  }
  if (!spec.ok()) return spec.status();

  auto tenant = store_.get_tenant(who.tenant_id);
  if (!tenant.ok()) return tenant.status();

  Activity a;
  a.id = new_id("act", rng_);
  a.tenant_id = who.tenant_id;
  a.spec = std::move(*spec);
  a.state = ActivityState::kQueued;
  a.created_unix_ms = a.updated_unix_ms = now;
  return store_.submit_activity(a, tenant->quotas.max_active_activities, idem);
}

Result<Activity> ActivityService::get(const Principal& who, const std::string& id) {
  if (!looks_like_id(id, "act")) return Status::not_found("no activity " + id);
  return store_.get_activity(id, scope_of(who));
}

Result<storage::ActivityPage> ActivityService::list(const Principal& who, storage::ActivityQuery query) {
  query.scope = scope_of(who);
  return store_.list_activities(query);
}

Result<Activity> ActivityService::cancel(const Principal& who, const std::string& id) {
  if (!looks_like_id(id, "act")) return Status::not_found("no activity " + id);
  return store_.cancel_activity(id, scope_of(who), who.is_admin() ? "cancelled by the operator" : "cancelled by the tenant",
                                clock_.now_unix_ms());
}

nlohmann::json activity_to_json(const Activity& a) {
  nlohmann::json j = spec_to_json(a.spec);
  j["id"] = a.id;
  j["tenant_id"] = a.tenant_id;
  j["state"] = to_string(a.state);
  j["state_reason"] = a.state_reason;
  j["created_at"] = format_rfc3339(a.created_unix_ms);
  j["updated_at"] = format_rfc3339(a.updated_unix_ms);
  return j;
}

}  // namespace mufl::tenants
