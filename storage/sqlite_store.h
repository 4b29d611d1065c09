#pragma once
// SqliteStore: the Store on one SQLite file in WAL mode, with foreign keys on, a busy timeout,
// numbered migrations applied at open, and every mutation in one BEGIN IMMEDIATE transaction.
//
// Concurrency: one writer connection (mutations are serialised by a mutex, as SQLite serialises
// writers anyway) and a small pool of reader connections, which WAL lets run beside the writer.
// Thread safety: as Store — all methods may be called from any thread.
#include <atomic>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "core/clock.h"
#include "storage/detail_cache.h"
#include "storage/store.h"
#include "storage/writer_queue.h"

namespace mufl::storage {

class Connection;

struct StoreOptions {
  // Database file; ":memory:" gives a private in-memory database (tests), served by one connection.
  std::string path = "var/mufl.db";
  // PRAGMA synchronous. "FULL" (default): a commit is on disk before it is acknowledged, so it
  // survives power loss too. "NORMAL": a commit survives a crash of mufld (kill -9) but the last
  // commits may be lost on power loss; faster where fsync is slow.
  std::string synchronous = "FULL";
  // How long a statement waits for a lock held by another connection before kUnavailable.
  int busy_timeout_ms = 5000;
  // Reader connections for concurrent reads. Default 4.
  int readers = 4;
  // Activity details (get_activity_detail) kept between writes (storage/detail_cache.h); about
  // 2 KB each. Default 16384; 0 turns the cache off.
  size_t detail_cache_entries = 16384;
};

class SqliteStore final : public Store {
 public:
  // Opens the database, applies missing migrations and opens the reader pool.
  // kFailedPrecondition when the file was migrated by a newer mufld; kInternal/kUnavailable on
  // SQLite errors (unwritable directory, corrupt file).
  static Result<std::unique_ptr<SqliteStore>> open(const StoreOptions& options, const Clock& clock);
  ~SqliteStore() override;

  // Not ready: the schema is not the latest, or the last write failed for a full disk
  // (kInsufficientStorage, naming it) and a probe write (table readiness_probe) still fails.
  Status check_ready() override;
  Result<Tenant> create_tenant(const Tenant& tenant, const std::string& token_hash) override;
  Result<Tenant> get_tenant(const std::string& id) override;
  Result<Tenant> find_tenant_by_token_hash(const std::string& token_hash) override;
  Result<std::vector<Tenant>> list_tenants() override;
  Result<Tenant> update_tenant_quotas(const std::string& id, const Quotas& quotas, int64_t now_ms) override;
  Status delete_tenant(const std::string& id, int64_t now_ms) override;
  Result<SubmitResult> submit_activity(const Activity& activity, int64_t max_active,
                                       const std::optional<IdempotencyKey>& idem) override;
  Result<Activity> get_activity(const std::string& id, const Scope& scope) override;
  Result<ActivityDetail> get_activity_detail(const std::string& id, const Scope& scope) override;
  Result<ActivityPage> list_activities(const ActivityQuery& query) override;
  Result<Activity> cancel_activity(const std::string& id, const Scope& scope, const std::string& reason,
                                   int64_t now_ms) override;
  Result<int64_t> requeue_interrupted(int64_t now_ms) override;
  Result<RoundPage> list_rounds(const std::string& id, const RoundQuery& query) override;
  Result<std::optional<StoredFile>> get_file(const std::string& id, const std::string& kind) override;
  Result<std::vector<std::pair<ActivityState, int64_t>>> count_activities_by_state() override;
  Result<std::vector<Activity>> list_ungrouped_queued() override;
  Result<std::vector<std::string>> apply_group_plan(const GroupPlan& plan, int64_t now_ms) override;
  Result<std::optional<Group>> claim_next_group(const std::string& device, bool exclusive, int64_t now_ms) override;
  Result<std::vector<ClaimableGroup>> list_claimable_groups(bool exclusive) override;
  Result<std::vector<UnclaimedGroup>> list_unclaimed_groups(const std::optional<std::string>& id) override;
  Result<std::optional<Group>> claim_group(const std::string& id, const std::string& device, bool exclusive,
                                           int64_t now_ms) override;
  Status release_group(const std::string& id, int64_t now_ms) override;
  Status record_group_round(const GroupRoundRecord& record, int64_t now_ms) override;
  Status split_group(const std::string& parent_id, const std::string& split_json, const std::vector<Group>& children,
                     int64_t now_ms) override;
  Status end_consolidation(const std::string& id, const std::string& split_json, int64_t now_ms) override;
  Status finish_group(const std::string& id, GroupPhase phase, const std::string& reason, int64_t now_ms) override;
  Result<Group> get_group(const std::string& id, const Scope& scope) override;
  Result<GroupPage> list_groups(const GroupQuery& query) override;
  Result<std::vector<AffinityRecord>> list_affinity(const std::string& group_id) override;
  Result<std::vector<GroupCheckpoint>> list_group_checkpoints(const std::string& group_id) override;
  Status replace_group_checkpoint(const std::string& group_id, const GroupCheckpoint& checkpoint,
                                  int64_t now_ms) override;
  Result<std::vector<std::string>> activity_groups(const std::string& activity_id) override;
  Result<std::vector<std::pair<GroupPhase, int64_t>>> count_groups_by_phase() override;
  Result<bool> group_over_budget(const std::string& group_id) override;
  Result<EnergyTotals> activity_energy(const std::string& activity_id) override;
  Result<std::vector<UsageDay>> tenant_usage(const std::string& tenant_id, int64_t from_ms, int64_t to_ms) override;
  Result<std::vector<std::pair<std::string, EnergyTotals>>> energy_by_tenant() override;
  Result<std::vector<EnergyUnit>> list_energy_units(const std::string& group_id) override;
  Status record_abandoned_unit(const EnergyUnit& unit) override;
  Status set_device_drained(const std::string& name, bool drained, int64_t now_ms) override;
  Result<std::vector<std::string>> list_drained_devices() override;
  Result<std::vector<StoredEvent>> list_events(const EventQuery& query) override;
  Result<int64_t> prune_events(int64_t before_unix_ms) override;
  Result<int64_t> set_event_listener(EventListener listener) override;
  Result<Federation> create_federation(const Federation& federation, const std::string& enroll_hash) override;
  Result<Federation> get_federation(const std::string& id, const Scope& scope) override;
  Result<std::vector<Federation>> list_federations(const Scope& scope) override;
  Result<Federation> update_federation(const std::string& id, const std::string& name,
                                       const std::vector<std::string>& tenants, int64_t now_ms) override;
  Result<Federation> rotate_enrollment_token(const std::string& id, const std::string& enroll_hash,
                                             int64_t expires_unix_ms, int64_t now_ms) override;
  Status delete_federation(const std::string& id, int64_t now_ms) override;
  Result<Federation> find_federation_by_enrollment(const std::string& enroll_hash) override;
  Result<Client> enroll_client(const Client& client, const std::string& token_hash) override;
  Result<Client> find_client_by_token(const std::string& token_hash) override;
  Result<ClientPage> list_clients(const ClientQuery& query) override;
  Result<Client> revoke_client(const std::string& federation_id, const std::string& client_id,
                               int64_t now_ms) override;
  Status touch_clients(const std::vector<std::pair<std::string, int64_t>>& last_seen) override;
  Status create_leases(const std::vector<Lease>& leases) override;
  Result<Lease> get_lease(const std::string& id) override;
  Result<std::vector<Lease>> list_open_leases() override;
  Result<std::vector<Lease>> list_round_leases(const std::string& group_id, int64_t round, int64_t attempt) override;
  Result<Lease> record_lease_report(const std::string& id, const std::string& report_json,
                                    const std::string& update_path, const std::string& update_sha256,
                                    int64_t now_ms) override;
  Result<int64_t> close_round_leases(const std::string& group_id, int64_t round, int64_t attempt, LeaseState state,
                                     int64_t now_ms) override;
  Status save_worker(const WorkerRecord& worker) override;
  Status delete_worker(const std::string& id) override;
  Result<std::vector<WorkerRecord>> list_workers() override;

