#include "storage/sqlite_store.h"

#include <algorithm>
#include <map>
#include <optional>
#include <set>

#include <nlohmann/json.hpp>

#include "storage/migrations.h"
#include "storage/spec_memo.h"
#include "storage/sqlite_db.h"
#include "storage/sqlite_store_internal.h"
#include "storage/transaction.h"

namespace mufl::storage {
namespace {

using internal::bind_optional;
using internal::one_row;

constexpr const char* kTenantColumns =
    "id, name, max_active_activities, created_ms, updated_ms, energy_budget_joules, max_devices, energy_used_joules, "
    "fair_share_weight, max_priority, max_client_updates";
constexpr const char* kActivityColumns =
    "seq, id, tenant_id, state, state_reason, spec, created_ms, updated_ms, rounds_done, device, started_ms, "
    "finished_ms, last_round, EXISTS(SELECT 1 FROM activity_files f WHERE f.activity_id = activities.id AND "
    "f.kind = 'model')";
constexpr const char* kActiveFilter = "state NOT IN ('succeeded','failed','cancelled')";

Tenant read_tenant(const Statement& st) {
  Tenant t;
  t.id = st.column_text(0);
  t.name = st.column_text(1);
  t.quotas.max_active_activities = st.column_int64(2);
  t.created_unix_ms = st.column_int64(3);
  t.updated_unix_ms = st.column_int64(4);
  if (!st.column_is_null(5)) t.quotas.energy_budget_joules = st.column_double(5);
  if (!st.column_is_null(6)) t.quotas.max_devices = st.column_int64(6);
  t.energy_used_joules = st.column_double(7);
  t.quotas.fair_share_weight = st.column_double(8);
  t.quotas.max_priority = st.column_int64(9);
  t.quotas.max_client_updates = st.column_int64(10);
  return t;
}

Result<Activity> read_activity(const Statement& st) {
  Activity a;
  a.seq = st.column_int64(0);
  a.id = st.column_text(1);
  a.tenant_id = st.column_text(2);
  auto state = parse_activity_state(st.column_text(3));
  if (!state) return Status::internal("activity " + a.id + " has unknown state " + st.column_text(3));
  a.state = *state;
  a.state_reason = st.column_text(4);
  auto spec = parse_stored_spec(st.column_view(5), a.id);
  if (!spec.ok()) return spec.status();
  a.spec = std::move(*spec);
  a.created_unix_ms = st.column_int64(6);
  a.updated_unix_ms = st.column_int64(7);
  a.progress.rounds_done = st.column_int64(8);
  a.progress.device = st.column_text(9);
  a.progress.started_unix_ms = st.column_int64(10);
  a.progress.finished_unix_ms = st.column_int64(11);
  a.progress.last_round_json = st.column_text(12);
  a.progress.has_model = st.column_int64(13) != 0;
  return a;
}

Result<Activity> select_activity(Connection& c, const std::string& id, const Scope& scope) {
  std::string sql = std::string("SELECT ") + kActivityColumns + " FROM activities WHERE id = ?";
  if (scope.tenant_id) sql += " AND tenant_id = ?";
  auto st = c.prepare(sql);
  if (!st.ok()) return st.status();
  (*st)->bind(1, id);
  if (scope.tenant_id) (*st)->bind(2, *scope.tenant_id);
  auto row = (*st)->step();
  if (!row.ok()) return row.status();
  if (!*row) return Status::not_found("no activity " + id);
  return read_activity(**st);
}

// Group helpers used by the activity methods (defined with the group methods below).
Status leave_groups(Connection& c, const std::string& where, const std::string& arg, const std::string& reason);
Status close_emptied_groups(Connection& c, int64_t now_ms);

Result<Tenant> select_live_tenant(Connection& c, const std::string& column, const std::string& value) {
  auto st = c.prepare(std::string("SELECT ") + kTenantColumns + " FROM tenants WHERE " + column +
                      " = ? AND deleted_ms IS NULL");
  if (!st.ok()) return st.status();
  (*st)->bind(1, value);
  return one_row<Tenant>(*st, read_tenant, "no tenant");
}

constexpr const char* kEventColumns = "id, time_ms, tenant_id, activity_id, group_id, type, data";

StoredEvent read_event(const Statement& st) {
  StoredEvent e;
  e.id = st.column_int64(0);
  e.time_unix_ms = st.column_int64(1);
  if (!st.column_is_null(2)) e.tenant_id = st.column_text(2);
  e.activity_id = st.column_text(3);
  e.group_id = st.column_text(4);
  e.type = st.column_text(5);
  e.data_json = st.column_text(6);
  return e;
}

// Writes one event row in the caller's transaction (the activity and round events are written
// by the triggers of migration 6; these are the others).
Status insert_event(Connection& c, int64_t time_ms, const std::optional<std::string>& tenant_id,
                    const std::string& activity_id, const std::string& group_id, const char* type,
                    const nlohmann::json& data) {
  auto st = c.prepare(
      "INSERT INTO events(time_ms, tenant_id, activity_id, group_id, type, data) VALUES(?,?,?,?,?,?)");
  if (!st.ok()) return st.status();
  (*st)->bind(1, time_ms);
  if (tenant_id)
    (*st)->bind(2, *tenant_id);
  else
    (*st)->bind_null(2);
  return (*st)->bind(3, activity_id).bind(4, group_id).bind(5, type).bind(6, data.dump()).run();
}

// A tenant's energy budget and use, as a transaction sees them.
struct TenantBudget {
  std::optional<double> budget;  // nullopt: no budget
  double used = 0;
  // The opposite of kWithinBudget: its work pauses.
  bool exhausted() const { return budget && used >= *budget; }
};

// Tenant `id`'s budget; nullopt when there is no such tenant.
Result<std::optional<TenantBudget>> read_budget(Connection& c, const std::string& id) {
  auto st = c.prepare("SELECT energy_budget_joules, energy_used_joules FROM tenants WHERE id = ?");
  if (!st.ok()) return st.status();
  (*st)->bind(1, id);
  auto row = (*st)->step();
  if (!row.ok()) return row.status();
  if (!*row) return std::optional<TenantBudget>();
  TenantBudget b;
  if (!(*st)->column_is_null(0)) b.budget = (*st)->column_double(0);
  b.used = (*st)->column_double(1);
  return std::optional<TenantBudget>(b);
}

// Writes budget.changed (docs/events.md) when tenant `id`'s budget is used up now and was not
// in `before` (read_budget earlier in the transaction), or the other way round: its work
// pauses or may resume.
Status budget_event_if_changed(Connection& c, const std::string& id, const std::optional<TenantBudget>& before,
                               int64_t now_ms) {
  auto after = read_budget(c, id);
  if (!after.ok()) return after.status();
  if (!*after || (*after)->exhausted() == (before && before->exhausted())) return Status::ok();
  const TenantBudget& b = **after;
  return insert_event(c, now_ms, id, "", "", "budget.changed",
                      {{"tenant_id", id},
                       {"state", b.exhausted() ? "exhausted" : "available"},
                       {"energy_used_joules", b.used},
                       {"energy_budget_joules", b.budget ? nlohmann::json(*b.budget) : nlohmann::json()}});
}

}  // namespace

Result<std::unique_ptr<SqliteStore>> SqliteStore::open(const StoreOptions& options, const Clock& clock) {
  std::unique_ptr<SqliteStore> store(new SqliteStore());
  store->detail_cache_ = std::make_unique<DetailCache>(options.detail_cache_entries);
  auto writer = Connection::open(options.path, false, options.synchronous, options.busy_timeout_ms);
  if (!writer.ok()) return writer.status();
  store->writer_ = std::move(*writer);
  if (Status s = migrate(*store->writer_, clock.now_unix_ms()); !s.is_ok()) return s;
  store->writer_->count_statements(&store->statements_run_);
  if (options.path == ":memory:") {
    store->use_writer_for_reads_ = true;
    return store;
  }
  for (int i = 0; i < std::max(1, options.readers); ++i) {
    auto reader = Connection::open(options.path, true, options.synchronous, options.busy_timeout_ms);
    if (!reader.ok()) return reader.status();
    (*reader)->count_statements(&store->statements_run_);
    store->idle_readers_.push_back(std::move(*reader));
  }
  return store;
}

SqliteStore::~SqliteStore() = default;

size_t SqliteStore::commit_batch(const std::vector<WriterQueue::Writer*>& batch) {
  static const std::string kSavepoint = "SAVEPOINT w", kRelease = "RELEASE w", kRollbackTo = "ROLLBACK TO w";
  std::lock_guard lock(writer_mu_);
  // A full disk is remembered for check_ready() until a write succeeds again.
  auto note = [this](const Status& s) {
    if (s.code() == Status::Code::kInsufficientStorage) storage_full_ = s.message();
    return s;
  };
  // Whatever the outcome, cached reads taken before this transaction are no longer trusted.
  struct Invalidate {
    DetailCache& cache;
    ~Invalidate() { cache.invalidate(); }
  } invalidate{*detail_cache_};
  Transaction txn(*writer_);
  if (Status s = txn.begin(Transaction::Mode::kWrite); !s.is_ok()) {
    batch[0]->status = note(s);  // the others stay queued and try BEGIN again
    return 1;
  }
  // Undoes the bodies that succeeded so far: the transaction holding them is gone.
  auto lose = [&](size_t ran, const Status& why) {
    txn.rollback();
    for (size_t i = 0; i < ran; ++i)
      if (batch[i]->status.is_ok()) batch[i]->status = why;
    return ran;
  };
  const bool alone = batch.size() == 1;
  size_t ran = 0;
  for (WriterQueue::Writer* w : batch) {
    if (!alone) {
      if (Status s = writer_->run(kSavepoint); !s.is_ok()) {
        if (ran == 0) w->status = s;  // the leader always gets an outcome
        return lose(std::max<size_t>(ran, 1), note(s));
      }
    }
    w->status = note(WriterQueue::run_body(*w));
    ++ran;
    if (!writer_->in_transaction()) return lose(ran, w->status);  // SQLite rolled it all back (e.g. SQLITE_FULL)
    if (alone) break;
    if (!w->status.is_ok())
      if (Status s = writer_->run(kRollbackTo); !s.is_ok()) return lose(ran, note(s));
    if (Status s = writer_->run(kRelease); !s.is_ok()) return lose(ran, note(s));
  }
  const bool any = std::any_of(batch.begin(), batch.begin() + static_cast<std::ptrdiff_t>(ran),
                               [](const WriterQueue::Writer* w) { return w->status.is_ok(); });
  if (!any) return ran;  // txn rolls back; nothing to commit
  if (Status s = txn.commit(); !s.is_ok()) return lose(ran, note(s));
  detail_cache_->invalidate();  // before the events go out: a reader told of a change must see it
  storage_full_.clear();
  publish_committed_events();
  return ran;
}

Status SqliteStore::check_ready() {
  {
    ReaderLease conn(*this);
    int version = current_schema_version(*conn);
    if (version != latest_schema_version())
      return Status::unavailable("schema version " + std::to_string(version) + ", want " +
                                 std::to_string(latest_schema_version()));
  }
  {
    std::lock_guard lock(writer_mu_);
    if (storage_full_.empty()) return Status::ok();
  }
  // The disk was full at the last write: one tiny write tells whether space is back.
  Status probe = write_transaction([&](Connection& c) -> Status {
    return c.exec(
        "INSERT OR REPLACE INTO readiness_probe(id, checked_ms) VALUES(1, CAST(strftime('%s', 'now') AS INTEGER) * 1000)");
  });
  if (probe.code() == Status::Code::kInsufficientStorage)
    return Status::insufficient_storage("the database's disk is full: " + probe.message());
  return probe;
}

Result<Tenant> SqliteStore::create_tenant(const Tenant& t, const std::string& token_hash) {
  return write_transaction([&](Connection& c) -> Result<Tenant> {
    auto taken = c.prepare("SELECT 1 FROM tenants WHERE name = ? AND deleted_ms IS NULL");
    if (!taken.ok()) return taken.status();
    (*taken)->bind(1, t.name);
    auto row = (*taken)->step();
    if (!row.ok()) return row.status();
    if (*row) return Status::already_exists("a tenant named '" + t.name + "' exists");
    auto ins = c.prepare(
        "INSERT INTO tenants(id, name, token_hash, max_active_activities, created_ms, updated_ms, "
        "energy_budget_joules, max_devices, fair_share_weight, max_priority, max_client_updates) "
        "VALUES(?,?,?,?,?,?,?,?,?,?,?)");
    if (!ins.ok()) return ins.status();
    (*ins)->bind(1, t.id).bind(2, t.name).bind(3, token_hash).bind(4, t.quotas.max_active_activities)
        .bind(5, t.created_unix_ms).bind(6, t.updated_unix_ms);
    bind_optional(**ins, 7, t.quotas.energy_budget_joules);
    bind_optional(**ins, 8, t.quotas.max_devices);
    (*ins)->bind(9, t.quotas.fair_share_weight).bind(10, t.quotas.max_priority).bind(11, t.quotas.max_client_updates);
    if (Status s = (*ins)->run(); !s.is_ok()) return s;
    Tenant out = t;
    out.energy_used_joules = 0;
    return out;
  });
}

Result<Tenant> SqliteStore::get_tenant(const std::string& id) {
  ReaderLease conn(*this);
  auto t = select_live_tenant(*conn, "id", id);
  if (t.status().is_not_found()) return Status::not_found("no tenant " + id);
  return t;
}

Result<Tenant> SqliteStore::find_tenant_by_token_hash(const std::string& token_hash) {
  ReaderLease conn(*this);
  return select_live_tenant(*conn, "token_hash", token_hash);
}

Result<std::vector<Tenant>> SqliteStore::list_tenants() {
  ReaderLease conn(*this);
  auto st = (*conn).prepare(std::string("SELECT ") + kTenantColumns +
                            " FROM tenants WHERE deleted_ms IS NULL ORDER BY created_ms, id");
  if (!st.ok()) return st.status();
  std::vector<Tenant> out;
  for (;;) {
    auto row = (*st)->step();
    if (!row.ok()) return row.status();
    if (!*row) break;
    out.push_back(read_tenant(**st));
  }
  return out;
}

Result<Tenant> SqliteStore::update_tenant_quotas(const std::string& id, const Quotas& quotas, int64_t now_ms) {
  return write_transaction([&](Connection& c) -> Result<Tenant> {
    auto was = read_budget(c, id);
    if (!was.ok()) return was.status();
    auto up = c.prepare(
        "UPDATE tenants SET max_active_activities = ?, updated_ms = ?, energy_budget_joules = ?, max_devices = ?, "
        "fair_share_weight = ?, max_priority = ?, max_client_updates = ? WHERE id = ? AND deleted_ms IS NULL");
    if (!up.ok()) return up.status();
    (*up)->bind(1, quotas.max_active_activities).bind(2, now_ms).bind(5, quotas.fair_share_weight)
        .bind(6, quotas.max_priority).bind(7, quotas.max_client_updates).bind(8, id);
    bind_optional(**up, 3, quotas.energy_budget_joules);
    bind_optional(**up, 4, quotas.max_devices);
    if (Status s = (*up)->run(); !s.is_ok()) return s;
    if (c.changes() == 0) return Status::not_found("no tenant " + id);
    if (Status s = budget_event_if_changed(c, id, *was, now_ms); !s.is_ok()) return s;
    return select_live_tenant(c, "id", id);
  });
}

Status SqliteStore::delete_tenant(const std::string& id, int64_t now_ms) {
  return write_transaction([&](Connection& c) -> Status {
    auto del = c.prepare("UPDATE tenants SET deleted_ms = ?, updated_ms = ? WHERE id = ? AND deleted_ms IS NULL");
    if (!del.ok()) return del.status();
    if (Status s = (*del)->bind(1, now_ms).bind(2, now_ms).bind(3, id).run(); !s.is_ok()) return s;
    if (c.changes() == 0) return Status::not_found("no tenant " + id);
    auto cancel = c.prepare(std::string("UPDATE activities SET state = 'cancelled', state_reason = ?, "
                                        "updated_ms = ? WHERE tenant_id = ? AND ") +
                            kActiveFilter);
    if (!cancel.ok()) return cancel.status();
    if (Status s = (*cancel)->bind(1, "tenant deleted").bind(2, now_ms).bind(3, id).run(); !s.is_ok()) return s;
    // Its cancelled activities leave their groups.
    if (Status s = leave_groups(c, "tenant_id = ?2", id, "cancelled"); !s.is_ok()) return s;
    if (Status s = internal::delete_owned_federations(c, id, now_ms); !s.is_ok()) return s;
    return close_emptied_groups(c, now_ms);
  });
}

Result<SubmitResult> SqliteStore::submit_activity(const Activity& a, int64_t max_active,
                                                  const std::optional<IdempotencyKey>& idem) {
  return write_transaction([&](Connection& c) -> Result<SubmitResult> {
    auto tenant = select_live_tenant(c, "id", a.tenant_id);
    if (!tenant.ok()) return tenant.status();

    if (idem) {
      auto seen = c.prepare("SELECT request_hash, activity_id FROM idempotency_keys WHERE tenant_id = ? AND key = ?");
      if (!seen.ok()) return seen.status();
      (*seen)->bind(1, a.tenant_id).bind(2, idem->key);
      auto row = (*seen)->step();
      if (!row.ok()) return row.status();
      if (*row) {
        if ((*seen)->column_text(0) != idem->request_hash)
          return Status::conflict("Idempotency-Key '" + idem->key +
                                  "' was already used with a different request body");
        std::string earlier = (*seen)->column_text(1);
        auto prior = select_activity(c, earlier, Scope::of(a.tenant_id));
        if (!prior.ok()) return prior.status();
        return SubmitResult{std::move(*prior), true};
      }
    }

    // Kept by triggers (migration 4): O(1) however many activities the tenant has.
    auto count = c.prepare("SELECT active_activities FROM tenants WHERE id = ?");
    if (!count.ok()) return count.status();
    (*count)->bind(1, a.tenant_id);
    auto row = (*count)->step();
    if (!row.ok()) return row.status();
    int64_t active = (*count)->column_int64(0);
    if (active >= max_active)
      return Status::resource_exhausted("tenant has " + std::to_string(active) +
                                        " active activities and its quota max_active_activities is " +
                                        std::to_string(max_active) +
                                        "; wait for one to finish, cancel one, or ask the operator to raise it");

    auto ins = c.prepare(
        "INSERT INTO activities(id, tenant_id, name, state, state_reason, spec, created_ms, updated_ms) "
        "VALUES(?,?,?,?,?,?,?,?) RETURNING seq");
    if (!ins.ok()) return ins.status();
    (*ins)->bind(1, a.id).bind(2, a.tenant_id).bind(3, a.spec.name).bind(4, to_string(a.state))
        .bind(5, a.state_reason).bind(6, spec_to_json(a.spec).dump()).bind(7, a.created_unix_ms)
        .bind(8, a.updated_unix_ms);
    auto inserted = (*ins)->step();
    if (!inserted.ok()) return inserted.status();
    if (!*inserted) return Status::internal("insert returned no seq");
    SubmitResult out{a, false};
    out.activity.seq = (*ins)->column_int64(0);
    if (Status s = (*ins)->run(); !s.is_ok()) return s;  // finish the statement

    if (idem) {
      auto key = c.prepare(
          "INSERT INTO idempotency_keys(tenant_id, key, request_hash, activity_id, created_ms) VALUES(?,?,?,?,?)");
      if (!key.ok()) return key.status();
      if (Status s = (*key)->bind(1, a.tenant_id).bind(2, idem->key).bind(3, idem->request_hash).bind(4, a.id)
                         .bind(5, a.created_unix_ms).run();
          !s.is_ok())
        return s;
    }
    return out;
  });
}

Result<Activity> SqliteStore::get_activity(const std::string& id, const Scope& scope) {
  ReaderLease conn(*this);
  return select_activity(*conn, id, scope);
}

Result<ActivityPage> SqliteStore::list_activities(const ActivityQuery& q) {
  std::string sql = std::string("SELECT ") + kActivityColumns + " FROM activities WHERE 1";
  if (q.scope.tenant_id) sql += " AND tenant_id = ?1";
  if (q.state) sql += " AND state = ?2";
  if (q.before_seq) sql += " AND seq < ?3";
  sql += " ORDER BY seq DESC LIMIT ?4";
  ReaderLease conn(*this);
  auto st = (*conn).prepare(sql);
  if (!st.ok()) return st.status();
  if (q.scope.tenant_id) (*st)->bind(1, *q.scope.tenant_id);
  if (q.state) (*st)->bind(2, to_string(*q.state));
  if (q.before_seq) (*st)->bind(3, *q.before_seq);
  (*st)->bind(4, int64_t{q.limit} + 1);  // one more tells whether a next page exists
  ActivityPage page;
  for (;;) {
    auto row = (*st)->step();
    if (!row.ok()) return row.status();
    if (!*row) break;
    if (static_cast<int>(page.items.size()) == q.limit) {
      page.next_before_seq = page.items.back().seq;
      break;
    }
    auto a = read_activity(**st);
    if (!a.ok()) return a.status();
    page.items.push_back(std::move(*a));
  }
  return page;
}

Result<Activity> SqliteStore::cancel_activity(const std::string& id, const Scope& scope, const std::string& reason,
                                              int64_t now_ms) {
  return write_transaction([&](Connection& c) -> Result<Activity> {
    auto a = select_activity(c, id, scope);
    if (!a.ok() || is_terminal(a->state)) return a;
    auto up = c.prepare(
        "UPDATE activities SET state = 'cancelled', state_reason = ?, updated_ms = ?, device = '', "
        "finished_ms = CASE WHEN started_ms > 0 THEN ?2 ELSE 0 END WHERE id = ?");
    if (!up.ok()) return up.status();
    if (Status s = (*up)->bind(1, reason).bind(2, now_ms).bind(3, id).run(); !s.is_ok()) return s;
    // It leaves its group at the group's round; a waiting group it leaves empty is done.
    if (Status s = leave_groups(c, "activity_id = ?2", id, "cancelled"); !s.is_ok()) return s;
    if (Status s = close_emptied_groups(c, now_ms); !s.is_ok()) return s;
    a->state = ActivityState::kCancelled;
    a->state_reason = reason;
    a->updated_unix_ms = now_ms;
    a->progress.device.clear();
    if (a->progress.started_unix_ms > 0) a->progress.finished_unix_ms = now_ms;
    return a;
  });
}

namespace {

Status upsert_file(Connection& c, const std::string& id, const char* kind, const StoredFile& f, int64_t now_ms) {
  auto st = c.prepare(
      "INSERT INTO activity_files(activity_id, kind, round, path, sha256, bytes, created_ms) VALUES(?,?,?,?,?,?,?) "
      "ON CONFLICT(activity_id, kind) DO UPDATE SET round = excluded.round, path = excluded.path, "
      "sha256 = excluded.sha256, bytes = excluded.bytes, created_ms = excluded.created_ms");
  if (!st.ok()) return st.status();
  return (*st)->bind(1, id).bind(2, kind).bind(3, f.round).bind(4, f.path).bind(5, f.sha256).bind(6, f.bytes)
      .bind(7, now_ms).run();
}

}  // namespace

Result<int64_t> SqliteStore::requeue_interrupted(int64_t now_ms) {
  return write_transaction([&](Connection& c) -> Result<int64_t> {
    // No group runs anywhere after a restart: every group waits to be claimed again and resumes
    // from its last checkpoint; its member activities keep their states.
    auto groups = c.prepare("UPDATE groups SET device = '', updated_ms = ? WHERE device != ''");
    if (!groups.ok()) return groups.status();
    if (Status s = (*groups)->bind(1, now_ms).run(); !s.is_ok()) return s;
    auto devices = c.prepare("UPDATE activities SET device = '', updated_ms = ? WHERE device != ''");
    if (!devices.ok()) return devices.status();
    if (Status s = (*devices)->bind(1, now_ms).run(); !s.is_ok()) return s;
    // Activities running outside any group go back to the queue.
    auto up = c.prepare(
        "UPDATE activities SET state = 'queued', state_reason = 'resumes from its last checkpoint after a restart', "
        "device = '', updated_ms = ? WHERE state IN ('training', 'consolidating', 'splitting') AND group_id = ''");
    if (!up.ok()) return up.status();
    if (Status s = (*up)->bind(1, now_ms).run(); !s.is_ok()) return s;
    const int64_t requeued = c.changes();
    if (Status s = close_emptied_groups(c, now_ms); !s.is_ok()) return s;
    return requeued;
  });
}

Result<RoundPage> SqliteStore::list_rounds(const std::string& id, const RoundQuery& q) {
  ReaderLease conn(*this);
  // One snapshot: the activity's scope check and its rounds agree.
  Transaction txn(*conn);
  if (Status s = txn.begin(Transaction::Mode::kRead); !s.is_ok()) return s;
  auto a = select_activity(*conn, id, q.scope);
  if (!a.ok()) return a.status();
  auto st = (*conn).prepare(
      "SELECT round, report, created_ms FROM activity_rounds WHERE activity_id = ? AND round > ? ORDER BY round "
      "LIMIT ?");
  if (!st.ok()) return st.status();
  (*st)->bind(1, id).bind(2, q.after_round).bind(3, int64_t{q.limit} + 1);  // one more: is there a next page?
  RoundPage page;
  for (;;) {
    auto row = (*st)->step();
    if (!row.ok()) return row.status();
    if (!*row) break;
    if (static_cast<int>(page.items.size()) == q.limit) {
      page.next_after_round = page.items.back().round;
      break;
    }
    page.items.push_back({(*st)->column_int64(0), (*st)->column_text(1), (*st)->column_int64(2)});
  }
  return page;
}

Result<std::optional<StoredFile>> SqliteStore::get_file(const std::string& id, const std::string& kind) {
  ReaderLease conn(*this);
  auto st = (*conn).prepare("SELECT round, path, sha256, bytes FROM activity_files WHERE activity_id = ? AND kind = ?");
  if (!st.ok()) return st.status();
  (*st)->bind(1, id).bind(2, kind);
  auto row = (*st)->step();
  if (!row.ok()) return row.status();
  if (!*row) return std::optional<StoredFile>();
  return std::optional<StoredFile>(
      StoredFile{(*st)->column_int64(0), (*st)->column_text(1), (*st)->column_text(2), (*st)->column_int64(3)});
}

namespace {

// Rows per value of an enum column (`sql` selects value, count), with every value of `all`
// present, zero included; values the parser does not know are left out.
template <typename Enum, size_t N, typename Parse>
Result<std::vector<std::pair<Enum, int64_t>>> count_by(Connection& c, const char* sql, const Enum (&all)[N],
                                                        Parse parse) {
  std::vector<std::pair<Enum, int64_t>> out;
  for (Enum e : all) out.emplace_back(e, 0);
  auto st = c.prepare(sql);
  if (!st.ok()) return st.status();
  for (;;) {
    auto row = (*st)->step();
    if (!row.ok()) return row.status();
    if (!*row) break;
    const auto value = parse((*st)->column_text(0));
    for (auto& [e, n] : out)
      if (value && e == *value) n = (*st)->column_int64(1);
  }
  return out;
}

}  // namespace

Result<std::vector<std::pair<ActivityState, int64_t>>> SqliteStore::count_activities_by_state() {
  ReaderLease conn(*this);
  return count_by(*conn, "SELECT state, count(*) FROM activities GROUP BY state", kAllActivityStates,
                  [](const std::string& s) { return parse_activity_state(s); });
}

// --- groups ----------------------------------------------------------------------------------

namespace {

constexpr const char* kGroupColumns =
    "seq, id, parent_id, phase, policy, compat_key, config, consolidation_rounds, round, heads, job_round_offset, "
    "checkpoint_path, checkpoint_sha256, device, split, reason, created_ms, updated_ms";
constexpr const char* kLivePhases = "('consolidating','training')";
// Tenant `t` has energy budget left (or no budget).
constexpr const char* kWithinBudget =
    "(t.energy_budget_joules IS NULL OR t.energy_used_joules < t.energy_budget_joules)";
// Group `g` has a live member whose tenant already occupies its max_devices devices (a group on
// a device counts for every tenant with a live member in it).
constexpr const char* kTenantAtMaxDevices =
    "EXISTS(SELECT 1 FROM group_members m2 JOIN tenants t2 ON t2.id = m2.tenant_id "
    "  WHERE m2.group_id = g.id AND m2.left_round IS NULL AND t2.max_devices IS NOT NULL AND "
    "  (SELECT count(DISTINCT g3.device) FROM groups g3 JOIN group_members m3 ON m3.group_id = g3.id "
    "    AND m3.left_round IS NULL WHERE g3.device != '' AND g3.device NOT LIKE 'federation:%' "
    "    AND m3.tenant_id = t2.id) >= t2.max_devices)";
// The scope filter on `groups`: a tenant sees a group that has (or had) one of its activities.
constexpr const char* kGroupTenantFilter =
    "EXISTS(SELECT 1 FROM group_members s WHERE s.group_id = groups.id AND s.tenant_id = ?)";

std::string heads_to_json(const std::vector<GroupHead>& heads) {
  nlohmann::json j = nlohmann::json::array();
  for (const GroupHead& h : heads) j.push_back({{"key", h.key}, {"task", h.task}});
  return j.dump();
}

Result<std::vector<GroupHead>> heads_from_json(const std::string& text, const std::string& group_id) {
  auto j = nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded() || !j.is_array()) return Status::internal("group " + group_id + " has corrupt heads");
  std::vector<GroupHead> out;
  try {
    for (const auto& h : j) out.push_back({h.at("key").get<std::string>(), h.at("task").get<std::string>()});
  } catch (const nlohmann::json::exception& e) {
    return Status::internal("group " + group_id + " has corrupt heads: " + e.what());
  }
  return out;
}

// A group row as kGroupColumns selects it, without its members.
Result<Group> read_group(const Statement& st) {
  Group g;
  g.seq = st.column_int64(0);
  g.id = st.column_text(1);
  g.parent_id = st.column_text(2);
  auto phase = parse_group_phase(st.column_text(3));
  if (!phase) return Status::internal("group " + g.id + " has unknown phase " + st.column_text(3));
  g.phase = *phase;
  g.policy = st.column_text(4);
  g.compat_key = st.column_text(5);
  g.config_json = st.column_text(6);
  g.consolidation_rounds = st.column_int64(7);
  g.round = st.column_int64(8);
  auto heads = heads_from_json(st.column_text(9), g.id);
  if (!heads.ok()) return heads.status();
  g.heads = std::move(*heads);
  g.job_round_offset = st.column_int64(10);
  g.checkpoint_path = st.column_text(11);
  g.checkpoint_sha256 = st.column_text(12);
  g.device = st.column_text(13);
  g.split_json = st.column_text(14);
  g.reason = st.column_text(15);
  g.created_unix_ms = st.column_int64(16);
  g.updated_unix_ms = st.column_int64(17);
  return g;
}

constexpr const char* kMemberColumns = "activity_id, tenant_id, task, joined_round, left_round, group_id, left_reason";

// A group_members row as kMemberColumns selects it.
GroupMember read_member(const Statement& st) {
  GroupMember m;
  m.activity_id = st.column_text(0);
  m.tenant_id = st.column_text(1);
  m.task = st.column_text(2);
  m.joined_round = st.column_int64(3);
  if (!st.column_is_null(4)) m.left_round = st.column_int64(4);
  m.left_reason = st.column_text(6);
  return m;
}

// Fills `g.members` (every member it ever had, in join order).
Status load_members(Connection& c, Group& g) {
  auto st = c.prepare(std::string("SELECT ") + kMemberColumns + " FROM group_members WHERE group_id = ? ORDER BY rowid");
  if (!st.ok()) return st.status();
  (*st)->bind(1, g.id);
  g.members.clear();
  for (;;) {
    auto row = (*st)->step();
    if (!row.ok()) return row.status();
    if (!*row) return Status::ok();
    g.members.push_back(read_member(**st));
  }
}

// Fills the members of every group in `groups` (as load_members) with one query, whatever
// their number: the ids go in as one JSON array.
Status load_members(Connection& c, std::vector<Group>& groups) {
  if (groups.empty()) return Status::ok();
  std::map<std::string, Group*> by_id;
  nlohmann::json ids = nlohmann::json::array();
  for (Group& g : groups) {
    g.members.clear();
    by_id[g.id] = &g;
    ids.push_back(g.id);
  }
  auto st = c.prepare(std::string("SELECT ") + kMemberColumns +
                      " FROM group_members WHERE group_id IN (SELECT value FROM json_each(?)) ORDER BY rowid");
  if (!st.ok()) return st.status();
  (*st)->bind(1, ids.dump());
  for (;;) {
    auto row = (*st)->step();
    if (!row.ok()) return row.status();
    if (!*row) return Status::ok();
    by_id.at((*st)->column_text(5))->members.push_back(read_member(**st));
  }
}

// The group with its members if `scope` may see it; kNotFound otherwise.
Result<Group> select_group(Connection& c, const std::string& id, const Scope& scope) {
  Result<Group> g = Status::not_found("no group " + id);
  {
    std::string sql = std::string("SELECT ") + kGroupColumns + " FROM groups WHERE id = ?";
    if (scope.tenant_id) sql += std::string(" AND ") + kGroupTenantFilter;
    auto st = c.prepare(sql);
    if (!st.ok()) return st.status();
    (*st)->bind(1, id);
    if (scope.tenant_id) (*st)->bind(2, *scope.tenant_id);
    auto row = (*st)->step();
    if (!row.ok()) return row.status();
    if (!*row) return Status::not_found("no group " + id);
    g = read_group(**st);
  }
  if (!g.ok()) return g;
  if (Status s = load_members(c, *g); !s.is_ok()) return s;
  return g;
}

struct GroupState {
  GroupPhase phase;
  int64_t round;
  int64_t consolidation_rounds;
};

// The phase and round of group `id`; nullopt when there is none.
Result<std::optional<GroupState>> group_state(Connection& c, const std::string& id) {
  auto st = c.prepare("SELECT phase, round, consolidation_rounds FROM groups WHERE id = ?");
  if (!st.ok()) return st.status();
  (*st)->bind(1, id);
  auto row = (*st)->step();
  if (!row.ok()) return row.status();
  if (!*row) return std::optional<GroupState>();
  auto phase = parse_group_phase((*st)->column_text(0));
  if (!phase) return Status::internal("group " + id + " has unknown phase " + (*st)->column_text(0));
  return std::optional<GroupState>(GroupState{*phase, (*st)->column_int64(1), (*st)->column_int64(2)});
}

// Group `id` when it is live: kNotFound when there is none, kFailedPrecondition when it ended.
Result<GroupState> require_live_group(Connection& c, const std::string& id) {
  auto g = group_state(c, id);
  if (!g.ok()) return g.status();
  if (!*g) return Status::not_found("no group " + id);
  if (!is_live((*g)->phase))
    return Status::failed_precondition("group " + id + " is " + to_string((*g)->phase) + ", no longer live");
  return **g;
}

// The live members' activity ids of group `id`, in join order.
Result<std::vector<std::string>> live_member_ids(Connection& c, const std::string& id) {
  auto st = c.prepare("SELECT activity_id FROM group_members WHERE group_id = ? AND left_round IS NULL ORDER BY rowid");
  if (!st.ok()) return st.status();
  (*st)->bind(1, id);
  std::vector<std::string> out;
  for (;;) {
    auto row = (*st)->step();
    if (!row.ok()) return row.status();
    if (!*row) break;
    out.push_back((*st)->column_text(0));
  }
  return out;
}

// The tenant of activity `id` when it is queued and in no group; nullopt otherwise.
Result<std::optional<std::string>> ungrouped_queued_tenant(Connection& c, const std::string& id) {
  auto st = c.prepare("SELECT tenant_id FROM activities WHERE id = ? AND state = 'queued' AND group_id = ''");
  if (!st.ok()) return st.status();
  (*st)->bind(1, id);
  auto row = (*st)->step();
  if (!row.ok()) return row.status();
  if (!*row) return std::optional<std::string>();
  return std::optional<std::string>((*st)->column_text(0));
}

// The rounds done of activity `id` when it is a live (consolidating or training) member of group
// `group_id`; nullopt otherwise (it was cancelled, or finished, meanwhile).
Result<std::optional<int64_t>> live_member_rounds(Connection& c, const std::string& id, const std::string& group_id) {
  auto st = c.prepare(
      "SELECT rounds_done FROM activities WHERE id = ? AND group_id = ? AND state IN ('consolidating','training')");
  if (!st.ok()) return st.status();
  (*st)->bind(1, id).bind(2, group_id);
  auto row = (*st)->step();
  if (!row.ok()) return row.status();
  if (!*row) return std::optional<int64_t>();
  return std::optional<int64_t>((*st)->column_int64(0));
}

Status insert_member(Connection& c, const std::string& group_id, const std::string& activity_id,
                     const std::string& tenant_id, const std::string& task, int64_t joined_round) {
  auto st = c.prepare(
      "INSERT INTO group_members(group_id, activity_id, tenant_id, task, joined_round) VALUES(?,?,?,?,?)");
  if (!st.ok()) return st.status();
  return (*st)->bind(1, group_id).bind(2, activity_id).bind(3, tenant_id).bind(4, task).bind(5, joined_round).run();
}

// Puts activity `id` into group `group_id` with `state` (consolidating or training), off any device.
Status move_activity(Connection& c, const std::string& id, const std::string& group_id, const char* state,
                     int64_t now_ms) {
  auto st = c.prepare(
      "UPDATE activities SET state = ?, state_reason = '', group_id = ?, device = '', updated_ms = ?3, "
      "started_ms = CASE WHEN started_ms = 0 THEN ?3 ELSE started_ms END WHERE id = ?");
  if (!st.ok()) return st.status();
  return (*st)->bind(1, state).bind(2, group_id).bind(3, now_ms).bind(4, id).run();
}

// Sets `device` on group `id` and on its live members' activities.
Status set_group_device(Connection& c, const std::string& id, const std::string& device, int64_t now_ms) {
  auto g = c.prepare("UPDATE groups SET device = ?, updated_ms = ? WHERE id = ?");
  if (!g.ok()) return g.status();
  if (Status s = (*g)->bind(1, device).bind(2, now_ms).bind(3, id).run(); !s.is_ok()) return s;
  auto a = c.prepare(
      "UPDATE activities SET device = ?, updated_ms = ? WHERE id IN "
      "(SELECT activity_id FROM group_members WHERE group_id = ? AND left_round IS NULL)");
  if (!a.ok()) return a.status();
  return (*a)->bind(1, device).bind(2, now_ms).bind(3, id).run();
}

// Marks `left_round` (the group's round) and `left_reason` on the live membership of each
// activity `where` selects; `where` is a condition on group_members with one parameter (?2).
Status leave_groups(Connection& c, const std::string& where, const std::string& arg, const std::string& reason) {
  auto st = c.prepare(
      "UPDATE group_members SET left_round = (SELECT round FROM groups WHERE groups.id = group_members.group_id), "
      "left_reason = ?1 WHERE left_round IS NULL AND " + where);
  if (!st.ok()) return st.status();
  return (*st)->bind(1, reason).bind(2, arg).run();
}

// A live group that waits (no device) with no live member left would never be claimed again:
// it is done. (A group on a device is ended by its executor.)
Status close_emptied_groups(Connection& c, int64_t now_ms) {
  auto st = c.prepare(
      std::string("UPDATE groups SET phase = 'done', updated_ms = ? WHERE phase IN ") + kLivePhases +
      " AND device = '' AND NOT EXISTS(SELECT 1 FROM group_members m WHERE m.group_id = groups.id AND "
      "m.left_round IS NULL)");
  if (!st.ok()) return st.status();
  return (*st)->bind(1, now_ms).run();
}

// Trusts the checkpoint of `round` and forgets all but the newest two of the group.
Status insert_checkpoint(Connection& c, const std::string& group_id, const GroupCheckpoint& cp, int64_t now_ms) {
  auto ins = c.prepare(
      "INSERT OR REPLACE INTO group_checkpoints(group_id, round, path, sha256, bytes, heads, job_round_offset, "
      "created_ms) VALUES(?,?,?,?,?,?,?,?)");
  if (!ins.ok()) return ins.status();
  if (Status s = (*ins)->bind(1, group_id).bind(2, cp.file.round).bind(3, cp.file.path).bind(4, cp.file.sha256)
                     .bind(5, cp.file.bytes).bind(6, heads_to_json(cp.heads)).bind(7, cp.job_round_offset)
                     .bind(8, now_ms).run();
      !s.is_ok())
    return s;
  auto prune = c.prepare(
      "DELETE FROM group_checkpoints WHERE group_id = ?1 AND round NOT IN "
      "(SELECT round FROM group_checkpoints WHERE group_id = ?1 ORDER BY round DESC LIMIT 2)");
  if (!prune.ok()) return prune.status();
  return (*prune)->bind(1, group_id).run();
}

Status insert_group(Connection& c, const Group& g, GroupPhase phase, int64_t round, int64_t now_ms) {
  auto st = c.prepare(
      "INSERT INTO groups(id, parent_id, phase, policy, compat_key, config, consolidation_rounds, round, heads, "
      "job_round_offset, checkpoint_path, checkpoint_sha256, device, split, reason, created_ms, updated_ms) "
      "VALUES(?,?,?,?,?,?,?,?,?,?,?,?,'','','',?,?)");
  if (!st.ok()) return st.status();
  Status s = (*st)->bind(1, g.id).bind(2, g.parent_id).bind(3, to_string(phase)).bind(4, g.policy).bind(5, g.compat_key)
      .bind(6, g.config_json).bind(7, g.consolidation_rounds).bind(8, round).bind(9, heads_to_json(g.heads))
      .bind(10, g.job_round_offset).bind(11, g.checkpoint_path).bind(12, g.checkpoint_sha256).bind(13, now_ms)
      .bind(14, now_ms).run();
  if (!s.is_ok() || g.checkpoint_path.empty()) return s;
  // bytes 0: a child's size is not known here (the sha256 is what the resume checks).
  const GroupCheckpoint cp{{round, g.checkpoint_path, g.checkpoint_sha256, 0}, g.heads, g.job_round_offset};
  return insert_checkpoint(c, g.id, cp, now_ms);
}

// Writes a work unit and its shares, and adds each share to its tenant's energy_used_joules.
// A recorded (not abandoned) unit already there for the group's round is kept as it is.
Status insert_energy_unit(Connection& c, const EnergyUnit& u) {
  auto ins = c.prepare(
      "INSERT OR IGNORE INTO energy_ledger(group_id, round, device, meter, start_ms, end_ms, seconds, joules, "
      "carbon_g_per_kwh, grams_co2e, abandoned, client_joules, client_meters) VALUES(?,?,?,?,?,?,?,?,?,?,?,?,?)");
  if (!ins.ok()) return ins.status();
  (*ins)->bind(1, u.group_id).bind(2, u.round).bind(3, u.device).bind(4, u.meter).bind(5, u.start_unix_ms)
      .bind(6, u.end_unix_ms).bind(7, u.seconds).bind(8, u.joules).bind(9, u.carbon_g_per_kwh).bind(10, u.grams_co2e);
  if (u.abandoned.empty())
    (*ins)->bind_null(11);
  else
    (*ins)->bind(11, u.abandoned);
  (*ins)->bind(12, u.client_joules).bind(13, u.client_meters);
  if (Status s = (*ins)->run(); !s.is_ok()) return s;
  if (c.changes() == 0) return Status::ok();
  int64_t unit_id = 0;
  {
    auto id = c.prepare("SELECT last_insert_rowid()");
    if (!id.ok()) return id.status();
    auto row = (*id)->step();
    if (!row.ok()) return row.status();
    if (!*row) return Status::internal("the energy unit just written has no id");
    unit_id = (*id)->column_int64(0);
  }
  for (const EnergyShare& sh : u.shares) {
    auto a = c.prepare(
        "INSERT INTO energy_attribution(unit_id, activity_id, tenant_id, share, joules, device_seconds, grams_co2e, "
        "end_ms, client_joules) VALUES(?,?,?,?,?,?,?,?,?)");
    if (!a.ok()) return a.status();
    if (Status s = (*a)->bind(1, unit_id).bind(2, sh.activity_id).bind(3, sh.tenant_id).bind(4, sh.share)
                       .bind(5, sh.joules).bind(6, sh.device_seconds).bind(7, sh.grams_co2e).bind(8, u.end_unix_ms)
                       .bind(9, sh.client_joules)
                       .run();
        !s.is_ok())
      return s;
    auto was = read_budget(c, sh.tenant_id);
    if (!was.ok()) return was.status();
    auto t = c.prepare("UPDATE tenants SET energy_used_joules = energy_used_joules + ? WHERE id = ?");
    if (!t.ok()) return t.status();
    if (Status s = (*t)->bind(1, sh.joules).bind(2, sh.tenant_id).run(); !s.is_ok()) return s;
    if (Status s = budget_event_if_changed(c, sh.tenant_id, *was, u.end_unix_ms); !s.is_ok()) return s;
  }
  return Status::ok();
}

// Columns first.. first+5: joules, device seconds, grams, units, abandoned units, client
// joules (kTotals).
EnergyTotals read_totals(const Statement& st, int first) {
  return {st.column_double(first),    st.column_double(first + 1), st.column_double(first + 2),
          st.column_int64(first + 3), st.column_int64(first + 4),  st.column_double(first + 5)};
}

// The totals of a set of attribution rows `a`, joined with their units `l`.
constexpr const char* kTotals =
    "coalesce(sum(a.joules), 0.0), coalesce(sum(a.device_seconds), 0.0), coalesce(sum(a.grams_co2e), 0.0), "
    "count(*), coalesce(sum(l.abandoned IS NOT NULL), 0), coalesce(sum(a.client_joules), 0.0) "
    "FROM energy_attribution a "
    "JOIN energy_ledger l ON l.id = a.unit_id ";

const char* member_state(GroupPhase phase) {
  return phase == GroupPhase::kConsolidating ? "consolidating" : "training";
}

}  // namespace

