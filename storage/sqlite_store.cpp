#include "storage/sqlite_store.h"

#include <nlohmann/json.hpp>

#include "storage/migrations.h"
#include "storage/sqlite_db.h"

namespace mufl::storage {
namespace {

constexpr const char* kTenantColumns = "id, name, max_active_activities, created_ms, updated_ms";
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
  auto spec = nlohmann::json::parse(st.column_text(5), nullptr, /*allow_exceptions=*/false);
  if (spec.is_discarded()) return Status::internal("activity " + a.id + " has a corrupt spec");
  try {
    a.spec = spec_from_json(spec);
  } catch (const nlohmann::json::exception& e) {
    return Status::internal("activity " + a.id + " has a corrupt spec: " + e.what());
  }
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

inline Status status_of(const Status& s) { return s; }
template <typename T>
Status status_of(const Result<T>& r) {
  return r.status();
}

// Reads the one row `stmt` selects as T, or kNotFound with `what`.
template <typename T, typename Reader>
Result<T> one_row(StatementRef& stmt, Reader read, const std::string& what) {
  auto row = stmt->step();
  if (!row.ok()) return row.status();
  if (!*row) return Status::not_found(what);
  return read(*stmt);
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

Result<Tenant> select_live_tenant(Connection& c, const std::string& column, const std::string& value) {
  auto st = c.prepare(std::string("SELECT ") + kTenantColumns + " FROM tenants WHERE " + column +
                      " = ? AND deleted_ms IS NULL");
  if (!st.ok()) return st.status();
  (*st)->bind(1, value);
  return one_row<Tenant>(*st, read_tenant, "no tenant");
}

}  // namespace

// Borrows a reader connection for one call and gives it back afterwards.
class SqliteStore::ReaderLease {
 public:
  explicit ReaderLease(SqliteStore& store) : store_(store) {
    if (store_.use_writer_for_reads_) {
      writer_lock_ = std::unique_lock(store_.writer_mu_);
      conn_ = store_.writer_.get();
      return;
    }
    std::unique_lock lock(store_.readers_mu_);
    store_.readers_cv_.wait(lock, [&] { return !store_.idle_readers_.empty(); });
    owned_ = std::move(store_.idle_readers_.back());
    store_.idle_readers_.pop_back();
    conn_ = owned_.get();
  }
  ~ReaderLease() {
    if (!owned_) return;
    {
      std::lock_guard lock(store_.readers_mu_);
      store_.idle_readers_.push_back(std::move(owned_));
    }
    store_.readers_cv_.notify_one();
  }
  Connection& operator*() { return *conn_; }

