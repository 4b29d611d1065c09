#pragma once
// Transaction: one SQLite transaction on a Connection, as a scope. It begins in begin(), ends
// with commit(), and rolls back in its destructor unless it was committed, so a body that
// returns early or throws never leaves BEGIN open on the connection (which would make every
// later BEGIN on it fail with "cannot start a transaction within a transaction").
// Internal to storage/.
//
// Thread safety: as the Connection; one thread at a time.
#include "core/status.h"

namespace mufl::storage {

class Connection;

class Transaction {
 public:
  enum class Mode {
    kRead,   // BEGIN (deferred): one read snapshot for several statements
    kWrite,  // BEGIN IMMEDIATE: takes the write lock now, so the body never meets SQLITE_BUSY midway
  };

  // REQUIRES: `conn` outlives the Transaction and has no transaction open.
  explicit Transaction(Connection& conn) : conn_(conn) {}
  // Rolls back when begun and not committed. Never throws.
  ~Transaction();
  Transaction(const Transaction&) = delete;
  Transaction& operator=(const Transaction&) = delete;

  // Starts the transaction. kUnavailable when the database is locked past the busy timeout,
  // kInternal on other SQLite errors (the transaction is then not open).
  // REQUIRES: not begun yet.
  Status begin(Mode mode);
  // Commits. On failure (kUnavailable: locked; kInternal: e.g. disk full) the transaction is
  // rolled back before it returns, so nothing of it is visible and the connection is usable.
  // REQUIRES: begun and not committed.
  Status commit();
  // Rolls back now (the destructor then does nothing). Never throws; a no-op when not open.
  void rollback() noexcept;

 private:
  Connection& conn_;
  bool open_ = false;
};

}  // namespace mufl::storage
