#include "tenants/tenant_registry.h"

#include <nlohmann/json.hpp>

#include "core/ids.h"
#include "core/strings.h"
#include "core/time_format.h"
#include "tenants/json_fields.h"
#include "tenants/token.h"

namespace mufl::tenants {
namespace {

// Reads {"max_active_activities": N, "energy_budget_joules": J|null, "max_devices": N|null,
// "fair_share_weight": W} into `q`, keeping the fields the object leaves out; null makes a
// limit unlimited (a weight is no limit, so it has no null).
void read_quotas(const nlohmann::json& obj, Quotas& q, std::vector<FieldError>& errors) {
  FieldReader r(obj, "quotas.", errors);
  if (auto n = r.integer("max_active_activities", false, 0, kMaxQuotaActivities)) q.max_active_activities = *n;
  const auto is_null = [&](const char* key) { return obj.contains(key) && obj.at(key).is_null(); };
  if (is_null("energy_budget_joules")) q.energy_budget_joules.reset();
  if (auto j = r.number("energy_budget_joules", false, 0, false, kMaxEnergyBudgetJoules)) q.energy_budget_joules = *j;
  if (is_null("max_devices")) q.max_devices.reset();
  if (auto n = r.integer("max_devices", false, 0, kMaxQuotaDevices)) q.max_devices = *n;
  if (is_null("fair_share_weight"))
    errors.push_back({"quotas.fair_share_weight", "must be a number in (0, 1000]; null is not a weight"});
  if (auto w = r.number("fair_share_weight", false, 0, true, kMaxFairShareWeight)) q.fair_share_weight = *w;
  if (auto p = r.integer("max_priority", false, 0, kMaxQuotaPriority)) q.max_priority = *p;
  if (auto n = r.integer("max_client_updates", false, 1, kMaxQuotaClientUpdates)) q.max_client_updates = *n;
  r.finish();
}

nlohmann::json optional_json(const auto& v) { return v ? nlohmann::json(*v) : nlohmann::json(); }

}  // namespace

TenantRegistry::TenantRegistry(storage::TenantStore& store, const Clock& clock, RandomSource& rng,
                               std::string admin_token_hash)
    : store_(store), clock_(clock), rng_(rng), admin_token_hash_(std::move(admin_token_hash)) {}

Result<Principal> TenantRegistry::authenticate(std::string_view token) const {
  if (token.empty()) return Status::unauthenticated("a bearer token is required");
  std::string hash = sha256_hex(token);
  if (constant_time_equal(hash, admin_token_hash_)) return Principal::admin();
  uint64_t generation;
  {
    std::shared_lock lock(cache_mu_);
    if (auto it = token_cache_.find(hash); it != token_cache_.end()) return Principal::tenant(it->second);
    generation = cache_generation_;
  }
  auto tenant = store_.find_tenant_by_token_hash(hash);
  if (tenant.ok()) {
    std::unique_lock lock(cache_mu_);
    if (cache_generation_ == generation) token_cache_[hash] = tenant->id;
    return Principal::tenant(tenant->id);
  }
  if (tenant.status().is_not_found()) return Status::unauthenticated("the bearer token is not valid");
  return tenant.status();
}

Result<CreatedTenant> TenantRegistry::create(const nlohmann::json& body) {
  std::vector<FieldError> errors;
  FieldReader r(body, "", errors);
  Tenant t;
  auto name = r.string("name", true, 1, 64);
  if (name && !is_plain_name(*name)) {
    r.fail("name", "may hold only letters, digits, '.', '_' and '-'");
    name.reset();
  }
  if (const auto* quotas = r.object("quotas", false)) read_quotas(*quotas, t.quotas, errors);
  r.finish();
  if (!errors.empty()) return Status::invalid_argument("the tenant request has invalid fields", std::move(errors));

  t.id = new_id("ten", rng_);
  t.name = *name;
  t.created_unix_ms = t.updated_unix_ms = clock_.now_unix_ms();
  std::string token = generate_token(rng_);
  auto stored = store_.create_tenant(t, sha256_hex(token));
  if (!stored.ok()) return stored.status();
  return CreatedTenant{std::move(*stored), std::move(token)};
}

Result<std::vector<Tenant>> TenantRegistry::list() const { return store_.list_tenants(); }

Result<Tenant> TenantRegistry::get(const std::string& id) const { return store_.get_tenant(id); }

Result<Tenant> TenantRegistry::update(const std::string& id, const nlohmann::json& body) {
  auto current = store_.get_tenant(id);
  if (!current.ok()) return current.status();
  std::vector<FieldError> errors;
  FieldReader r(body, "", errors);
  Quotas quotas = current->quotas;
  if (const auto* q = r.object("quotas", true)) read_quotas(*q, quotas, errors);
  r.finish();
  if (!errors.empty()) return Status::invalid_argument("the tenant update has invalid fields", std::move(errors));
  return store_.update_tenant_quotas(id, quotas, clock_.now_unix_ms());
}

Status TenantRegistry::remove(const std::string& id) {
  Status s = store_.delete_tenant(id, clock_.now_unix_ms());
  // Also after a failure: the cache must never outlive what the store says.
  std::unique_lock lock(cache_mu_);
  ++cache_generation_;
  std::erase_if(token_cache_, [&](const auto& entry) { return entry.second == id; });
  return s;
}

nlohmann::json tenant_to_json(const Tenant& t) {
  return {{"id", t.id},
          {"name", t.name},
          {"quotas",
           {{"max_active_activities", t.quotas.max_active_activities},
            {"energy_budget_joules", optional_json(t.quotas.energy_budget_joules)},
            {"max_devices", optional_json(t.quotas.max_devices)},
            {"fair_share_weight", t.quotas.fair_share_weight},
            {"max_priority", t.quotas.max_priority},
            {"max_client_updates", t.quotas.max_client_updates}}},
          {"energy_used_joules", t.energy_used_joules},
          {"created_at", format_rfc3339(t.created_unix_ms)},
          {"updated_at", format_rfc3339(t.updated_unix_ms)}};
}

}  // namespace mufl::tenants
