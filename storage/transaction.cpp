#include "storage/transaction.h"

#include "storage/sqlite_db.h"

namespace mufl::storage {

Transaction::~Transaction() { rollback(); }

Status Transaction::begin(Mode mode) {
  static const std::string kBeginWrite = "BEGIN IMMEDIATE", kBeginRead = "BEGIN";
  Status s = conn_.run(mode == Mode::kWrite ? kBeginWrite : kBeginRead);
  open_ = s.is_ok();
  return s;
}

Status Transaction::commit() {
  static const std::string kCommit = "COMMIT";
  Status s = conn_.run(kCommit);
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