Result<std::vector<Activity>> SqliteStore::list_ungrouped_queued() {
  ReaderLease conn(*this);
  auto st = (*conn).prepare(std::string("SELECT ") + kActivityColumns +
                            " FROM activities WHERE state = 'queued' AND group_id = '' ORDER BY seq ASC");
  if (!st.ok()) return st.status();
  std::vector<Activity> out;
  for (;;) {
    auto row = (*st)->step();
    if (!row.ok()) return row.status();
    if (!*row) break;
    auto a = read_activity(**st);
    if (!a.ok()) return a.status();
    out.push_back(std::move(*a));
  }
  return out;
}

Result<std::vector<std::string>> SqliteStore::apply_group_plan(const GroupPlan& plan, int64_t now_ms) {
  for (const Group& g : plan.new_groups)
    if (!is_live(g.phase))
      return Status::invalid_argument("new group " + g.id + " must start consolidating or training, not " +
                                      to_string(g.phase));
  return write_transaction([&](Connection& c) -> Result<std::vector<std::string>> {
    std::vector<std::string> touched;
    for (const Group& g : plan.new_groups) {
      bool created = false;
      for (const GroupMember& m : g.members) {
        auto tenant = ungrouped_queued_tenant(c, m.activity_id);
        if (!tenant.ok()) return tenant.status();
        if (!*tenant) continue;  // cancelled, or taken by an earlier group of the plan
        if (!created) {
          Group fresh = g;
          fresh.parent_id.clear();
          fresh.heads.clear();
          fresh.job_round_offset = 0;
          fresh.checkpoint_path.clear();
          fresh.checkpoint_sha256.clear();
          if (Status s = insert_group(c, fresh, g.phase, 0, now_ms); !s.is_ok()) return s;
          created = true;
        }
        if (Status s = insert_member(c, g.id, m.activity_id, **tenant, m.task, 0); !s.is_ok()) return s;
        if (Status s = insert_event(c, now_ms, **tenant, m.activity_id, g.id, "group.merged",
                                    {{"group_id", g.id}, {"activity_id", m.activity_id}, {"phase", to_string(g.phase)}});
            !s.is_ok())
          return s;
        if (Status s = move_activity(c, m.activity_id, g.id, member_state(g.phase), now_ms); !s.is_ok()) return s;
      }
      if (created) touched.push_back(g.id);
    }
    for (const auto& [group_id, m] : plan.joins) {
      auto g = group_state(c, group_id);
      if (!g.ok()) return g.status();
      if (!*g || !is_live((*g)->phase) || (*g)->round >= (*g)->consolidation_rounds) continue;
      auto tenant = ungrouped_queued_tenant(c, m.activity_id);
      if (!tenant.ok()) return tenant.status();
      if (!*tenant) continue;
      if (Status s = insert_member(c, group_id, m.activity_id, **tenant, m.task, (*g)->round); !s.is_ok()) return s;
      if (Status s = insert_event(c, now_ms, **tenant, m.activity_id, group_id, "group.merged",
                                  {{"group_id", group_id}, {"activity_id", m.activity_id},
                                   {"phase", to_string((*g)->phase)}});
          !s.is_ok())
        return s;
      if (Status s = move_activity(c, m.activity_id, group_id, member_state((*g)->phase), now_ms); !s.is_ok())
        return s;
      if (std::find(touched.begin(), touched.end(), group_id) == touched.end()) touched.push_back(group_id);
    }
    return touched;
  });
}