  // How many SQL statements the store has started on all its connections since it opened
  // (BEGIN and COMMIT included; the migrations at open not): tests use the difference across a
  // call to bound its queries. Thread-safe; the count is exact once the calls it spans returned.
  int64_t statements_run() const { return statements_run_.load(std::memory_order_relaxed); }

  // The cache of get_activity_detail (hits and misses since open). Thread-safe.
  const DetailCache& detail_cache() const { return *detail_cache_; }
  // Write transactions committed or refused, and the batches they ran in (group commit:
  // storage/writer_queue.h). Thread-safe.
  size_t writes() const { return writers_.writes(); }
  size_t write_batches() const { return writers_.batches(); }
  ReadCacheStats read_cache_stats() const override { return {detail_cache_->hits(), detail_cache_->misses()}; }

 private:
  class ReaderLease;
  SqliteStore() = default;

  // Runs `body` inside BEGIN IMMEDIATE … COMMIT on the writer, possibly in one transaction with
  // other threads' bodies (group commit: storage/writer_queue.h), each in its own savepoint.
  // Returns the body's result once the COMMIT that holds it returned; the body's own failure
  // when it failed (its changes undone); the failure of BEGIN or COMMIT, or of a batch mate that
  // lost the transaction, when nothing of it was committed. When the body throws, its changes
  // are undone and the exception propagates to this caller. The body runs on whichever thread
  // leads the batch, with writer_mu_ held: it must not call the store.
  template <typename Fn>
  auto write_transaction(Fn&& body) -> decltype(body(std::declval<Connection&>()));

  // The batch runner of writers_ (WriterQueue::RunBatch): BEGIN, each body in a savepoint
  // (none for a batch of one), COMMIT, then the cache invalidated and the events published.
  size_t commit_batch(const std::vector<WriterQueue::Writer*>& batch);

  // get_activity_detail's snapshot of five queries, without the cache.
  Result<ActivityDetail> read_activity_detail(const std::string& id, const Scope& scope);

  // After a commit: hands the events with ids above published_id_ to listener_.
  // REQUIRES: writer_mu_ held.
  void publish_committed_events();

  // See statements_run(); counted by every connection, so declared before them (it outlives them).
  std::atomic<int64_t> statements_run_{0};

  // Invalidated by write_transaction after every write; read by get_activity_detail.
  std::unique_ptr<DetailCache> detail_cache_;

  WriterQueue writers_{128};  // at most 128 writes per commit
  std::mutex writer_mu_;
  std::unique_ptr<Connection> writer_;
  EventListener listener_;     // guarded by writer_mu_
  int64_t published_id_ = 0;   // guarded by writer_mu_: the newest event the listener was given
  // The last write failed for a full disk (SQLITE_FULL) and none has succeeded since: its
  // message; empty when writes work. Guarded by writer_mu_. check_ready() reports it.
  std::string storage_full_;

  std::mutex readers_mu_;
  std::condition_variable readers_cv_;
  std::vector<std::unique_ptr<Connection>> idle_readers_;
  bool use_writer_for_reads_ = false;  // ":memory:" has no second connection
};

}  // namespace mufl::storage
