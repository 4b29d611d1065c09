#pragma once
// FederationRegistry: federations of real clients (docs/clients.md) as tenants and the admin
// manage them: create with a data schema, share with other tenants, rotate the enrollment
// token, delete. Who may do what:
//  - the owner (the tenant that created it) and the admin: everything;
//  - a tenant on its `tenants` list: see its id, name and schema (and submit activities to it);
//  - any other tenant: nothing (404, as for an id that does not exist).
//
// Thread safety: all methods may be called from any thread. Blocking: calls the Store.
#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json_fwd.hpp>

#include "core/clock.h"
#include "core/federation.h"
#include "core/random.h"
#include "core/result.h"
#include "core/tenant.h"
#include "storage/store.h"

namespace mufl::federation {

// Bounds of a data schema. 1×28×28 (mnist) and 3×32×32 (cifar) are well inside.
inline constexpr int64_t kMaxChannels = 16;
inline constexpr int64_t kMinSide = 8, kMaxSide = 512;
inline constexpr int64_t kMaxLabels = 1000;
// How long an enrollment token works: default 7 days, at most 365 days, at least a minute.
inline constexpr int64_t kDefaultEnrollmentTtlSeconds = 7 * 24 * 3600;
inline constexpr int64_t kMinEnrollmentTtlSeconds = 60, kMaxEnrollmentTtlSeconds = 365 * 24 * 3600;

struct FederationWithToken {
  Federation federation;
  std::string enrollment_token;  // the only time the clear token exists outside its owner
};

class FederationRegistry {
 public:
  FederationRegistry(storage::FederationStore& store, const Clock& clock, RandomSource& rng);

  // POST /v1/federations body {"name", "schema": {"channels", "height", "width", "labels"},
  // "tenants": [tenant ids], "enrollment_ttl_seconds"}. The caller owns it (the admin: no
  // owner). kInvalidArgument naming each bad field (an unknown tenant too); kAlreadyExists when
  // the owner has a live federation of that name.
  Result<FederationWithToken> create(const Principal& who, const nlohmann::json& body);
  // The federations `who` may see, oldest first.
  Result<std::vector<Federation>> list(const Principal& who) const;
  // kNotFound when there is none or `who` may not see it.
  Result<Federation> get(const Principal& who, const std::string& id) const;
  // The federation when `who` owns it or is the admin; kPermissionDenied for a listed tenant,
  // kNotFound for anyone else.
  Result<Federation> get_owned(const Principal& who, const std::string& id) const;
  // PATCH body {"name", "tenants"} (each optional); the schema cannot change (its clients'
  // data is what it is): kInvalidArgument. Owner or admin only, as get_owned.
  Result<Federation> update(const Principal& who, const std::string& id, const nlohmann::json& body);
  // A new enrollment token (the old one stops working); body {"enrollment_ttl_seconds"} or
  // empty. Owner or admin only.
  Result<FederationWithToken> rotate_enrollment_token(const Principal& who, const std::string& id,
                                                      const nlohmann::json& body);
  // Deletes it and revokes its clients. Owner or admin only.
  Status remove(const Principal& who, const std::string& id);

 private:
  storage::FederationStore& store_;
  const Clock& clock_;
  RandomSource& rng_;
};

// The whole federation, for its owner and the admin: {"id", "name", "owner", "schema",
// "tenants", "enrollment_expires_at", "created_at", "updated_at"}.
nlohmann::json federation_to_json(const Federation& f);
// What a listed tenant sees: {"id", "name", "schema"}.
nlohmann::json federation_summary_json(const Federation& f);
// {"channels", "height", "width", "labels"}
nlohmann::json schema_to_json(const DataSchema& s);
// Whether `who` owns `f` (the admin owns every federation).
bool owns(const Principal& who, const Federation& f);

}  // namespace mufl::federation