namespace {

// The groups a device may claim: live, without a device, with a live member of a tenant within
// its energy budget (members of tenants over budget do not count: a group of such members only
// is not claimed), and no live member whose tenant already occupies its max_devices devices.
// `and_id` adds "AND g.id = ?" (bound to parameter 1). Columns: id, seq, created_ms, round.
// Ordered as a claim takes them: the highest priority over the counting members, then oldest.
std::string claimable_sql(bool and_id) {
  return std::string(
             "SELECT g.id, g.seq, g.created_ms, g.round, coalesce(json_extract(g.config, '$.federation'), '') "
             "FROM groups g JOIN group_members m ON m.group_id = g.id "
             "AND m.left_round IS NULL JOIN activities a ON a.id = m.activity_id JOIN tenants t ON t.id = m.tenant_id "
             "WHERE g.phase IN ") +
         kLivePhases + " AND g.device = '' AND " + kWithinBudget + (and_id ? " AND g.id = ?" : "") + " AND NOT " +
         kTenantAtMaxDevices + " GROUP BY g.id ORDER BY max(json_extract(a.spec, '$.priority')) DESC, g.seq ASC";
}

// With `exclusive`: true when some group has a device (nothing may be claimed).
Result<bool> exclusive_busy(Connection& c, bool exclusive) {
  if (!exclusive) return false;
  auto busy = c.prepare("SELECT 1 FROM groups WHERE device != '' LIMIT 1");
  if (!busy.ok()) return busy.status();
  auto row = (*busy)->step();
  if (!row.ok()) return row.status();
  return *row;
}

}  // namespace

