#pragma once
// Store: every piece of durable state mufl keeps (LevelDB's DB in spirit), as one interface per
// aggregate (TenantStore, ActivityStore, GroupStore, EnergyStore, DeviceStore, EventStore,
// FederationStore, LeaseStore) that Store joins. The SQLite implementation is
// storage/sqlite_store.h; a server database can implement the same interfaces later. Each
// mutating call is one transaction: it happens entirely or not at all, and once it returns OK it
// survives a crash of the process (see StoreOptions::synchronous).
//
// Thread safety: all methods may be called from any thread at once.
// Blocking: every method may block on disk I/O; never call from an I/O thread.
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

#include "core/activity.h"
#include "core/federation.h"
#include "core/group.h"
#include "core/result.h"
#include "core/tenant.h"
#include "storage/lease_store.h"
#include "storage/worker_store.h"

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

// Which rounds of an activity a read returns: a page, oldest first.
struct RoundQuery {
  Scope scope;
  int64_t after_round = 0;  // only rounds after this one (the cursor); 0: from the first
  int limit = 100;          // REQUIRES: 1 <= limit <= 1000
};

struct RoundPage {
  std::vector<RoundRecord> items;          // oldest first
  std::optional<int64_t> next_after_round;  // set when more rounds follow: the next page's after_round
};

// What the grouping planner decided (scheduler/grouping/grouping.h), applied in one transaction.
struct GroupPlan {
  // New groups (id, policy, phase, compat_key, config_json, consolidation_rounds, parent_id
  // empty) with their first members (joined_round 0).
  std::vector<Group> new_groups;
  // Activities that join a live group at its current round: group id → member.
  std::vector<std::pair<std::string, GroupMember>> joins;
};

// One activity's part of a work unit (docs/energy.md, "Ledger and attribution").
struct EnergyShare {
  std::string activity_id;
  std::string tenant_id;
  double share = 0;           // fraction of the unit, in (0, 1]; a unit's shares add up to 1
  double joules = 0;          // share × the unit's joules (likewise the next two)
  double device_seconds = 0;
  double grams_co2e = 0;
  double client_joules = 0;   // share × the unit's client_joules
};

// A work unit: one group round on one device, as its meter measured it.
struct EnergyUnit {
  std::string group_id;
  int64_t round = 0;  // lineage round
  std::string device;
  std::string meter;  // "nvml", "rapl", "model"
  int64_t start_unix_ms = 0, end_unix_ms = 0;
  double seconds = 0;
  double joules = 0;
  double carbon_g_per_kwh = 0;  // grid intensity charged over [start, end)
  double grams_co2e = 0;        // kWh × carbon_g_per_kwh
  std::vector<EnergyShare> shares;
  // A federation round's clients: the joules they metered over their leases and reported, and
  // their meters ("model", "rapl+model", ...; "" when none reported energy). Not in `joules`,
  // which is the server's own, nor in energy budgets, which bound what mufld's devices spend.
  double client_joules = 0;
  std::string client_meters;
  // "" for a recorded round. Else why the round's result was thrown away while its energy was
  // spent: "shutdown" (mufld stopped mid-round; the round runs again after a restart),
  // "cancelled" (every live member was cancelled mid-round) or "failed" (the round failed and
  // so did its group).
  std::string abandoned;
};

// Energy totals of an activity, a tenant or a day.
struct EnergyTotals {
  double joules = 0;
  double device_seconds = 0;
  double grams_co2e = 0;
  int64_t units = 0;  // work units with a share in the total (abandoned ones included)
  int64_t abandoned_units = 0;  // of which abandoned (EnergyUnit::abandoned)
  double client_joules = 0;     // federation clients' own energy (EnergyUnit::client_joules)
};

// A tenant's use on one UTC day (a unit counts on the day it ended).
struct UsageDay {
  std::string day;  // "2026-01-31"
  EnergyTotals totals;
};

