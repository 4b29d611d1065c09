#include "storage/transaction.h"

#include "storage/sqlite_db.h"

namespace mufl::storage {

Transaction::~Transaction() { rollback(); }

Status Transaction::begin(Mode mode) {
  Status s = conn_.exec(mode == Mode::kWrite ? "BEGIN IMMEDIATE" : "BEGIN");
  open_ = s.is_ok();
  return s;
}

Status Transaction::commit() {
  Status s = conn_.exec("COMMIT");
  if (s.is_ok()) {
    open_ = false;
    return s;
  }
  rollback();  // a failed COMMIT may leave the transaction open (SQLITE_BUSY, SQLITE_FULL)
  return s;
}

void Transaction::rollback() noexcept {
  if (!open_) return;
  open_ = false;
  conn_.rollback();
}

}  // namespace mufl::storage