 private:
  SqliteStore& store_;
  std::unique_lock<std::mutex> writer_lock_;
  std::unique_ptr<Connection> owned_;
  Connection* conn_ = nullptr;
};

Result<std::unique_ptr<SqliteStore>> SqliteStore::open(const StoreOptions& options, const Clock& clock) {
  std::unique_ptr<SqliteStore> store(new SqliteStore());
  auto writer = Connection::open(options.path, false, options.synchronous, options.busy_timeout_ms);
  if (!writer.ok()) return writer.status();
  store->writer_ = std::move(*writer);
  if (Status s = migrate(*store->writer_, clock.now_unix_ms()); !s.is_ok()) return s;
  if (options.path == ":memory:") {
    store->use_writer_for_reads_ = true;
    return store;
  }
  for (int i = 0; i < std::max(1, options.readers); ++i) {
    auto reader = Connection::open(options.path, true, options.synchronous, options.busy_timeout_ms);
    if (!reader.ok()) return reader.status();
    store->idle_readers_.push_back(std::move(*reader));
  }
  return store;
}

SqliteStore::~SqliteStore() = default;

template <typename Fn>
auto SqliteStore::write_transaction(Fn&& body) -> decltype(body(std::declval<Connection&>())) {
  std::lock_guard lock(writer_mu_);
  if (Status s = writer_->exec("BEGIN IMMEDIATE"); !s.is_ok()) return s;
  auto result = body(*writer_);
  if (!status_of(result).is_ok()) {
    writer_->exec("ROLLBACK");
    return result;
  }
  if (Status s = writer_->exec("COMMIT"); !s.is_ok()) {
    writer_->exec("ROLLBACK");
    return s;
  }
  return result;
}

Status SqliteStore::check_ready() {
  ReaderLease conn(*this);
  int version = current_schema_version(*conn);
  if (version != latest_schema_version())
    return Status::unavailable("schema version " + std::to_string(version) + ", want " +
                               std::to_string(latest_schema_version()));
  return Status::ok();
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
        "INSERT INTO tenants(id, name, token_hash, max_active_activities, created_ms, updated_ms) "
        "VALUES(?,?,?,?,?,?)");
    if (!ins.ok()) return ins.status();
    Status s = (*ins)->bind(1, t.id).bind(2, t.name).bind(3, token_hash).bind(4, t.quotas.max_active_activities)
                   .bind(5, t.created_unix_ms).bind(6, t.updated_unix_ms).run();
    if (!s.is_ok()) return s;
    return t;
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
    auto up = c.prepare(
        "UPDATE tenants SET max_active_activities = ?, updated_ms = ? WHERE id = ? AND deleted_ms IS NULL");
    if (!up.ok()) return up.status();
    if (Status s = (*up)->bind(1, quotas.max_active_activities).bind(2, now_ms).bind(3, id).run(); !s.is_ok())
      return s;
    if (c.changes() == 0) return Status::not_found("no tenant " + id);
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
    return (*cancel)->bind(1, "tenant deleted").bind(2, now_ms).bind(3, id).run();
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

    auto count = c.prepare(std::string("SELECT count(*) FROM activities WHERE tenant_id = ? AND ") + kActiveFilter);
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
    a->state = ActivityState::kCancelled;
    a->state_reason = reason;
    a->updated_unix_ms = now_ms;
    a->progress.device.clear();
    if (a->progress.started_unix_ms > 0) a->progress.finished_unix_ms = now_ms;
    return a;
  });
}

Result<std::optional<Activity>> SqliteStore::claim_next_queued(const std::string& device, int64_t now_ms) {
  return write_transaction([&](Connection& c) -> Result<std::optional<Activity>> {
    auto next = c.prepare(
        "SELECT id FROM activities WHERE state = 'queued' "
        "ORDER BY json_extract(spec, '$.priority') DESC, seq ASC LIMIT 1");
    if (!next.ok()) return next.status();
    auto row = (*next)->step();
    if (!row.ok()) return row.status();
    if (!*row) return std::optional<Activity>();
    const std::string id = (*next)->column_text(0);
    auto up = c.prepare(
        "UPDATE activities SET state = 'training', state_reason = '', device = ?, updated_ms = ?2, "
        "started_ms = CASE WHEN started_ms = 0 THEN ?2 ELSE started_ms END WHERE id = ?");
    if (!up.ok()) return up.status();
    if (Status s = (*up)->bind(1, device).bind(2, now_ms).bind(3, id).run(); !s.is_ok()) return s;
    auto a = select_activity(c, id, Scope::all());
    if (!a.ok()) return a.status();
    return std::optional<Activity>(std::move(*a));
  });
}