// One finished round of a group, recorded with its checkpoint in one transaction.
struct GroupRoundRecord {
  std::string group_id;
  int64_t round = 0;                  // lineage round just finished (1-based): the group's new `round`
  std::vector<GroupHead> heads;       // heads of the checkpointed job
  int64_t job_round_offset = 0;
  StoredFile checkpoint;
  // Per member head that trained this round: the activity's round report (its own round
  // number inside it). Members no longer live (cancelled meanwhile) are skipped, not an error.
  std::vector<std::pair<std::string, std::string>> reports;  // activity id → report JSON
  // Members that reached their rounds this round: activity id → its exported model. They
  // become succeeded and leave the group (left_round = round).
  std::vector<std::pair<std::string, StoredFile>> finished;
  // Client clustering: each finished member's model of every cluster (activity id, cluster
  // number, file), kept as its file "model.c<cluster>" (get_file); its "model" is the largest
  // cluster's. An entry whose activity is not in `finished` is ignored.
  std::vector<std::tuple<std::string, int64_t, StoredFile>> cluster_models;
  // Affinity measured this round (consolidating groups): head keys and matrix JSON; empty: none.
  std::string affinity_json;
  // The round's work unit for the energy ledger, with its shares; nullopt: not metered. Each
  // share's tenant has its energy_used_joules raised by the share's joules.
  std::optional<EnergyUnit> energy;
};

// A group checkpoint the database trusts: the file and the job it holds (see core/group.h).
struct GroupCheckpoint {
  StoredFile file;  // file.round: the lineage round it was written after
  std::vector<GroupHead> heads;
  int64_t job_round_offset = 0;
};

struct AffinityRecord {
  int64_t round = 0;
  std::string affinity_json;  // {"heads": [...], "matrix": [[...]], ...}
};

struct GroupQuery {
  Scope scope;                        // a tenant sees groups with one of its activities in them
  std::optional<GroupPhase> phase;
  std::optional<int64_t> before_seq;  // cursor
  int limit = 50;                     // REQUIRES: 1 <= limit <= 1000
};

struct GroupPage {
  std::vector<Group> items;  // newest first, with members
  std::optional<int64_t> next_before_seq;
};

// A live member of a claimable group, as placement sees it (scheduler/placement/dispatch.h).
struct ClaimableMember {
  std::string activity_id;
  std::string tenant_id;
  int64_t priority = 0;                   // the spec's priority
  std::optional<int64_t> deadline_unix_ms;  // the spec's deadline; nullopt: none
  int64_t rounds_left = 0;                // spec rounds − rounds done (>= 0)
  double tenant_weight = 1;               // the tenant's quotas.fair_share_weight (> 0)
  // Its training keeps state in the service's files between rounds (local_update fedema): the
  // group runs only on devices of this host (placement's HostLocal filter).
  bool keeps_client_state = false;
};

// A group claim_group would accept now.
struct ClaimableGroup {
  std::string id;
  int64_t seq = 0;
  int64_t created_unix_ms = 0;
  int64_t round = 0;  // lineage rounds done
  // The highest priority over `members`: what claim_next_group orders by.
  int64_t priority = 0;
  // Live members whose tenants are within their energy budgets (the members the claim counts).
  std::vector<ClaimableMember> members;
  // The federation whose clients train it ("" for a group on a catalog data set): such a group
  // runs on a federation lane, not on a device (scheduler/executor.h).
  std::string federation;
};

// The device name prefix of federation lanes ("federation:0", ...): a group held by one holds
// no training device, so it does not count against a tenant's max_devices.
inline constexpr const char* kFederationLanePrefix = "federation:";

// A live group without a device, with what in the store stops a claim of it (both false: the
// group is claimable, and only devices or the placement policy keep it waiting).
struct UnclaimedGroup {
  std::string id;
  bool over_budget = false;  // no live member's tenant is within its energy budget
  bool at_max_devices = false;  // a live member's tenant already occupies its max_devices devices
};

// An activity with what GET /v1/activities/{id} shows beside it, read in one snapshot.
struct ActivityDetail {
  Activity activity;
  std::vector<std::string> groups;  // the groups it has been in, oldest first (as activity_groups)
  EnergyTotals energy;              // its shares of the ledger (as activity_energy)
  std::optional<Tenant> tenant;     // its tenant; nullopt once the tenant was deleted
  // Its newest group when that group is live and has no device, as list_unclaimed_groups(id)
  // says (the budget and max_devices checks); nullopt otherwise.
  std::optional<UnclaimedGroup> waiting_group;
};

// One row of the events table (docs/events.md): a change, written in the transaction that made it.
struct StoredEvent {
  int64_t id = 0;                        // strictly increasing across the service
  int64_t time_unix_ms = 0;              // when the change was made
  std::optional<std::string> tenant_id;  // the activity's tenant; nullopt for device events
  std::string activity_id;               // "" for device events
  std::string group_id;                  // "" when the event names no group
  std::string type;                      // "activity.state", "round.finished", "group.merged", …
  std::string data_json;                 // the type's fields: a JSON object without id, type and time
};