Result<std::optional<Group>> SqliteStore::claim_next_group(const std::string& device, bool exclusive, int64_t now_ms) {
  return write_transaction([&](Connection& c) -> Result<std::optional<Group>> {
    auto busy = exclusive_busy(c, exclusive);
    if (!busy.ok()) return busy.status();
    if (*busy) return std::optional<Group>();
    std::string id;
    {
      auto next = c.prepare(claimable_sql(false) + " LIMIT 1");
      if (!next.ok()) return next.status();
      auto row = (*next)->step();
      if (!row.ok()) return row.status();
      if (!*row) return std::optional<Group>();
      id = (*next)->column_text(0);
    }
    if (Status s = set_group_device(c, id, device, now_ms); !s.is_ok()) return s;
    auto g = select_group(c, id, Scope::all());
    if (!g.ok()) return g.status();
    return std::optional<Group>(std::move(*g));
  });
}

Result<std::vector<ClaimableGroup>> SqliteStore::list_claimable_groups(bool exclusive) {
  ReaderLease conn(*this);
  std::vector<ClaimableGroup> out;
  auto busy = exclusive_busy(*conn, exclusive);
  if (!busy.ok()) return busy.status();
  if (*busy) return out;
  {
    auto st = (*conn).prepare(claimable_sql(false));
    if (!st.ok()) return st.status();
    for (;;) {
      auto row = (*st)->step();
      if (!row.ok()) return row.status();
      if (!*row) break;
      ClaimableGroup g;
      g.id = (*st)->column_text(0);
      g.seq = (*st)->column_int64(1);
      g.created_unix_ms = (*st)->column_int64(2);
      g.round = (*st)->column_int64(3);
      g.federation = (*st)->column_text(4);
      out.push_back(std::move(g));
    }
  }
  auto members = (*conn).prepare(
      std::string("SELECT m.activity_id, m.tenant_id, a.spec, a.rounds_done, t.fair_share_weight "
                  "FROM group_members m JOIN activities a ON a.id = m.activity_id JOIN tenants t ON t.id = m.tenant_id "
                  "WHERE m.group_id = ? AND m.left_round IS NULL AND ") +
      kWithinBudget + " ORDER BY m.rowid");
  if (!members.ok()) return members.status();
  for (ClaimableGroup& g : out) {
    (*members)->reset();
    (*members)->bind(1, g.id);
    bool first = true;
    for (;;) {
      auto row = (*members)->step();
      if (!row.ok()) return row.status();
      if (!*row) break;
      ClaimableMember m;
      m.activity_id = (*members)->column_text(0);
      m.tenant_id = (*members)->column_text(1);
      auto parsed = parse_stored_spec((*members)->column_view(2), m.activity_id);
      if (!parsed.ok()) return parsed.status();
      const ActivitySpec& spec = *parsed;
      m.priority = spec.priority;
      m.deadline_unix_ms = spec.deadline_unix_ms;
      m.rounds_left = std::max<int64_t>(0, spec.rounds - (*members)->column_int64(3));
      m.tenant_weight = (*members)->column_double(4);
      // FedEMA keeps each client's model in mufld's files. (Client clustering's models are in
      // the checkpoint, which a cluster worker gets and gives back.)
      m.keeps_client_state = spec.local_update != "fedavg";
      g.priority = first ? m.priority : std::max(g.priority, m.priority);
      first = false;
      g.members.push_back(std::move(m));
    }
  }
  return out;
}