namespace {

// kFailedPrecondition unless activity `id` is training: a cancel that won the race stops the writer.
Status require_training(Connection& c, const std::string& id) {
  auto st = c.prepare("SELECT state FROM activities WHERE id = ?");
  if (!st.ok()) return st.status();
  (*st)->bind(1, id);
  auto row = (*st)->step();
  if (!row.ok()) return row.status();
  if (!*row) return Status::not_found("no activity " + id);
  const std::string state = (*st)->column_text(0);
  if (state != "training") return Status::failed_precondition("activity " + id + " is " + state + ", not training");
  return Status::ok();
}

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

Status SqliteStore::record_round(const std::string& id, const RoundRecord& round, const StoredFile& checkpoint,
                                 int64_t now_ms) {
  return write_transaction([&](Connection& c) -> Status {
    if (Status s = require_training(c, id); !s.is_ok()) return s;
    // INSERT OR REPLACE: a round redone after a crash between its checkpoint and this row.
    auto ins = c.prepare("INSERT OR REPLACE INTO activity_rounds(activity_id, round, report, created_ms) VALUES(?,?,?,?)");
    if (!ins.ok()) return ins.status();
    if (Status s = (*ins)->bind(1, id).bind(2, round.round).bind(3, round.report_json).bind(4, now_ms).run(); !s.is_ok())
      return s;
    auto up = c.prepare("UPDATE activities SET rounds_done = ?, last_round = ?, updated_ms = ? WHERE id = ?");
    if (!up.ok()) return up.status();
    if (Status s = (*up)->bind(1, round.round).bind(2, round.report_json).bind(3, now_ms).bind(4, id).run(); !s.is_ok())
      return s;
    return upsert_file(c, id, "checkpoint", checkpoint, now_ms);
  });
}

Status SqliteStore::finish_training(const std::string& id, ActivityState final_state, const std::string& reason,
                                    const std::optional<StoredFile>& model, int64_t now_ms) {
  return write_transaction([&](Connection& c) -> Status {
    if (Status s = require_training(c, id); !s.is_ok()) return s;
    if (model)
      if (Status s = upsert_file(c, id, "model", *model, now_ms); !s.is_ok()) return s;
    auto up = c.prepare(
        "UPDATE activities SET state = ?, state_reason = ?, device = '', finished_ms = ?, updated_ms = ? WHERE id = ?");
    if (!up.ok()) return up.status();
    return (*up)->bind(1, to_string(final_state)).bind(2, reason).bind(3, now_ms).bind(4, now_ms).bind(5, id).run();
  });
}

Result<int64_t> SqliteStore::requeue_interrupted(int64_t now_ms) {
  return write_transaction([&](Connection& c) -> Result<int64_t> {
    auto up = c.prepare(
        "UPDATE activities SET state = 'queued', state_reason = 'resumes from its last checkpoint after a restart', "
        "device = '', updated_ms = ? WHERE state IN ('training', 'consolidating', 'splitting')");
    if (!up.ok()) return up.status();
    if (Status s = (*up)->bind(1, now_ms).run(); !s.is_ok()) return s;
    return c.changes();
  });
}

Result<std::vector<RoundRecord>> SqliteStore::list_rounds(const std::string& id, const Scope& scope) {
  ReaderLease conn(*this);
  auto a = select_activity(*conn, id, scope);
  if (!a.ok()) return a.status();
  auto st = (*conn).prepare("SELECT round, report, created_ms FROM activity_rounds WHERE activity_id = ? ORDER BY round");
  if (!st.ok()) return st.status();
  (*st)->bind(1, id);
  std::vector<RoundRecord> out;
  for (;;) {
    auto row = (*st)->step();
    if (!row.ok()) return row.status();
    if (!*row) break;
    out.push_back({(*st)->column_int64(0), (*st)->column_text(1), (*st)->column_int64(2)});
  }
  return out;
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

Result<std::vector<std::pair<ActivityState, int64_t>>> SqliteStore::count_activities_by_state() {
  std::vector<std::pair<ActivityState, int64_t>> out;
  for (ActivityState s : kAllActivityStates) out.emplace_back(s, 0);
  ReaderLease conn(*this);
  auto st = (*conn).prepare("SELECT state, count(*) FROM activities GROUP BY state");
  if (!st.ok()) return st.status();
  for (;;) {
    auto row = (*st)->step();
    if (!row.ok()) return row.status();
    if (!*row) break;
    auto state = parse_activity_state((*st)->column_text(0));
    for (auto& [s, n] : out)
      if (state && s == *state) n = (*st)->column_int64(1);
  }
  return out;
}

}  // namespace mufl::storage