struct EventQuery {
  Scope scope;                             // a tenant sees its activities' events and the device events
  int64_t after_id = 0;                    // only events with a larger id
  std::optional<int64_t> until_id;         // only events with an id <= this
  std::optional<std::string> activity_id;  // only this activity's events
  std::vector<std::string> types;          // only these types; empty: every type
  int limit = 500;                         // REQUIRES: 1 <= limit <= 10000
};

// Receives the events each committed transaction wrote, in id order (see set_event_listener).
using EventListener = std::function<void(const std::vector<StoredEvent>&)>;

// Tenants and their tokens (the API's authentication and the admin's tenant routes).
class TenantStore {
 public:
  virtual ~TenantStore() = default;

  // Inserts `tenant` with the hash of its token. kAlreadyExists when a live tenant has the name.
  virtual Result<Tenant> create_tenant(const Tenant& tenant, const std::string& token_hash) = 0;
  // A live tenant by id; kNotFound when there is none or it was deleted.
  virtual Result<Tenant> get_tenant(const std::string& id) = 0;
  // The live tenant whose token hashes to `token_hash`; kNotFound when none.
  virtual Result<Tenant> find_tenant_by_token_hash(const std::string& token_hash) = 0;
  // Live tenants, oldest first.
  virtual Result<std::vector<Tenant>> list_tenants() = 0;
  // Replaces the quotas (all of them: nullopt fields become unlimited); kNotFound as get_tenant.
  virtual Result<Tenant> update_tenant_quotas(const std::string& id, const Quotas& quotas, int64_t now_ms) = 0;
  // Deletes the tenant: its token stops working and its active activities become cancelled with
  // reason "tenant deleted" and leave their groups, as cancel_activity; the federations it owns
  // are deleted as delete_federation does. kNotFound as get_tenant.
  virtual Status delete_tenant(const std::string& id, int64_t now_ms) = 0;
};

// Activities as tenants see them: submission, reads, rounds, files, cancellation.
class ActivityStore {
 public:
  virtual ~ActivityStore() = default;

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
  // The activity (as get_activity) with its groups, energy, tenant and waiting group, all from
  // one read snapshot, so they agree with each other. kNotFound as get_activity.
  virtual Result<ActivityDetail> get_activity_detail(const std::string& id, const Scope& scope) = 0;
  // A page of activities, newest first.
  virtual Result<ActivityPage> list_activities(const ActivityQuery& query) = 0;
  // Moves a non-terminal activity to cancelled with `reason`; a terminal one is returned as it is.
  // A member of a live group leaves it (left_round = the group's round); a group left with no
  // live member while it waits for a device becomes done. kNotFound as get_activity.
  virtual Result<Activity> cancel_activity(const std::string& id, const Scope& scope, const std::string& reason,
                                           int64_t now_ms) = 0;

  // How many activities are in each state (every state present, zero included).
  virtual Result<std::vector<std::pair<ActivityState, int64_t>>> count_activities_by_state() = 0;
};

// Groups and their rounds (the grouping planner and the executor). Every group method fails
// with kNotFound when the group it names does not exist.
class GroupStore {
 public:
  virtual ~GroupStore() = default;

  // At start-up: no group or activity is on a device any more (groups wait to be claimed again
  // and keep their phase; their activities keep their states); activities left training outside
  // any group by a previous process go back to the queue. A waiting live group with no live
  // member becomes done. Returns how many activities went back to the queue.
  virtual Result<int64_t> requeue_interrupted(int64_t now_ms) = 0;
  // A page of the rounds of an activity that query.scope may see, oldest first: at most
  // query.limit rounds after query.after_round. kNotFound as get_activity.
  virtual Result<RoundPage> list_rounds(const std::string& id, const RoundQuery& query) = 0;
  // The activity's checkpoint or model file; nullopt when there is none.
  virtual Result<std::optional<StoredFile>> get_file(const std::string& id, const std::string& kind) = 0;