namespace {

// list_unclaimed_groups on `c`.
Result<std::vector<UnclaimedGroup>> select_unclaimed_groups(Connection& c, const std::optional<std::string>& id) {
  // The same budget and max_devices conditions as claimable_sql, as columns instead of filters.
  auto st = c.prepare(
      std::string("SELECT g.id, "
                  "NOT EXISTS(SELECT 1 FROM group_members m JOIN tenants t ON t.id = m.tenant_id "
                  "  WHERE m.group_id = g.id AND m.left_round IS NULL AND ") +
      kWithinBudget + "), " + kTenantAtMaxDevices + " FROM groups g WHERE g.phase IN " +
      kLivePhases +
      " AND g.device = '' AND EXISTS(SELECT 1 FROM group_members l WHERE l.group_id = g.id AND l.left_round IS NULL)" +
      (id ? " AND g.id = ?" : "") + " ORDER BY g.seq");
  if (!st.ok()) return st.status();
  if (id) (*st)->bind(1, *id);
  std::vector<UnclaimedGroup> out;
  for (;;) {
    auto row = (*st)->step();
    if (!row.ok()) return row.status();
    if (!*row) break;
    out.push_back({(*st)->column_text(0), (*st)->column_int64(1) != 0, (*st)->column_int64(2) != 0});
  }
  return out;
}

}  // namespace

