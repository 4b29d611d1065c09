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

// A file an activity owns (checkpoint or model), as recorded after the file was made durable.
struct StoredFile {
  int64_t round = 0;  // rounds done when written
  std::string path;
  std::string sha256;  // hex
  int64_t bytes = 0;
};

// One finished round of an activity.
struct RoundRecord {
  int64_t round = 0;        // 1-based
  std::string report_json;  // the round's report (JSON object)
  int64_t created_unix_ms = 0;
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
  // --- training (the executor) ------------------------------------------------------------------
  // Moves the next queued activity to training on `device`, in one
  // transaction: highest spec priority first, then oldest. nullopt when none is waiting.
  virtual Result<std::optional<Activity>> claim_next_queued(const std::string& device, int64_t now_ms) = 0;
  // Records finished round `round.round` of a training activity with its checkpoint, and its
  // progress, in one transaction. kFailedPrecondition when the activity is no longer training
  // (it was cancelled meanwhile): the caller stops.
  virtual Status record_round(const std::string& id, const RoundRecord& round, const StoredFile& checkpoint,
                              int64_t now_ms) = 0;
  // Ends training: `final_state` is succeeded (with `model`) or failed (with `reason`).
  // kFailedPrecondition when the activity is no longer training.
  virtual Status finish_training(const std::string& id, ActivityState final_state, const std::string& reason,
                                 const std::optional<StoredFile>& model, int64_t now_ms) = 0;
  // Puts activities left in training by a previous process back in the queue (at start-up).
  // Returns how many.
  virtual Result<int64_t> requeue_interrupted(int64_t now_ms) = 0;
  // The rounds of an activity the scope may see, oldest first; kNotFound as get_activity.
  virtual Result<std::vector<RoundRecord>> list_rounds(const std::string& id, const Scope& scope) = 0;
  // The activity's checkpoint or model file; nullopt when there is none.
  virtual Result<std::optional<StoredFile>> get_file(const std::string& id, const std::string& kind) = 0;

  // How many activities are in each state (every state present, zero included).
  virtual Result<std::vector<std::pair<ActivityState, int64_t>>> count_activities_by_state() = 0;
};

}  // namespace mufl::storage