  // Queued activities that no group holds yet, oldest first (the planner's input).
  virtual Result<std::vector<Activity>> list_ungrouped_queued() = 0;
  // Applies a plan: inserts the new groups and their members and adds the joins, moving each
  // member activity from queued to consolidating (group consolidating) or training, with its
  // group_id. A member whose activity is no longer queued is left out; a new group left with no
  // member is not created; a join to a group that is no longer live, or whose round has passed
  // its consolidation_rounds, is left out. Returns the ids of the groups created or joined.
  // kInvalidArgument (nothing changes) when a new group's phase is not live.
  virtual Result<std::vector<std::string>> apply_group_plan(const GroupPlan& plan, int64_t now_ms) = 0;
  // Claims the next live group without a device for `device`: the group holding the live member
  // with the highest spec priority first, then the oldest group. With `exclusive`, claims only
  // when no group has a device (the sequential policy). nullopt when nothing is claimable. Only
  // groups with a live member are claimed, and of those only groups with a live member whose
  // tenant is within its energy budget (priority is taken over those members), and no live
  // member whose tenant already occupies its max_devices devices. The device is also set on the live members'
  // activities (their progress.device); the group is returned with its members.
  virtual Result<std::optional<Group>> claim_next_group(const std::string& device, bool exclusive, int64_t now_ms) = 0;
  // The groups claim_next_group would consider now, in its order (highest priority, then
  // oldest), each with the members that count. Empty with `exclusive` while a group has a device.
  virtual Result<std::vector<ClaimableGroup>> list_claimable_groups(bool exclusive) = 0;
  // Every live group without a device (or only group `id`: an empty or one-element list), in
  // claim order, with the budget and max_devices checks claim_group makes (UnclaimedGroup).
  // Why the group waits (docs/scheduling.md, "Why a group waits") starts from these.
  virtual Result<std::vector<UnclaimedGroup>> list_unclaimed_groups(const std::optional<std::string>& id) = 0;
  // Claims group `id` for `device` as claim_next_group would (same checks, in one
  // transaction): the group with its members, or nullopt when it is no longer claimable (taken
  // by another device, ended, over budget, its tenants at max_devices, or `exclusive` and a
  // group has a device). kNotFound when there is no such group.
  virtual Result<std::optional<Group>> claim_group(const std::string& id, const std::string& device, bool exclusive,
                                                   int64_t now_ms) = 0;
  // Gives the group's device back (stop, or after a split), on the group and its live members'
  // activities; the group stays as it is otherwise.
  virtual Status release_group(const std::string& id, int64_t now_ms) = 0;
  // Records a finished round (see GroupRoundRecord): the group's round, heads and checkpoint
  // (trusted from now on, with the previous one kept as its fallback; list_group_checkpoints);
  // each reporting live member's next round (its rounds_done + 1) and progress; the finished
  // members' models. kFailedPrecondition when the group is no longer live.
  virtual Status record_group_round(const GroupRoundRecord& record, int64_t now_ms) = 0;
  // Splits live group `parent_id` at its current round: parent → split (device released) with
  // `split_json`; each child (id, phase training, parent_id, policy, compat_key, config_json,
  // round = parent's round, heads, job_round_offset, checkpoint, members with joined_round =
  // that round) is inserted; each live member of the parent leaves it (left_round) and joins
  // its child, its activity moving to training with the child's group_id. A live member of the
  // parent named in no child is an error (kInvalidArgument, nothing changes), as are no children,
  // a child without members, a member that was never in the parent or is in two children, and
  // repeated child ids; kAlreadyExists when a child id is taken. A named member that has left
  // the parent meanwhile (cancelled) is not moved, and a child left with no member is not
  // created. Children are inserted in phase training whatever their `phase`.
  // kFailedPrecondition when the parent is not live.
  virtual Status split_group(const std::string& parent_id, const std::string& split_json,
                             const std::vector<Group>& children, int64_t now_ms) = 0;
  // Moves a live group to consolidating → training in place (a split into one group), storing
  // `split_json`; its consolidating member activities become training. kFailedPrecondition when
  // the group is not consolidating.
  virtual Status end_consolidation(const std::string& id, const std::string& split_json, int64_t now_ms) = 0;
  // Ends a live group: done (no live member left), or failed with `reason`, which also fails
  // every live member activity with that reason (they leave it at its round). Releases its device.
  // kInvalidArgument for another phase; kFailedPrecondition when the group is not live, or
  // when `done` is asked while a member is still live.
  virtual Status finish_group(const std::string& id, GroupPhase phase, const std::string& reason, int64_t now_ms) = 0;
  // A group with its members if `scope` may see it; kNotFound otherwise.
  virtual Result<Group> get_group(const std::string& id, const Scope& scope) = 0;
  virtual Result<GroupPage> list_groups(const GroupQuery& query) = 0;
  // The affinity the group measured, oldest round first. No scope: the caller checks get_group.
  virtual Result<std::vector<AffinityRecord>> list_affinity(const std::string& group_id) = 0;
  // The group's trusted checkpoints, newest first: the one of its current round (what
  // record_group_round, split_group or replace_group_checkpoint stored) and the one before it,
  // when there was one. Older ones are forgotten as new ones are recorded. kNotFound: no group.
  virtual Result<std::vector<GroupCheckpoint>> list_group_checkpoints(const std::string& group_id) = 0;
  // Trusts `checkpoint` instead of the stored checkpoint of the same round (its file was
  // damaged and written again). kFailedPrecondition when the group is not live or
  // `checkpoint.file.round` is not its current round.
  virtual Status replace_group_checkpoint(const std::string& group_id, const GroupCheckpoint& checkpoint,
                                          int64_t now_ms) = 0;
  // The groups an activity has been in, oldest first (ids); kNotFound when there is no such
  // activity. No scope: the caller checks get_activity.
  virtual Result<std::vector<std::string>> activity_groups(const std::string& activity_id) = 0;
  // How many groups are in each phase (every phase present, zero included).
  virtual Result<std::vector<std::pair<GroupPhase, int64_t>>> count_groups_by_phase() = 0;
  // True when every live member of the group belongs to a tenant that has used up its energy
  // budget: the executor lets such a group go at the round boundary. kNotFound: no group.
  virtual Result<bool> group_over_budget(const std::string& group_id) = 0;
};

