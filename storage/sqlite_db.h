#pragma once
// Thin RAII wrappers over the SQLite C API: a connection with a cache of prepared statements.
// Internal to storage/; the rest of mufl talks to storage/store.h.
//
// Thread safety: a Connection (and its statements) must be used by one thread at a time;
// the owner serialises access.
#include <atomic>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>

#include "core/result.h"

struct sqlite3;
struct sqlite3_stmt;

namespace mufl::storage {

class Statement {
 public:
  explicit Statement(sqlite3_stmt* stmt) : stmt_(stmt) {}
  ~Statement();
  Statement(const Statement&) = delete;
  Statement& operator=(const Statement&) = delete;

  // Binders take 1-based parameter indexes, as SQLite does. They return *this for chaining.
  // A bind that SQLite refuses (an index out of range, SQLITE_NOMEM, SQLITE_TOOBIG) is recorded:
  // the first such failure is what the next step() or run() returns (kInternal naming the
  // index and SQLite's message) without running the statement; reset() clears it.
  Statement& bind(int idx, int64_t v);
  Statement& bind(int idx, double v);
  Statement& bind(int idx, std::string_view v);
  Statement& bind(int idx, const char* v) { return bind(idx, std::string_view(v)); }
  Statement& bind_null(int idx);

  // Advances to the next row. Returns true when a row is available, false when done;
  // a failed Status on any SQLite error (kUnavailable for SQLITE_BUSY, kInternal otherwise),
  // or the recorded failure of an earlier bind (kInternal).
  Result<bool> step();
  // Runs a statement that returns no rows to completion.
  Status run();

  int64_t column_int64(int col) const;
  double column_double(int col) const;
  std::string column_text(int col) const;
  // The same text without a copy; valid until the next step() or reset().
  std::string_view column_view(int col) const;
  bool column_is_null(int col) const;

  // Clears bindings and any recorded bind failure and rewinds, ready for reuse. Called by
  // StatementRef when a use ends.
  void reset();

 private:
  // Keeps the first failed bind's Status (rc != SQLITE_OK); returns *this.
  Statement& check_bind(int rc, int idx);

  sqlite3_stmt* stmt_;
  Status bind_error_;  // ok, or the first failed bind since the last reset()
};

// A use of a cached statement: rewinds it when the use ends, so that no read snapshot stays
// open on an idle connection (which would keep WAL checkpoints from finishing).
class StatementRef {
 public:
  explicit StatementRef(Statement* s) : s_(s) {}
  StatementRef(StatementRef&& o) noexcept : s_(o.s_) { o.s_ = nullptr; }
  StatementRef& operator=(StatementRef&&) = delete;
  ~StatementRef() {
    if (s_) s_->reset();
  }
  Statement* operator->() const { return s_; }
  Statement& operator*() const { return *s_; }

 private:
  Statement* s_;
};

class Connection {
 public:
  // Opens (creating when missing) the database at `path`; ":memory:" gives a private in-memory
  // database. Sets foreign_keys=ON, busy_timeout and, for files, journal_mode=WAL.
  // `synchronous` is "FULL" or "NORMAL" (see StoreOptions).
  static Result<std::unique_ptr<Connection>> open(const std::string& path, bool read_only,
                                                  const std::string& synchronous, int busy_timeout_ms);
  ~Connection();
  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;

  // Runs one or more SQL statements that return nothing.
  Status exec(std::string_view sql);
  // Runs one statement without parameters through the statement cache (prepared once per
  // connection): for the BEGIN and COMMIT of every transaction, which exec() would compile anew.
  Status run(const std::string& sql);
  // A cached prepared statement for `sql`, rewound and with clear bindings. Do not hold two
  // uses of the same SQL at once.
  Result<StatementRef> prepare(const std::string& sql);
  int64_t changes() const;
  // The rowid of the last row this connection inserted.
  int64_t last_insert_rowid() const;
  // Whether a transaction is open (SQLite is not in autocommit mode).
  bool in_transaction() const noexcept;
  // Rolls back the open transaction, if any, and ignores the outcome. Never throws; allocates
  // nothing. For Transaction's destructor.
  void rollback() noexcept;
  // From now on, adds one to `*counter` for every SQL statement this connection starts (a
  // step() after a reset, each statement of exec(); not the statements of triggers), so a test
  // can bound the queries of a call. nullptr stops counting. `counter` must outlive the
  // connection or the next call.
  void count_statements(std::atomic<int64_t>* counter);

 private:
  explicit Connection(sqlite3* db) : db_(db) {}
  Status error(std::string_view what) const;
  sqlite3* db_;
  std::unordered_map<std::string, std::unique_ptr<Statement>> cache_;
};

// Maps an SQLite result code to a Status with `what` and SQLite's message.
Status sqlite_status(int rc, std::string_view what, sqlite3* db);

}  // namespace mufl::storage
