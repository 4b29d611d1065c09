// SqliteStore's LeaseStore methods: the work leases of federation rounds (migration 14).
#include <string>
#include <vector>

#include "storage/sqlite_db.h"
#include "storage/sqlite_store.h"
#include "storage/sqlite_store_internal.h"

namespace mufl::storage {
namespace {

using internal::one_row;

constexpr const char* kLeaseColumns =
    "id, group_id, round, attempt, client_id, client_index, assignment, deadline_ms, state, report, update_path, "
    "update_sha256, created_ms, updated_ms";

std::optional<LeaseState> parse_lease_state(const std::string& s) {
  for (LeaseState st : {LeaseState::kOpen, LeaseState::kReported, LeaseState::kExpired, LeaseState::kAbandoned})
    if (s == lease_state_name(st)) return st;
  return std::nullopt;
}

Result<Lease> read_lease(const Statement& st) {
  Lease l;
  l.id = st.column_text(0);
  l.group_id = st.column_text(1);
  l.round = st.column_int64(2);
  l.attempt = st.column_int64(3);
  l.client_id = st.column_text(4);
  l.client_index = st.column_int64(5);
  l.assignment_json = st.column_text(6);
  l.deadline_unix_ms = st.column_int64(7);
  auto state = parse_lease_state(st.column_text(8));
  if (!state) return Status::internal("lease " + l.id + " has unknown state " + st.column_text(8));
  l.state = *state;
  l.report_json = st.column_text(9);
  l.update_path = st.column_text(10);
  l.update_sha256 = st.column_text(11);
  l.created_unix_ms = st.column_int64(12);
  l.updated_unix_ms = st.column_int64(13);
  return l;
}

Result<std::vector<Lease>> read_all(StatementRef& st) {
  std::vector<Lease> out;
  for (;;) {
    auto row = st->step();
    if (!row.ok()) return row.status();
    if (!*row) return out;
    auto l = read_lease(*st);
    if (!l.ok()) return l.status();
    out.push_back(std::move(*l));
  }
}

Result<Lease> select_lease(Connection& c, const std::string& id) {
  auto st = c.prepare(std::string("SELECT ") + kLeaseColumns + " FROM leases WHERE id = ?");
  if (!st.ok()) return st.status();
  (*st)->bind(1, id);
  auto row = (*st)->step();
  if (!row.ok()) return row.status();
  if (!*row) return Status::not_found("no lease " + id);
  return read_lease(**st);
}

}  // namespace

const char* lease_state_name(LeaseState s) {
  switch (s) {
    case LeaseState::kOpen: return "open";
    case LeaseState::kReported: return "reported";
    case LeaseState::kExpired: return "expired";
    case LeaseState::kAbandoned: return "abandoned";
  }
  return "unknown";
}

Status SqliteStore::create_leases(const std::vector<Lease>& leases) {
  return write_transaction([&](Connection& c) -> Status {
    for (const Lease& l : leases) {
      auto taken = c.prepare("SELECT 1 FROM leases WHERE id = ?");
      if (!taken.ok()) return taken.status();
      (*taken)->bind(1, l.id);
      auto row = (*taken)->step();
      if (!row.ok()) return row.status();
      if (*row) return Status::already_exists("lease " + l.id + " exists");
      auto ins = c.prepare(
          "INSERT INTO leases(id, group_id, round, attempt, client_id, client_index, assignment, deadline_ms, state, "
          "created_ms, updated_ms) VALUES(?,?,?,?,?,?,?,?,'open',?,?)");
      if (!ins.ok()) return ins.status();
      (*ins)->bind(1, l.id).bind(2, l.group_id).bind(3, l.round).bind(4, l.attempt).bind(5, l.client_id)
          .bind(6, l.client_index).bind(7, l.assignment_json).bind(8, l.deadline_unix_ms).bind(9, l.created_unix_ms)
          .bind(10, l.created_unix_ms);
      if (Status s = (*ins)->run(); !s.is_ok()) return s;
    }
    return Status::ok();
  });
}

Result<Lease> SqliteStore::get_lease(const std::string& id) {
  ReaderLease conn(*this);
  return select_lease(*conn, id);
}

Result<std::vector<Lease>> SqliteStore::list_open_leases() {
  ReaderLease conn(*this);
  auto st = (*conn).prepare(std::string("SELECT ") + kLeaseColumns + " FROM leases WHERE state = 'open' ORDER BY seq");
  if (!st.ok()) return st.status();
  return read_all(*st);
}

Result<std::vector<Lease>> SqliteStore::list_round_leases(const std::string& group_id, int64_t round,
                                                          int64_t attempt) {
  ReaderLease conn(*this);
  auto st = (*conn).prepare(std::string("SELECT ") + kLeaseColumns +
                            " FROM leases WHERE group_id = ? AND round = ? AND attempt = ? ORDER BY seq");
  if (!st.ok()) return st.status();
  (*st)->bind(1, group_id).bind(2, round).bind(3, attempt);
  return read_all(*st);
}

Result<Lease> SqliteStore::record_lease_report(const std::string& id, const std::string& report_json,
                                               const std::string& update_path, const std::string& update_sha256,
                                               int64_t now_ms) {
  return write_transaction([&](Connection& c) -> Result<Lease> {
    auto up = c.prepare(
        "UPDATE leases SET state = 'reported', report = ?, update_path = ?, update_sha256 = ?, updated_ms = ? "
        "WHERE id = ? AND state = 'open'");
    if (!up.ok()) return up.status();
    (*up)->bind(1, report_json).bind(2, update_path).bind(3, update_sha256).bind(4, now_ms).bind(5, id);
    if (Status s = (*up)->run(); !s.is_ok()) return s;
    if (c.changes() == 0) {
      auto l = select_lease(c, id);
      if (!l.ok()) return l.status();
      return Status::failed_precondition("lease " + id + " is " + lease_state_name(l->state));
    }
    return select_lease(c, id);
  });
}

Result<int64_t> SqliteStore::close_round_leases(const std::string& group_id, int64_t round, int64_t attempt,
                                                LeaseState state, int64_t now_ms) {
  if (state != LeaseState::kExpired && state != LeaseState::kAbandoned)
    return Status::invalid_argument("open leases close as expired or abandoned");
  return write_transaction([&](Connection& c) -> Result<int64_t> {
    auto up = c.prepare(
        "UPDATE leases SET state = ?, updated_ms = ? WHERE group_id = ? AND round = ? AND attempt = ? AND "
        "state = 'open'");
    if (!up.ok()) return up.status();
    (*up)->bind(1, lease_state_name(state)).bind(2, now_ms).bind(3, group_id).bind(4, round).bind(5, attempt);
    if (Status s = (*up)->run(); !s.is_ok()) return s;
    return c.changes();
  });
}

}  // namespace mufl::storage