// The energy ledger (docs/energy.md): work units, their shares, and usage.
class EnergyStore {
 public:
  virtual ~EnergyStore() = default;

  // The activity's shares of every work unit. No scope: the caller checks get_activity. An
  // activity with no share has zero totals.
  virtual Result<EnergyTotals> activity_energy(const std::string& activity_id) = 0;
  // The tenant's shares per UTC day of the units that ended in [from_ms, to_ms), oldest day
  // first; days without use are left out.
  virtual Result<std::vector<UsageDay>> tenant_usage(const std::string& tenant_id, int64_t from_ms,
                                                     int64_t to_ms) = 0;
  // Every tenant's (deleted ones too) totals over the whole ledger: tenant id → totals.
  virtual Result<std::vector<std::pair<std::string, EnergyTotals>>> energy_by_tenant() = 0;
  // The units recorded for a group, abandoned ones too, oldest round first (in the order written
  // within a round), with their shares.
  virtual Result<std::vector<EnergyUnit>> list_energy_units(const std::string& group_id) = 0;
  // Writes a unit whose round was abandoned (`unit.abandoned` says why) with its shares, and adds
  // each share to its tenant's energy_used_joules, in one transaction: the joules were spent,
  // so they are the tenant's. The round may be abandoned again, or recorded later (after a
  // restart), beside it. kInvalidArgument when `abandoned` is not shutdown, cancelled or failed.
  virtual Status record_abandoned_unit(const EnergyUnit& unit) = 0;
};

// What the admin decided about devices, across restarts.
class DeviceStore {
 public:
  virtual ~DeviceStore() = default;

  // Remembers that the admin drained (true) or resumed (false) a device, across restarts.
  virtual Status set_device_drained(const std::string& name, bool drained, int64_t now_ms) = 0;
  // Names of the devices drained now.
  virtual Result<std::vector<std::string>> list_drained_devices() = 0;
};

// The events table (docs/events.md). Every Store method that changes an activity's state,
// records a round, places activities in groups, splits a group or drains/resumes a device also
// writes its events, in its own transaction: a rolled-back change leaves no event.
class EventStore {
 public:
  virtual ~EventStore() = default;

  // The events `query` selects, oldest (smallest id) first, at most query.limit of them.
  virtual Result<std::vector<StoredEvent>> list_events(const EventQuery& query) = 0;
  // Deletes the events older than `before_unix_ms` (retention); returns how many. Ids are never
  // reused.
  virtual Result<int64_t> prune_events(int64_t before_unix_ms) = 0;
  // Installs `listener` (empty: none) and returns the id of the newest event committed before it
  // (0: none), so that the caller knows exactly which events it will be told about: every later
  // one, each once, in id order, right after its transaction commits. The listener runs on the
  // committing thread while the store holds its writer lock: it must be quick and must not
  // call the store. Replaces any earlier listener.
  virtual Result<int64_t> set_event_listener(EventListener listener) = 0;
};

