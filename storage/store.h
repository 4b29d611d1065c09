#pragma once
// Store: every piece of durable state mufl keeps, behind one interface (LevelDB's DB in spirit).
// The SQLite implementation is storage/sqlite_store.h; a server database can implement the same
// interface later. Each mutating call is one transaction: it happens entirely or not at all, and
// once it returns OK it survives a crash of the process (see StoreOptions::synchronous).
//
// Thread safety: all methods may be called from any thread at once.
// Blocking: every method may block on disk I/O; never call from an I/O thread.
#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "core/activity.h"
#include "core/result.h"
#include "core/tenant.h"

namespace mufl::storage {

// Which activities a read may see: all (admin), or one tenant's.
struct Scope {
  std::optional<std::string> tenant_id;  // nullopt: every tenant
  static Scope all() { return {}; }
  static Scope of(std::string tenant) { return Scope{std::move(tenant)}; }
};

struct ActivityQuery {
  Scope scope;
  std::optional<ActivityState> state;  // only activities in this state
  std::optional<int64_t> before_seq;   // only activities created before this one (the cursor)
  int limit = 50;                      // REQUIRES: 1 <= limit <= 1000
};

struct ActivityPage {
  std::vector<Activity> items;       // newest first
  std::optional<int64_t> next_before_seq;  // set when more items follow
};

struct IdempotencyKey {
  std::string key;           // the client's Idempotency-Key header
  std::string request_hash;  // hash of the canonical request body
};

struct SubmitResult {
  Activity activity;
  bool replayed = false;  // true: the key was seen with this body; `activity` is the earlier one
};

class Store {
 public:
  virtual ~Store() = default;

  // OK when the database is open and fully migrated; kUnavailable otherwise.
  virtual Status check_ready() = 0;

  // --- tenants ---------------------------------------------------------------------------------
  // Inserts `tenant` with the hash of its token. kAlreadyExists when a live tenant has the name.
  virtual Result<Tenant> create_tenant(const Tenant& tenant, const std::string& token_hash) = 0;
  // A live tenant by id; kNotFound when there is none or it was deleted.
  virtual Result<Tenant> get_tenant(const std::string& id) = 0;
  // The live tenant whose token hashes to `token_hash`; kNotFound when none.
  virtual Result<Tenant> find_tenant_by_token_hash(const std::string& token_hash) = 0;
  // Live tenants, oldest first.
  virtual Result<std::vector<Tenant>> list_tenants() = 0;
  // Replaces the quotas; kNotFound as get_tenant.
  virtual Result<Tenant> update_tenant_quotas(const std::string& id, const Quotas& quotas, int64_t now_ms) = 0;
  // Deletes the tenant: its token stops working and its active activities become cancelled with
  // reason "tenant deleted". kNotFound as get_tenant.
  virtual Status delete_tenant(const std::string& id, int64_t now_ms) = 0;

  // --- activities ------------------------------------------------------------------------------
  // Inserts `activity` (state queued) for its tenant, in one transaction that also:
  //  - with `idem`: returns the activity stored earlier under the same key (replayed = true) when
  //    the request hash matches; kConflict when the key was used with another body;
  //  - checks the quota: kResourceExhausted when the tenant already has `max_active` active
  //    activities. `activity.seq` is assigned here.
  // kNotFound when the tenant does not exist (or was deleted).
  virtual Result<SubmitResult> submit_activity(const Activity& activity, int64_t max_active,
                                               const std::optional<IdempotencyKey>& idem) = 0;
  // The activity if it exists and `scope` may see it; kNotFound otherwise.
  virtual Result<Activity> get_activity(const std::string& id, const Scope& scope) = 0;
  // A page of activities, newest first.
  virtual Result<ActivityPage> list_activities(const ActivityQuery& query) = 0;
  // Moves a non-terminal activity to cancelled with `reason`; a terminal one is returned as it is.
  // kNotFound as get_activity.
  virtual Result<Activity> cancel_activity(const std::string& id, const Scope& scope, const std::string& reason,
                                           int64_t now_ms) = 0;
  // How many activities are in each state (every state present, zero included).
  virtual Result<std::vector<std::pair<ActivityState, int64_t>>> count_activities_by_state() = 0;
};

}  // namespace mufl::storage
