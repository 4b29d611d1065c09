#pragma once
// TenantRegistry: who may call mufl. Creates tenants with their tokens, changes their quotas,
// deletes them, and turns a bearer token into a Principal.
//
// Thread safety: all methods may be called from any thread. Blocking: calls the Store.
#include <cstdint>
#include <mutex>
#include <shared_mutex>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include <nlohmann/json_fwd.hpp>

#include "core/clock.h"
#include "core/random.h"
#include "core/result.h"
#include "core/tenant.h"
#include "storage/store.h"

namespace mufl::tenants {

inline constexpr int64_t kMaxQuotaActivities = 1'000'000;
inline constexpr double kMaxEnergyBudgetJoules = 1e15;  // about 280 GWh
inline constexpr int64_t kMaxQuotaDevices = 4096;
inline constexpr double kMaxFairShareWeight = 1000;
inline constexpr int64_t kMaxQuotaPriority = 1000;                   // as kMaxPriority (activity_spec.h)
inline constexpr int64_t kMaxQuotaClientUpdates = 1'000'000'000'000;  // 10^12

struct CreatedTenant {
  Tenant tenant;
  std::string token;  // the only time the clear token exists outside its owner
};

class TenantRegistry {
 public:
  // `admin_token_hash`: sha256_hex of the operator's token.
  TenantRegistry(storage::TenantStore& store, const Clock& clock, RandomSource& rng, std::string admin_token_hash);

  // The principal a bearer token stands for. kUnauthenticated when the token is empty, unknown
  // or belongs to a deleted tenant; kUnavailable when the store cannot answer. Known tokens are
  // cached (by hash) so that a request costs no database read; remove() drops a tenant's entry
  // before it returns, so a deleted tenant's token stops working at once.
  Result<Principal> authenticate(std::string_view token) const;

  // POST /v1/tenants body {"name", "quotas": {"max_active_activities", "energy_budget_joules",
  // "max_devices", "fair_share_weight"}}: kInvalidArgument naming each bad field;
  // kAlreadyExists when a live tenant has the name. A budget is a number of joules >= 0,
  // max_devices an integer from 0 to kMaxQuotaDevices; null (or absent) is unlimited.
  // fair_share_weight is a number in (0, kMaxFairShareWeight], default 1 (not nullable).
  Result<CreatedTenant> create(const nlohmann::json& body);
  Result<std::vector<Tenant>> list() const;
  // kNotFound when there is no such live tenant.
  Result<Tenant> get(const std::string& id) const;
  // PATCH body {"quotas": {...}}: replaces the quota fields given (null: unlimited).
  // kInvalidArgument, kNotFound.
  Result<Tenant> update(const std::string& id, const nlohmann::json& body);
  // Revokes the token and cancels the tenant's active activities. kNotFound.
  Status remove(const std::string& id);

 private:
  storage::TenantStore& store_;
  const Clock& clock_;
  RandomSource& rng_;
  std::string admin_token_hash_;

  mutable std::shared_mutex cache_mu_;
  mutable std::unordered_map<std::string, std::string> token_cache_;  // token hash → tenant id
  mutable uint64_t cache_generation_ = 0;  // bumped by remove(): a lookup that raced it is not cached
};

// {"id", "name", "quotas": {...}, "energy_used_joules", "created_at", "updated_at"}
nlohmann::json tenant_to_json(const Tenant& t);

}  // namespace mufl::tenants
