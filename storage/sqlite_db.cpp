#include "storage/sqlite_db.h"

#include <sqlite3.h>

#include <limits>
#include <mutex>
#include <string>

namespace mufl::storage {

Status sqlite_status(int rc, std::string_view what, sqlite3* db) {
  std::string msg(what);
  msg += ": ";
  msg += db ? sqlite3_errmsg(db) : sqlite3_errstr(rc);
  int primary = rc & 0xff;
  if (primary == SQLITE_BUSY || primary == SQLITE_LOCKED) return Status::unavailable(msg);
  if (primary == SQLITE_CONSTRAINT) return Status::conflict(msg);
  // A full disk and I/O errors pass once the operator acts or the device recovers: callers retry.
  if (primary == SQLITE_FULL) return Status::insufficient_storage(msg);
  if (primary == SQLITE_IOERR || primary == SQLITE_NOMEM || primary == SQLITE_CANTOPEN || primary == SQLITE_READONLY)
    return Status::unavailable(msg);
  return Status::internal(msg);
}

Statement::~Statement() { sqlite3_finalize(stmt_); }

Statement& Statement::check_bind(int rc, int idx) {
  if (rc == SQLITE_OK || !bind_error_.is_ok()) return *this;
  std::string msg = "bind parameter " + std::to_string(idx) + " of " +
                    std::to_string(sqlite3_bind_parameter_count(stmt_)) + ": " + sqlite3_errstr(rc);
  if (const char* sql = sqlite3_sql(stmt_)) {
    msg += " (in: ";
    msg += sql;
    msg += ")";
  }
  bind_error_ = Status::internal(msg);
  return *this;
}

Statement& Statement::bind(int idx, int64_t v) { return check_bind(sqlite3_bind_int64(stmt_, idx, v), idx); }
Statement& Statement::bind(int idx, double v) { return check_bind(sqlite3_bind_double(stmt_, idx, v), idx); }
Statement& Statement::bind(int idx, std::string_view v) {
  if (v.size() > static_cast<size_t>(std::numeric_limits<int>::max())) return check_bind(SQLITE_TOOBIG, idx);
  return check_bind(sqlite3_bind_text(stmt_, idx, v.data(), static_cast<int>(v.size()), SQLITE_TRANSIENT), idx);
}
Statement& Statement::bind_null(int idx) { return check_bind(sqlite3_bind_null(stmt_, idx), idx); }

Result<bool> Statement::step() {
  if (!bind_error_.is_ok()) return bind_error_;
  int rc = sqlite3_step(stmt_);
  if (rc == SQLITE_ROW) return true;
  if (rc == SQLITE_DONE) return false;
  return sqlite_status(rc, "step", sqlite3_db_handle(stmt_));
}

Status Statement::run() {
  auto r = step();
  if (!r.ok()) return r.status();
  while (*r) {
    r = step();
    if (!r.ok()) return r.status();
  }
  return Status::ok();
}

int64_t Statement::column_int64(int col) const { return sqlite3_column_int64(stmt_, col); }
double Statement::column_double(int col) const { return sqlite3_column_double(stmt_, col); }
std::string Statement::column_text(int col) const {
  const unsigned char* t = sqlite3_column_text(stmt_, col);
  return t ? std::string(reinterpret_cast<const char*>(t), static_cast<size_t>(sqlite3_column_bytes(stmt_, col)))
           : std::string();
}
std::string_view Statement::column_view(int col) const {
  const unsigned char* t = sqlite3_column_text(stmt_, col);
  return t ? std::string_view(reinterpret_cast<const char*>(t), static_cast<size_t>(sqlite3_column_bytes(stmt_, col)))
           : std::string_view();
}
bool Statement::column_is_null(int col) const { return sqlite3_column_type(stmt_, col) == SQLITE_NULL; }

void Statement::reset() {
  sqlite3_reset(stmt_);
  sqlite3_clear_bindings(stmt_);
  bind_error_ = Status::ok();
}

namespace {

// SQLite's memory statistics take one process-wide mutex on every allocation, which the reader
// connections of concurrent requests then queue on; mufl never reads them. Must run before
// SQLite initialises; when it already has (another user in the process), it changes nothing.
void configure_sqlite_once() {
  static std::once_flag once;
  std::call_once(once, [] { sqlite3_config(SQLITE_CONFIG_MEMSTATUS, 0); });
}

}  // namespace

Result<std::unique_ptr<Connection>> Connection::open(const std::string& path, bool read_only,
                                                     const std::string& synchronous, int busy_timeout_ms) {
  configure_sqlite_once();
  sqlite3* db = nullptr;
  int flags = (read_only ? SQLITE_OPEN_READONLY : SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE) |
              SQLITE_OPEN_NOMUTEX;  // we serialise access per connection ourselves
  int rc = sqlite3_open_v2(path.c_str(), &db, flags, nullptr);
  if (rc != SQLITE_OK) {
    Status s = sqlite_status(rc, "open " + path, db);
    sqlite3_close(db);
    return s;
  }
  std::unique_ptr<Connection> conn(new Connection(db));
  sqlite3_busy_timeout(db, busy_timeout_ms);
  std::string pragmas = "PRAGMA foreign_keys=ON;";
  if (path != ":memory:" && !read_only) pragmas += "PRAGMA journal_mode=WAL;";
  pragmas += "PRAGMA synchronous=" + synchronous + ";";
  if (Status s = conn->exec(pragmas); !s.is_ok()) return s;
  return conn;
}

Connection::~Connection() {
  cache_.clear();  // statements must be finalised before the connection closes
  sqlite3_close(db_);
}

Status Connection::error(std::string_view what) const { return sqlite_status(sqlite3_errcode(db_), what, db_); }

Status Connection::exec(std::string_view sql) {
  std::string s(sql);
  char* err = nullptr;
  int rc = sqlite3_exec(db_, s.c_str(), nullptr, nullptr, &err);
  if (rc != SQLITE_OK) {
    std::string msg = err ? err : sqlite3_errstr(rc);
    sqlite3_free(err);
    Status st = sqlite_status(rc, "exec", nullptr);
    if (st.code() == Status::Code::kUnavailable) return Status::unavailable("exec: " + msg);
    if (st.code() == Status::Code::kInsufficientStorage) return Status::insufficient_storage("exec: " + msg);
    return Status::internal("exec: " + msg);
  }
  return Status::ok();
}

Status Connection::run(const std::string& sql) {
  auto st = prepare(sql);
  if (!st.ok()) return st.status();
  return (*st)->run();
}

Result<StatementRef> Connection::prepare(const std::string& sql) {
  auto it = cache_.find(sql);
  if (it != cache_.end()) return StatementRef(it->second.get());
  sqlite3_stmt* stmt = nullptr;
  int rc = sqlite3_prepare_v3(db_, sql.c_str(), static_cast<int>(sql.size()), SQLITE_PREPARE_PERSISTENT, &stmt,
                              nullptr);
  if (rc != SQLITE_OK) return sqlite_status(rc, "prepare", db_);
  auto owned = std::make_unique<Statement>(stmt);
  Statement* raw = owned.get();
  cache_.emplace(sql, std::move(owned));
  return StatementRef(raw);
}

int64_t Connection::changes() const { return sqlite3_changes64(db_); }
int64_t Connection::last_insert_rowid() const { return sqlite3_last_insert_rowid(db_); }

void Connection::count_statements(std::atomic<int64_t>* counter) {
  // SQLITE_TRACE_STMT fires once when a statement starts running; a trigger's statements come
  // with SQL text starting "--", which are part of the statement that fired them.
  auto on_statement = [](unsigned, void* ctx, void*, void* sql) -> int {
    const char* text = static_cast<const char*>(sql);
    if (!(text && text[0] == '-' && text[1] == '-'))
      static_cast<std::atomic<int64_t>*>(ctx)->fetch_add(1, std::memory_order_relaxed);
    return 0;
  };
  sqlite3_trace_v2(db_, counter ? SQLITE_TRACE_STMT : 0, counter ? +on_statement : nullptr, counter);
}

bool Connection::in_transaction() const noexcept { return sqlite3_get_autocommit(db_) == 0; }

void Connection::rollback() noexcept {
  if (in_transaction()) sqlite3_exec(db_, "ROLLBACK", nullptr, nullptr, nullptr);
}

}  // namespace mufl::storage