Result<std::vector<UnclaimedGroup>> SqliteStore::list_unclaimed_groups(const std::optional<std::string>& id) {
  ReaderLease conn(*this);
  return select_unclaimed_groups(*conn, id);
}

Result<std::optional<Group>> SqliteStore::claim_group(const std::string& id, const std::string& device, bool exclusive,
                                                      int64_t now_ms) {
  return write_transaction([&](Connection& c) -> Result<std::optional<Group>> {
    auto exists = group_state(c, id);
    if (!exists.ok()) return exists.status();
    if (!*exists) return Status::not_found("no group " + id);
    auto busy = exclusive_busy(c, exclusive);
    if (!busy.ok()) return busy.status();
    if (*busy) return std::optional<Group>();
    {
      auto st = c.prepare(claimable_sql(true));
      if (!st.ok()) return st.status();
      (*st)->bind(1, id);
      auto row = (*st)->step();
      if (!row.ok()) return row.status();
      if (!*row) return std::optional<Group>();
    }
    if (Status s = set_group_device(c, id, device, now_ms); !s.is_ok()) return s;
    auto g = select_group(c, id, Scope::all());
    if (!g.ok()) return g.status();
    return std::optional<Group>(std::move(*g));
  });
}

Status SqliteStore::release_group(const std::string& id, int64_t now_ms) {
  return write_transaction([&](Connection& c) -> Status {
    auto g = group_state(c, id);
    if (!g.ok()) return g.status();
    if (!*g) return Status::not_found("no group " + id);
    return set_group_device(c, id, "", now_ms);
  });
}

Status SqliteStore::record_group_round(const GroupRoundRecord& r, int64_t now_ms) {
  return write_transaction([&](Connection& c) -> Status {
    auto g = require_live_group(c, r.group_id);
    if (!g.ok()) return g.status();
    auto up = c.prepare(
        "UPDATE groups SET round = ?, heads = ?, job_round_offset = ?, checkpoint_path = ?, checkpoint_sha256 = ?, "
        "updated_ms = ? WHERE id = ?");
    if (!up.ok()) return up.status();
    if (Status s = (*up)->bind(1, r.round).bind(2, heads_to_json(r.heads)).bind(3, r.job_round_offset)
                       .bind(4, r.checkpoint.path).bind(5, r.checkpoint.sha256).bind(6, now_ms).bind(7, r.group_id)
                       .run();
        !s.is_ok())
      return s;
    const GroupCheckpoint cp{r.checkpoint, r.heads, r.job_round_offset};
    if (Status s = insert_checkpoint(c, r.group_id, cp, now_ms); !s.is_ok()) return s;
    if (!r.affinity_json.empty()) {
      // OR REPLACE: a round redone after a crash between its checkpoint and this transaction.
      auto aff = c.prepare("INSERT OR REPLACE INTO group_affinity(group_id, round, affinity) VALUES(?,?,?)");
      if (!aff.ok()) return aff.status();
      if (Status s = (*aff)->bind(1, r.group_id).bind(2, r.round).bind(3, r.affinity_json).run(); !s.is_ok())
        return s;
    }
    for (const auto& [activity_id, report] : r.reports) {
      auto done = live_member_rounds(c, activity_id, r.group_id);
      if (!done.ok()) return done.status();
      if (!*done) continue;  // cancelled meanwhile
      const int64_t n = **done + 1;
      auto ins = c.prepare(
          "INSERT OR REPLACE INTO activity_rounds(activity_id, round, report, created_ms) VALUES(?,?,?,?)");
      if (!ins.ok()) return ins.status();
      if (Status s = (*ins)->bind(1, activity_id).bind(2, n).bind(3, report).bind(4, now_ms).run(); !s.is_ok())
        return s;
      auto prog = c.prepare("UPDATE activities SET rounds_done = ?, last_round = ?, updated_ms = ? WHERE id = ?");
      if (!prog.ok()) return prog.status();
      if (Status s = (*prog)->bind(1, n).bind(2, report).bind(3, now_ms).bind(4, activity_id).run(); !s.is_ok())
        return s;
    }
    if (r.energy) {
      if (Status s = insert_energy_unit(c, *r.energy); !s.is_ok()) return s;
    }
    for (const auto& [activity_id, model] : r.finished) {
      auto live = live_member_rounds(c, activity_id, r.group_id);
      if (!live.ok()) return live.status();
      if (!*live) continue;
      if (Status s = upsert_file(c, activity_id, "model", model, now_ms); !s.is_ok()) return s;
      for (const auto& [owner, cluster, file] : r.cluster_models) {
        if (owner != activity_id) continue;
        const std::string kind = "model.c" + std::to_string(cluster);
        if (Status s = upsert_file(c, activity_id, kind.c_str(), file, now_ms); !s.is_ok()) return s;
      }
      auto fin = c.prepare(
          "UPDATE activities SET state = 'succeeded', state_reason = '', device = '', finished_ms = ?, "
          "updated_ms = ? WHERE id = ?");
      if (!fin.ok()) return fin.status();
      if (Status s = (*fin)->bind(1, now_ms).bind(2, now_ms).bind(3, activity_id).run(); !s.is_ok()) return s;
      auto leave = c.prepare(
          "UPDATE group_members SET left_round = ?, left_reason = 'finished' WHERE group_id = ? AND activity_id = ? "
          "AND left_round IS NULL");
      if (!leave.ok()) return leave.status();
      if (Status s = (*leave)->bind(1, r.round).bind(2, r.group_id).bind(3, activity_id).run(); !s.is_ok()) return s;
    }
    return Status::ok();
  });
}

Status SqliteStore::split_group(const std::string& parent_id, const std::string& split_json,
                                const std::vector<Group>& children, int64_t now_ms) {
  return write_transaction([&](Connection& c) -> Status {
    auto parent = select_group(c, parent_id, Scope::all());
    if (!parent.ok()) return parent.status();
    if (!is_live(parent->phase))
      return Status::failed_precondition("group " + parent_id + " is " + to_string(parent->phase) +
                                         ", no longer live");
    // Validate the whole plan before writing anything.
    std::map<std::string, const GroupMember*> live;  // activity id → its membership in the parent
    std::set<std::string> former;                    // members that left it (cancelled meanwhile)
    for (const GroupMember& m : parent->members)
      if (!m.left_round) live.emplace(m.activity_id, &m);
      else former.insert(m.activity_id);
    if (children.empty()) return Status::invalid_argument("a split needs at least one child group");
    std::set<std::string> child_ids, placed;
    for (const Group& child : children) {
      if (child.id.empty() || !child_ids.insert(child.id).second)
        return Status::invalid_argument("child group ids must be distinct and non-empty");
      auto exists = group_state(c, child.id);
      if (!exists.ok()) return exists.status();
      if (*exists) return Status::already_exists("group " + child.id + " exists");
      if (child.members.empty()) return Status::invalid_argument("child group " + child.id + " has no member");
      for (const GroupMember& m : child.members) {
        if (!live.count(m.activity_id) && !former.count(m.activity_id))
          return Status::invalid_argument("child group " + child.id + " names " + m.activity_id +
                                          ", which is not a member of " + parent_id);
        if (!placed.insert(m.activity_id).second)
          return Status::invalid_argument(m.activity_id + " is in more than one child group");
      }
    }
    for (const auto& [activity_id, m] : live)
      if (!placed.count(activity_id))
        return Status::invalid_argument("live member " + activity_id + " of " + parent_id + " is in no child group");

    const int64_t round = parent->round;
    // The split's score, for the group.split events (null when the decision has none).
    // Why its members leave it: the decision's reason ("guard"), else the affinity split.
    nlohmann::json score;
    std::string why = "split";
    if (auto j = nlohmann::json::parse(split_json, nullptr, /*allow_exceptions=*/false); j.is_object()) {
      if (j.contains("score") && j["score"].is_number()) score = j["score"];
      if (j.contains("reason") && j["reason"].is_string()) why = j["reason"].get<std::string>();
    }
    auto up = c.prepare(
        "UPDATE groups SET phase = 'split', split = ?, device = '', updated_ms = ? WHERE id = ?");
    if (!up.ok()) return up.status();
    if (Status s = (*up)->bind(1, split_json).bind(2, now_ms).bind(3, parent_id).run(); !s.is_ok()) return s;
    if (Status s = leave_groups(c, "group_id = ?2", parent_id, why); !s.is_ok()) return s;
    for (const Group& child : children) {
      // A member that left the parent since the caller read it (a cancel) is not moved; a child
      // left with no member is not created.
      if (std::none_of(child.members.begin(), child.members.end(),
                       [&](const GroupMember& m) { return live.count(m.activity_id) > 0; }))
        continue;
      Group row = child;
      row.parent_id = parent_id;
      if (Status s = insert_group(c, row, GroupPhase::kTraining, round, now_ms); !s.is_ok()) return s;
      for (const GroupMember& m : child.members) {
        if (!live.count(m.activity_id)) continue;
        const GroupMember& was = *live.at(m.activity_id);
        if (Status s = insert_member(c, child.id, m.activity_id, was.tenant_id, was.task, round); !s.is_ok())
          return s;
        if (Status s = insert_event(c, now_ms, was.tenant_id, m.activity_id, parent_id, "group.split",
                                    {{"group_id", parent_id}, {"activity_id", m.activity_id}, {"into", child.id},
                                     {"score", score}});
            !s.is_ok())
          return s;
        if (Status s = move_activity(c, m.activity_id, child.id, "training", now_ms); !s.is_ok()) return s;
      }
    }
    return Status::ok();
  });
}