struct ClientQuery {
  std::string federation_id;
  int64_t after_seq = 0;  // only clients enrolled after this one (the cursor); 0: from the first
  int limit = 100;        // REQUIRES: 1 <= limit <= 1000
};

struct ClientPage {
  std::vector<Client> items;              // oldest first, revoked ones too
  std::optional<int64_t> next_after_seq;  // set when more clients follow
};

// Federations of real clients and their enrolled clients (docs/clients.md). A deleted
// federation, like a deleted tenant, keeps its rows for history but is never found again.
class FederationStore {
 public:
  virtual ~FederationStore() = default;

  // Inserts `federation` with the hash of its enrollment token. kAlreadyExists when its owner
  // (or the admin, for an owner of "") has a live federation of that name; kNotFound when the
  // owner or a listed tenant is not a live tenant.
  virtual Result<Federation> create_federation(const Federation& federation, const std::string& enroll_hash) = 0;
  // A live federation by id, if `scope` may see it (its owner, a listed tenant, or all());
  // kNotFound otherwise.
  virtual Result<Federation> get_federation(const std::string& id, const Scope& scope) = 0;
  // The live federations `scope` may see, oldest first.
  virtual Result<std::vector<Federation>> list_federations(const Scope& scope) = 0;
  // Replaces the name and the tenants list of a live federation; kNotFound, kAlreadyExists as
  // create_federation.
  virtual Result<Federation> update_federation(const std::string& id, const std::string& name,
                                               const std::vector<std::string>& tenants, int64_t now_ms) = 0;
  // Replaces the enrollment token (the old one stops working) and its expiry. kNotFound.
  virtual Result<Federation> rotate_enrollment_token(const std::string& id, const std::string& enroll_hash,
                                                     int64_t expires_unix_ms, int64_t now_ms) = 0;
  // Deletes a live federation and revokes every client in it. kNotFound.
  virtual Status delete_federation(const std::string& id, int64_t now_ms) = 0;
  // The live federation whose enrollment token hashes to `enroll_hash`, expired or not (the
  // caller checks the expiry); kNotFound when none.
  virtual Result<Federation> find_federation_by_enrollment(const std::string& enroll_hash) = 0;

  // Enrolls `client` (not revoked) with the hash of its token. kAlreadyExists when an
  // unrevoked client of the federation has its name; kNotFound when the federation is gone.
  virtual Result<Client> enroll_client(const Client& client, const std::string& token_hash) = 0;
  // The unrevoked client of a live federation whose token hashes to `token_hash`; kNotFound.
  virtual Result<Client> find_client_by_token(const std::string& token_hash) = 0;
  // A page of a federation's clients, oldest first. No scope: the caller checks get_federation.
  virtual Result<ClientPage> list_clients(const ClientQuery& query) = 0;
  // Revokes a client of the federation (its token stops working); a revoked one is returned as
  // it is. kNotFound when the federation has no such client.
  virtual Result<Client> revoke_client(const std::string& federation_id, const std::string& client_id,
                                       int64_t now_ms) = 0;
  // Stores when clients were last seen (client id → unix ms); a time older than the stored one
  // and unknown ids are ignored.
  virtual Status touch_clients(const std::vector<std::pair<std::string, int64_t>>& last_seen) = 0;
};

// The whole store: every aggregate's interface, plus readiness. A caller that needs only one
// aggregate takes that interface (a Store& converts to each).
class Store : public TenantStore,
              public ActivityStore,
              public GroupStore,
              public EnergyStore,
              public DeviceStore,
              public EventStore,
              public FederationStore,
              public LeaseStore,
              public WorkerStore {
 public:
  ~Store() override = default;

  // OK when the database is open and fully migrated; kUnavailable otherwise.
  virtual Status check_ready() = 0;

  // get_activity_detail calls answered from memory (hits) and from the database (misses) since
  // the store was opened; both zero for a store without a read cache (mufl_read_cache_requests_total).
  struct ReadCacheStats {
    int64_t hits = 0, misses = 0;
  };
  virtual ReadCacheStats read_cache_stats() const { return {}; }
};

}  // namespace mufl::storage