Status SqliteStore::end_consolidation(const std::string& id, const std::string& split_json, int64_t now_ms) {
  return write_transaction([&](Connection& c) -> Status {
    auto g = require_live_group(c, id);
    if (!g.ok()) return g.status();
    if (g->phase != GroupPhase::kConsolidating)
      return Status::failed_precondition("group " + id + " is " + to_string(g->phase) + ", not consolidating");
    auto up = c.prepare("UPDATE groups SET phase = 'training', split = ?, updated_ms = ? WHERE id = ?");
    if (!up.ok()) return up.status();
    if (Status s = (*up)->bind(1, split_json).bind(2, now_ms).bind(3, id).run(); !s.is_ok()) return s;
    auto acts = c.prepare(
        "UPDATE activities SET state = 'training', updated_ms = ? WHERE state = 'consolidating' AND id IN "
        "(SELECT activity_id FROM group_members WHERE group_id = ? AND left_round IS NULL)");
    if (!acts.ok()) return acts.status();
    return (*acts)->bind(1, now_ms).bind(2, id).run();
  });
}

Status SqliteStore::finish_group(const std::string& id, GroupPhase phase, const std::string& reason, int64_t now_ms) {
  if (phase != GroupPhase::kDone && phase != GroupPhase::kFailed)
    return Status::invalid_argument(std::string("a group finishes done or failed, not ") + to_string(phase));
  return write_transaction([&](Connection& c) -> Status {
    auto g = require_live_group(c, id);
    if (!g.ok()) return g.status();
    auto members = live_member_ids(c, id);
    if (!members.ok()) return members.status();
    if (phase == GroupPhase::kDone && !members->empty())
      return Status::failed_precondition("group " + id + " still has " + std::to_string(members->size()) +
                                         " live members");
    auto up = c.prepare("UPDATE groups SET phase = ?, reason = ?, device = '', updated_ms = ? WHERE id = ?");
    if (!up.ok()) return up.status();
    if (Status s = (*up)->bind(1, to_string(phase)).bind(2, phase == GroupPhase::kFailed ? reason : std::string())
                       .bind(3, now_ms).bind(4, id).run();
        !s.is_ok())
      return s;
    if (phase == GroupPhase::kDone) return Status::ok();
    auto fail = c.prepare(std::string("UPDATE activities SET state = 'failed', state_reason = ?, device = '', "
                                      "finished_ms = ?, updated_ms = ? WHERE id IN (SELECT activity_id FROM "
                                      "group_members WHERE group_id = ? AND left_round IS NULL) AND ") +
                          kActiveFilter);
    if (!fail.ok()) return fail.status();
    if (Status s = (*fail)->bind(1, reason).bind(2, now_ms).bind(3, now_ms).bind(4, id).run(); !s.is_ok()) return s;
    return leave_groups(c, "group_id = ?2", id, "failed");
  });
}

Result<Group> SqliteStore::get_group(const std::string& id, const Scope& scope) {
  ReaderLease conn(*this);
  return select_group(*conn, id, scope);
}

Result<GroupPage> SqliteStore::list_groups(const GroupQuery& q) {
  std::string sql = std::string("SELECT ") + kGroupColumns + " FROM groups WHERE 1";
  if (q.scope.tenant_id)
    sql += " AND EXISTS(SELECT 1 FROM group_members s WHERE s.group_id = groups.id AND s.tenant_id = ?1)";
  if (q.phase) sql += " AND phase = ?2";
  if (q.before_seq) sql += " AND seq < ?3";
  sql += " ORDER BY seq DESC LIMIT ?4";
  ReaderLease conn(*this);
  // One snapshot for the page and its members; two queries whatever the page's size.
  Transaction txn(*conn);
  if (Status s = txn.begin(Transaction::Mode::kRead); !s.is_ok()) return s;
  GroupPage page;
  {
    auto st = (*conn).prepare(sql);
    if (!st.ok()) return st.status();
    if (q.scope.tenant_id) (*st)->bind(1, *q.scope.tenant_id);
    if (q.phase) (*st)->bind(2, to_string(*q.phase));
    if (q.before_seq) (*st)->bind(3, *q.before_seq);
    (*st)->bind(4, int64_t{q.limit} + 1);  // one more tells whether a next page exists
    for (;;) {
      auto row = (*st)->step();
      if (!row.ok()) return row.status();
      if (!*row) break;
      if (static_cast<int>(page.items.size()) == q.limit) {
        page.next_before_seq = page.items.back().seq;
        break;
      }
      auto g = read_group(**st);
      if (!g.ok()) return g.status();
      page.items.push_back(std::move(*g));
    }
  }
  if (Status s = load_members(*conn, page.items); !s.is_ok()) return s;
  return page;
}

Result<std::vector<AffinityRecord>> SqliteStore::list_affinity(const std::string& group_id) {
  ReaderLease conn(*this);
  auto g = group_state(*conn, group_id);
  if (!g.ok()) return g.status();
  if (!*g) return Status::not_found("no group " + group_id);
  auto st = (*conn).prepare("SELECT round, affinity FROM group_affinity WHERE group_id = ? ORDER BY round");
  if (!st.ok()) return st.status();
  (*st)->bind(1, group_id);
  std::vector<AffinityRecord> out;
  for (;;) {
    auto row = (*st)->step();
    if (!row.ok()) return row.status();
    if (!*row) break;
    out.push_back({(*st)->column_int64(0), (*st)->column_text(1)});
  }
  return out;
}

Result<std::vector<GroupCheckpoint>> SqliteStore::list_group_checkpoints(const std::string& group_id) {
  ReaderLease conn(*this);
  auto g = group_state(*conn, group_id);
  if (!g.ok()) return g.status();
  if (!*g) return Status::not_found("no group " + group_id);
  auto st = (*conn).prepare(
      "SELECT round, path, sha256, bytes, heads, job_round_offset FROM group_checkpoints WHERE group_id = ? "
      "ORDER BY round DESC");
  if (!st.ok()) return st.status();
  (*st)->bind(1, group_id);
  std::vector<GroupCheckpoint> out;
  for (;;) {
    auto row = (*st)->step();
    if (!row.ok()) return row.status();
    if (!*row) break;
    auto heads = heads_from_json((*st)->column_text(4), group_id);
    if (!heads.ok()) return heads.status();
    out.push_back({{(*st)->column_int64(0), (*st)->column_text(1), (*st)->column_text(2), (*st)->column_int64(3)},
                   std::move(*heads),
                   (*st)->column_int64(5)});
  }
  return out;
}

Status SqliteStore::replace_group_checkpoint(const std::string& group_id, const GroupCheckpoint& cp, int64_t now_ms) {
  return write_transaction([&](Connection& c) -> Status {
    auto g = require_live_group(c, group_id);
    if (!g.ok()) return g.status();
    auto up = c.prepare(
        "UPDATE groups SET heads = ?, job_round_offset = ?, checkpoint_path = ?, checkpoint_sha256 = ?, updated_ms = ? "
        "WHERE id = ? AND round = ?");
    if (!up.ok()) return up.status();
    if (Status s = (*up)->bind(1, heads_to_json(cp.heads)).bind(2, cp.job_round_offset).bind(3, cp.file.path)
                       .bind(4, cp.file.sha256).bind(5, now_ms).bind(6, group_id).bind(7, cp.file.round).run();
        !s.is_ok())
      return s;
    if (c.changes() != 1)
      return Status::failed_precondition("group " + group_id + " is not at round " + std::to_string(cp.file.round));
    return insert_checkpoint(c, group_id, cp, now_ms);
  });
}

namespace {

// The ids of the groups activity `activity_id` has been a member of, oldest first (none when
// there is no such activity).
Result<std::vector<std::string>> select_activity_groups(Connection& c, const std::string& activity_id) {
  // In the order it joined them (rowids grow with each insert), which is the groups' age order:
  // it joins a group only when that group is made or while it is new. The index on activity_id
  // yields that order without the sort an ORDER BY g.seq costs.
  auto st = c.prepare("SELECT group_id FROM group_members WHERE activity_id = ? ORDER BY rowid");
  if (!st.ok()) return st.status();
  (*st)->bind(1, activity_id);
  std::vector<std::string> out;
  for (;;) {
    auto row = (*st)->step();
    if (!row.ok()) return row.status();
    if (!*row) break;
    out.push_back((*st)->column_text(0));
  }
  return out;
}

// activity_energy on `c`.
Result<EnergyTotals> select_activity_energy(Connection& c, const std::string& activity_id) {
  auto st = c.prepare(std::string("SELECT ") + kTotals + "WHERE a.activity_id = ?");
  if (!st.ok()) return st.status();
  (*st)->bind(1, activity_id);
  auto row = (*st)->step();
  if (!row.ok()) return row.status();
  return read_totals(**st, 0);
}

}  // namespace

Result<std::vector<std::string>> SqliteStore::activity_groups(const std::string& activity_id) {
  ReaderLease conn(*this);
  {
    auto exists = (*conn).prepare("SELECT 1 FROM activities WHERE id = ?");
    if (!exists.ok()) return exists.status();
    (*exists)->bind(1, activity_id);
    auto row = (*exists)->step();
    if (!row.ok()) return row.status();
    if (!*row) return Status::not_found("no activity " + activity_id);
  }
  return select_activity_groups(*conn, activity_id);
}

Result<ActivityDetail> SqliteStore::get_activity_detail(const std::string& id, const Scope& scope) {
  // A hit is what the snapshot below would read (storage/detail_cache.h); the scope is checked
  // on it exactly as the query checks it.
  if (auto hit = detail_cache_->find(id)) {
    if (scope.tenant_id && hit->activity.tenant_id != *scope.tenant_id) return Status::not_found("no activity " + id);
    return std::move(*hit);
  }
  const uint64_t generation = detail_cache_->generation();  // before the snapshot begins
  auto d = read_activity_detail(id, scope);
  if (d.ok()) detail_cache_->put(id, generation, *d);
  return d;
}

Result<ActivityDetail> SqliteStore::read_activity_detail(const std::string& id, const Scope& scope) {
  ReaderLease conn(*this);
  Transaction txn(*conn);  // one snapshot: the parts agree with each other
  if (Status s = txn.begin(Transaction::Mode::kRead); !s.is_ok()) return s;
  ActivityDetail d;
  auto a = select_activity(*conn, id, scope);
  if (!a.ok()) return a.status();
  d.activity = std::move(*a);
  auto groups = select_activity_groups(*conn, id);
  if (!groups.ok()) return groups.status();
  d.groups = std::move(*groups);
  auto energy = select_activity_energy(*conn, id);
  if (!energy.ok()) return energy.status();
  d.energy = *energy;
  auto tenant = select_live_tenant(*conn, "id", d.activity.tenant_id);
  if (tenant.ok())
    d.tenant = std::move(*tenant);
  else if (!tenant.status().is_not_found())
    return tenant.status();
  if (!d.groups.empty()) {
    auto unclaimed = select_unclaimed_groups(*conn, d.groups.back());
    if (!unclaimed.ok()) return unclaimed.status();
    if (!unclaimed->empty()) d.waiting_group = unclaimed->front();
  }
  if (Status s = txn.commit(); !s.is_ok()) return s;
  return d;
}

Result<std::vector<std::pair<GroupPhase, int64_t>>> SqliteStore::count_groups_by_phase() {
  ReaderLease conn(*this);
  return count_by(*conn, "SELECT phase, count(*) FROM groups GROUP BY phase", kAllGroupPhases,
                  [](const std::string& s) { return parse_group_phase(s); });
}

Result<bool> SqliteStore::group_over_budget(const std::string& group_id) {
  ReaderLease conn(*this);
  auto g = group_state(*conn, group_id);
  if (!g.ok()) return g.status();
  if (!*g) return Status::not_found("no group " + group_id);
  auto st = (*conn).prepare(std::string("SELECT count(*), coalesce(sum(NOT ") + kWithinBudget +
                            "), 0) FROM group_members m JOIN tenants t ON t.id = m.tenant_id "
                            "WHERE m.group_id = ? AND m.left_round IS NULL");
  if (!st.ok()) return st.status();
  (*st)->bind(1, group_id);
  auto row = (*st)->step();
  if (!row.ok()) return row.status();
  const int64_t live = (*st)->column_int64(0), over = (*st)->column_int64(1);
  return live > 0 && over == live;
}

Result<EnergyTotals> SqliteStore::activity_energy(const std::string& activity_id) {
  ReaderLease conn(*this);
  return select_activity_energy(*conn, activity_id);
}

Result<std::vector<UsageDay>> SqliteStore::tenant_usage(const std::string& tenant_id, int64_t from_ms, int64_t to_ms) {
  ReaderLease conn(*this);
  auto st = (*conn).prepare(std::string("SELECT strftime('%Y-%m-%d', a.end_ms / 1000, 'unixepoch') AS day, ") +
                            kTotals + "WHERE a.tenant_id = ? AND a.end_ms >= ? AND a.end_ms < ? GROUP BY day ORDER BY day");
  if (!st.ok()) return st.status();
  (*st)->bind(1, tenant_id).bind(2, from_ms).bind(3, to_ms);
  std::vector<UsageDay> out;
  for (;;) {
    auto row = (*st)->step();
    if (!row.ok()) return row.status();
    if (!*row) break;
    out.push_back({(*st)->column_text(0), read_totals(**st, 1)});
  }
  return out;
}

Result<std::vector<std::pair<std::string, EnergyTotals>>> SqliteStore::energy_by_tenant() {
  ReaderLease conn(*this);
  auto st = (*conn).prepare(std::string("SELECT a.tenant_id, ") + kTotals + "GROUP BY a.tenant_id ORDER BY a.tenant_id");
  if (!st.ok()) return st.status();
  std::vector<std::pair<std::string, EnergyTotals>> out;
  for (;;) {
    auto row = (*st)->step();
    if (!row.ok()) return row.status();
    if (!*row) break;
    out.emplace_back((*st)->column_text(0), read_totals(**st, 1));
  }
  return out;
}

Result<std::vector<EnergyUnit>> SqliteStore::list_energy_units(const std::string& group_id) {
  ReaderLease conn(*this);
  std::vector<std::pair<int64_t, EnergyUnit>> units;
  {
    auto st = (*conn).prepare(
        "SELECT id, group_id, round, device, meter, start_ms, end_ms, seconds, joules, carbon_g_per_kwh, grams_co2e, "
        "coalesce(abandoned, ''), client_joules, client_meters FROM energy_ledger WHERE group_id = ? ORDER BY round, id");
    if (!st.ok()) return st.status();
    (*st)->bind(1, group_id);
    for (;;) {
      auto row = (*st)->step();
      if (!row.ok()) return row.status();
      if (!*row) break;
      EnergyUnit u;
      u.group_id = (*st)->column_text(1);
      u.round = (*st)->column_int64(2);
      u.device = (*st)->column_text(3);
      u.meter = (*st)->column_text(4);
      u.start_unix_ms = (*st)->column_int64(5);
      u.end_unix_ms = (*st)->column_int64(6);
      u.seconds = (*st)->column_double(7);
      u.joules = (*st)->column_double(8);
      u.carbon_g_per_kwh = (*st)->column_double(9);
      u.grams_co2e = (*st)->column_double(10);
      u.abandoned = (*st)->column_text(11);
      u.client_joules = (*st)->column_double(12);
      u.client_meters = (*st)->column_text(13);
      units.emplace_back((*st)->column_int64(0), std::move(u));
    }
  }
  std::vector<EnergyUnit> out;
  for (auto& [id, u] : units) {
    auto st = (*conn).prepare(
        "SELECT activity_id, tenant_id, share, joules, device_seconds, grams_co2e, client_joules "
        "FROM energy_attribution WHERE unit_id = ? ORDER BY rowid");
    if (!st.ok()) return st.status();
    (*st)->bind(1, id);
    for (;;) {
      auto row = (*st)->step();
      if (!row.ok()) return row.status();
      if (!*row) break;
      u.shares.push_back({(*st)->column_text(0), (*st)->column_text(1), (*st)->column_double(2),
                          (*st)->column_double(3), (*st)->column_double(4), (*st)->column_double(5),
                          (*st)->column_double(6)});
    }
    out.push_back(std::move(u));
  }
  return out;
}

Status SqliteStore::record_abandoned_unit(const EnergyUnit& unit) {
  if (unit.abandoned != "shutdown" && unit.abandoned != "cancelled" && unit.abandoned != "failed")
    return Status::invalid_argument("an abandoned unit needs a reason: shutdown, cancelled or failed",
                                    {{"abandoned", "must be shutdown, cancelled or failed"}});
  return write_transaction([&](Connection& c) -> Status { return insert_energy_unit(c, unit); });
}

Status SqliteStore::set_device_drained(const std::string& name, bool drained, int64_t now_ms) {
  return write_transaction([&](Connection& c) -> Status {
    bool was_drained = false;
    {
      auto cur = c.prepare("SELECT drained FROM devices WHERE name = ?");
      if (!cur.ok()) return cur.status();
      (*cur)->bind(1, name);
      auto row = (*cur)->step();
      if (!row.ok()) return row.status();
      was_drained = *row && (*cur)->column_int64(0) != 0;
    }
    auto st = c.prepare("INSERT OR REPLACE INTO devices(name, drained, updated_ms) VALUES(?,?,?)");
    if (!st.ok()) return st.status();
    if (Status s = (*st)->bind(1, name).bind(2, int64_t{drained ? 1 : 0}).bind(3, now_ms).run(); !s.is_ok()) return s;
    if (was_drained == drained) return Status::ok();  // no change, no event
    // Its state as GET /v1/devices will show it: a device that holds a group finishes its round first.
    auto holds = c.prepare("SELECT 1 FROM groups WHERE device = ? LIMIT 1");
    if (!holds.ok()) return holds.status();
    (*holds)->bind(1, name);
    auto busy = (*holds)->step();
    if (!busy.ok()) return busy.status();
    const char* state = drained ? (*busy ? "draining" : "drained") : (*busy ? "busy" : "idle");
    return insert_event(c, now_ms, std::nullopt, "", "", "device.changed",
                        {{"device", name},
                         {"state", state},
                         {"reason", drained ? "drained by the admin" : "resumed by the admin"}});
  });
}

Result<std::vector<std::string>> SqliteStore::list_drained_devices() {
  ReaderLease conn(*this);
  auto st = (*conn).prepare("SELECT name FROM devices WHERE drained = 1 ORDER BY name");
  if (!st.ok()) return st.status();
  std::vector<std::string> out;
  for (;;) {
    auto row = (*st)->step();
    if (!row.ok()) return row.status();
    if (!*row) break;
    out.push_back((*st)->column_text(0));
  }
  return out;
}

// --- events ----------------------------------------------------------------------------------

Result<std::vector<StoredEvent>> SqliteStore::list_events(const EventQuery& q) {
  std::string sql = std::string("SELECT ") + kEventColumns + " FROM events WHERE id > ?1";
  if (q.until_id) sql += " AND id <= ?2";
  if (q.scope.tenant_id) sql += " AND (tenant_id = ?3 OR tenant_id IS NULL)";
  if (q.activity_id) sql += " AND activity_id = ?4";
  if (!q.types.empty()) {
    sql += " AND type IN (";
    for (size_t i = 0; i < q.types.size(); ++i) sql += (i ? ",?" : "?") + std::to_string(6 + i);
    sql += ")";
  }
  sql += " ORDER BY id LIMIT ?5";
  ReaderLease conn(*this);
  auto st = (*conn).prepare(sql);
  if (!st.ok()) return st.status();
  (*st)->bind(1, q.after_id);
  if (q.until_id) (*st)->bind(2, *q.until_id);
  if (q.scope.tenant_id) (*st)->bind(3, *q.scope.tenant_id);
  if (q.activity_id) (*st)->bind(4, *q.activity_id);
  (*st)->bind(5, int64_t{q.limit});
  for (size_t i = 0; i < q.types.size(); ++i) (*st)->bind(static_cast<int>(6 + i), q.types[i]);
  std::vector<StoredEvent> out;
  for (;;) {
    auto row = (*st)->step();
    if (!row.ok()) return row.status();
    if (!*row) break;
    out.push_back(read_event(**st));
  }
  return out;
}

Result<int64_t> SqliteStore::prune_events(int64_t before_unix_ms) {
  return write_transaction([&](Connection& c) -> Result<int64_t> {
    auto st = c.prepare("DELETE FROM events WHERE time_ms < ?");
    if (!st.ok()) return st.status();
    if (Status s = (*st)->bind(1, before_unix_ms).run(); !s.is_ok()) return s;
    return c.changes();
  });
}

Result<int64_t> SqliteStore::set_event_listener(EventListener listener) {
  std::lock_guard lock(writer_mu_);
  // sqlite_sequence keeps the highest id ever given, even when that row was pruned.
  auto st = writer_->prepare("SELECT coalesce((SELECT seq FROM sqlite_sequence WHERE name = 'events'), 0)");
  if (!st.ok()) return st.status();
  auto row = (*st)->step();
  if (!row.ok()) return row.status();
  published_id_ = (*st)->column_int64(0);
  listener_ = std::move(listener);
  return published_id_;
}

void SqliteStore::publish_committed_events() {
  if (!listener_) return;
  std::vector<StoredEvent> batch;
  {
    auto st = writer_->prepare(std::string("SELECT ") + kEventColumns + " FROM events WHERE id > ? ORDER BY id");
    if (!st.ok()) return;  // the next commit tries again from the same id
    (*st)->bind(1, published_id_);
    for (;;) {
      auto row = (*st)->step();
      if (!row.ok()) return;
      if (!*row) break;
      batch.push_back(read_event(**st));
    }
  }
  if (batch.empty()) return;
  published_id_ = batch.back().id;
  listener_(batch);
}

}  // namespace mufl::storage
