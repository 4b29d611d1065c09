// SqliteStore's FederationStore methods: federations, their tenants and their clients
// (migration 13).
#include <string>
#include <vector>

#include "storage/sqlite_db.h"
#include "storage/sqlite_store.h"
#include "storage/sqlite_store_internal.h"

namespace mufl::storage {
namespace {

using internal::one_row;

constexpr const char* kFederationColumns =
    "seq, id, owner_tenant_id, name, channels, height, width, labels, enroll_expires_ms, created_ms, updated_ms";
constexpr const char* kClientColumns =
    "seq, id, federation_id, name, train_samples, test_samples, created_ms, last_seen_ms, revoked_ms";

Federation read_federation(const Statement& st) {
  Federation f;
  f.seq = st.column_int64(0);
  f.id = st.column_text(1);
  f.owner_tenant_id = st.column_text(2);
  f.name = st.column_text(3);
  f.schema = {st.column_int64(4), st.column_int64(5), st.column_int64(6), st.column_int64(7)};
  f.enrollment_expires_unix_ms = st.column_int64(8);
  f.created_unix_ms = st.column_int64(9);
  f.updated_unix_ms = st.column_int64(10);
  return f;
}

Client read_client(const Statement& st) {
  Client c;
  c.seq = st.column_int64(0);
  c.id = st.column_text(1);
  c.federation_id = st.column_text(2);
  c.name = st.column_text(3);
  c.train_samples = st.column_int64(4);
  c.test_samples = st.column_int64(5);
  c.created_unix_ms = st.column_int64(6);
  c.last_seen_unix_ms = st.column_int64(7);
  if (!st.column_is_null(8)) c.revoked_unix_ms = st.column_int64(8);
  return c;
}

// The tenants listed on federation `id`, in id order.
Result<std::vector<std::string>> select_tenants(Connection& c, const std::string& id) {
  auto st = c.prepare("SELECT tenant_id FROM federation_tenants WHERE federation_id = ? ORDER BY tenant_id");
  if (!st.ok()) return st.status();
  (*st)->bind(1, id);
  std::vector<std::string> out;
  for (;;) {
    auto row = (*st)->step();
    if (!row.ok()) return row.status();
    if (!*row) return out;
    out.push_back((*st)->column_text(0));
  }
}

// The live federation `id` with its tenants, if `scope` may see it.
Result<Federation> select_federation(Connection& c, const std::string& id, const Scope& scope) {
  std::string sql = std::string("SELECT ") + kFederationColumns + " FROM federations WHERE id = ?1 AND deleted_ms IS NULL";
  if (scope.tenant_id)
    sql += " AND (owner_tenant_id = ?2 OR EXISTS(SELECT 1 FROM federation_tenants t WHERE t.federation_id = ?1 "
           "AND t.tenant_id = ?2))";
  auto st = c.prepare(sql);
  if (!st.ok()) return st.status();
  (*st)->bind(1, id);
  if (scope.tenant_id) (*st)->bind(2, *scope.tenant_id);
  auto f = one_row<Federation>(*st, read_federation, "no federation " + id);
  if (!f.ok()) return f;
  auto tenants = select_tenants(c, id);
  if (!tenants.ok()) return tenants.status();
  f->tenants = std::move(*tenants);
  return f;
}

Status require_live_tenant(Connection& c, const std::string& id) {
  auto st = c.prepare("SELECT 1 FROM tenants WHERE id = ? AND deleted_ms IS NULL");
  if (!st.ok()) return st.status();
  (*st)->bind(1, id);
  auto row = (*st)->step();
  if (!row.ok()) return row.status();
  return *row ? Status::ok() : Status::not_found("no tenant " + id);
}

// kAlreadyExists when `owner` has another live federation called `name`.
Status check_name_free(Connection& c, const std::string& owner, const std::string& name, const std::string& self) {
  auto st = c.prepare(
      "SELECT 1 FROM federations WHERE owner_tenant_id = ? AND name = ? AND id != ? AND deleted_ms IS NULL");
  if (!st.ok()) return st.status();
  (*st)->bind(1, owner).bind(2, name).bind(3, self);
  auto row = (*st)->step();
  if (!row.ok()) return row.status();
  return *row ? Status::already_exists("a federation named '" + name + "' exists") : Status::ok();
}

// Replaces federation `id`'s tenants list; each must be a live tenant.
Status write_tenants(Connection& c, const std::string& id, const std::vector<std::string>& tenants) {
  auto del = c.prepare("DELETE FROM federation_tenants WHERE federation_id = ?");
  if (!del.ok()) return del.status();
  if (Status s = (*del)->bind(1, id).run(); !s.is_ok()) return s;
  for (const auto& t : tenants) {
    if (Status s = require_live_tenant(c, t); !s.is_ok()) return s;
    auto ins = c.prepare("INSERT OR IGNORE INTO federation_tenants(federation_id, tenant_id) VALUES(?, ?)");
    if (!ins.ok()) return ins.status();
    if (Status s = (*ins)->bind(1, id).bind(2, t).run(); !s.is_ok()) return s;
  }
  return Status::ok();
}

Status revoke_all_clients(Connection& c, const std::string& federation_where, const std::string& arg,
                          int64_t now_ms) {
  auto st = c.prepare("UPDATE clients SET revoked_ms = ?1 WHERE revoked_ms IS NULL AND federation_id IN "
                      "(SELECT id FROM federations WHERE " + federation_where + ")");
  if (!st.ok()) return st.status();
  return (*st)->bind(1, now_ms).bind(2, arg).run();
}

}  // namespace

namespace internal {

Status delete_owned_federations(Connection& c, const std::string& tenant_id, int64_t now_ms) {
  if (Status s = revoke_all_clients(c, "owner_tenant_id = ?2 AND deleted_ms IS NULL", tenant_id, now_ms); !s.is_ok())
    return s;
  auto st = c.prepare(
      "UPDATE federations SET deleted_ms = ?, updated_ms = ? WHERE owner_tenant_id = ? AND deleted_ms IS NULL");
  if (!st.ok()) return st.status();
  return (*st)->bind(1, now_ms).bind(2, now_ms).bind(3, tenant_id).run();
}

}  // namespace internal

Result<Federation> SqliteStore::create_federation(const Federation& f, const std::string& enroll_hash) {
  return write_transaction([&](Connection& c) -> Result<Federation> {
    if (!f.owner_tenant_id.empty())
      if (Status s = require_live_tenant(c, f.owner_tenant_id); !s.is_ok()) return s;
    if (Status s = check_name_free(c, f.owner_tenant_id, f.name, f.id); !s.is_ok()) return s;
    auto ins = c.prepare(
        "INSERT INTO federations(id, owner_tenant_id, name, channels, height, width, labels, enroll_hash, "
        "enroll_expires_ms, created_ms, updated_ms) VALUES(?,?,?,?,?,?,?,?,?,?,?)");
    if (!ins.ok()) return ins.status();
    (*ins)->bind(1, f.id).bind(2, f.owner_tenant_id).bind(3, f.name).bind(4, f.schema.channels)
        .bind(5, f.schema.height).bind(6, f.schema.width).bind(7, f.schema.labels).bind(8, enroll_hash)
        .bind(9, f.enrollment_expires_unix_ms).bind(10, f.created_unix_ms).bind(11, f.updated_unix_ms);
    if (Status s = (*ins)->run(); !s.is_ok()) return s;
    if (Status s = write_tenants(c, f.id, f.tenants); !s.is_ok()) return s;
    return select_federation(c, f.id, Scope::all());
  });
}

Result<Federation> SqliteStore::get_federation(const std::string& id, const Scope& scope) {
  ReaderLease conn(*this);
  return select_federation(*conn, id, scope);
}

Result<std::vector<Federation>> SqliteStore::list_federations(const Scope& scope) {
  ReaderLease conn(*this);
  std::string sql = std::string("SELECT ") + kFederationColumns + " FROM federations WHERE deleted_ms IS NULL";
  if (scope.tenant_id)
    sql += " AND (owner_tenant_id = ?1 OR id IN (SELECT federation_id FROM federation_tenants WHERE tenant_id = ?1))";
  sql += " ORDER BY seq";
  auto st = (*conn).prepare(sql);
  if (!st.ok()) return st.status();
  if (scope.tenant_id) (*st)->bind(1, *scope.tenant_id);
  std::vector<Federation> out;
  for (;;) {
    auto row = (*st)->step();
    if (!row.ok()) return row.status();
    if (!*row) break;
    out.push_back(read_federation(**st));
  }
  for (auto& f : out) {
    auto tenants = select_tenants(*conn, f.id);
    if (!tenants.ok()) return tenants.status();
    f.tenants = std::move(*tenants);
  }
  return out;
}

Result<Federation> SqliteStore::update_federation(const std::string& id, const std::string& name,
                                                  const std::vector<std::string>& tenants, int64_t now_ms) {
  return write_transaction([&](Connection& c) -> Result<Federation> {
    auto current = select_federation(c, id, Scope::all());
    if (!current.ok()) return current.status();
    if (Status s = check_name_free(c, current->owner_tenant_id, name, id); !s.is_ok()) return s;
    auto up = c.prepare("UPDATE federations SET name = ?, updated_ms = ? WHERE id = ?");
    if (!up.ok()) return up.status();
    if (Status s = (*up)->bind(1, name).bind(2, now_ms).bind(3, id).run(); !s.is_ok()) return s;
    if (Status s = write_tenants(c, id, tenants); !s.is_ok()) return s;
    return select_federation(c, id, Scope::all());
  });
}

Result<Federation> SqliteStore::rotate_enrollment_token(const std::string& id, const std::string& enroll_hash,
                                                        int64_t expires_unix_ms, int64_t now_ms) {
  return write_transaction([&](Connection& c) -> Result<Federation> {
    auto up = c.prepare(
        "UPDATE federations SET enroll_hash = ?, enroll_expires_ms = ?, updated_ms = ? WHERE id = ? AND "
        "deleted_ms IS NULL");
    if (!up.ok()) return up.status();
    if (Status s = (*up)->bind(1, enroll_hash).bind(2, expires_unix_ms).bind(3, now_ms).bind(4, id).run(); !s.is_ok())
      return s;
    if (c.changes() == 0) return Status::not_found("no federation " + id);
    return select_federation(c, id, Scope::all());
  });
}

Status SqliteStore::delete_federation(const std::string& id, int64_t now_ms) {
  return write_transaction([&](Connection& c) -> Status {
    auto del = c.prepare("UPDATE federations SET deleted_ms = ?, updated_ms = ? WHERE id = ? AND deleted_ms IS NULL");
    if (!del.ok()) return del.status();
    if (Status s = (*del)->bind(1, now_ms).bind(2, now_ms).bind(3, id).run(); !s.is_ok()) return s;
    if (c.changes() == 0) return Status::not_found("no federation " + id);
    return revoke_all_clients(c, "id = ?2", id, now_ms);
  });
}

Result<Federation> SqliteStore::find_federation_by_enrollment(const std::string& enroll_hash) {
  ReaderLease conn(*this);
  auto st = (*conn).prepare("SELECT id FROM federations WHERE enroll_hash = ? AND deleted_ms IS NULL");
  if (!st.ok()) return st.status();
  (*st)->bind(1, enroll_hash);
  auto row = (*st)->step();
  if (!row.ok()) return row.status();
  if (!*row) return Status::not_found("no federation has this enrollment token");
  std::string id = (*st)->column_text(0);
  return select_federation(*conn, id, Scope::all());
}

Result<Client> SqliteStore::enroll_client(const Client& client, const std::string& token_hash) {
  return write_transaction([&](Connection& c) -> Result<Client> {
    auto fed = select_federation(c, client.federation_id, Scope::all());
    if (!fed.ok()) return fed.status();
    auto taken = c.prepare("SELECT 1 FROM clients WHERE federation_id = ? AND name = ? AND revoked_ms IS NULL");
    if (!taken.ok()) return taken.status();
    (*taken)->bind(1, client.federation_id).bind(2, client.name);
    auto row = (*taken)->step();
    if (!row.ok()) return row.status();
    if (*row)
      return Status::already_exists("a client named '" + client.name +
                                    "' is enrolled in this federation; its owner can revoke it first");
    auto ins = c.prepare(
        "INSERT INTO clients(id, federation_id, name, token_hash, train_samples, test_samples, created_ms, "
        "last_seen_ms) VALUES(?,?,?,?,?,?,?,?)");
    if (!ins.ok()) return ins.status();
    (*ins)->bind(1, client.id).bind(2, client.federation_id).bind(3, client.name).bind(4, token_hash)
        .bind(5, client.train_samples).bind(6, client.test_samples).bind(7, client.created_unix_ms)
        .bind(8, client.last_seen_unix_ms);
    if (Status s = (*ins)->run(); !s.is_ok()) return s;
    Client out = client;
    out.seq = c.last_insert_rowid();
    out.revoked_unix_ms.reset();
    return out;
  });
}

Result<Client> SqliteStore::find_client_by_token(const std::string& token_hash) {
  ReaderLease conn(*this);
  auto st = (*conn).prepare(std::string("SELECT ") + kClientColumns +
                            " FROM clients WHERE token_hash = ? AND revoked_ms IS NULL AND federation_id IN "
                            "(SELECT id FROM federations WHERE deleted_ms IS NULL)");
  if (!st.ok()) return st.status();
  (*st)->bind(1, token_hash);
  return one_row<Client>(*st, read_client, "no client has this token");
}

Result<ClientPage> SqliteStore::list_clients(const ClientQuery& q) {
  ReaderLease conn(*this);
  auto st = (*conn).prepare(std::string("SELECT ") + kClientColumns +
                            " FROM clients WHERE federation_id = ? AND seq > ? ORDER BY seq LIMIT ?");
  if (!st.ok()) return st.status();
  (*st)->bind(1, q.federation_id).bind(2, q.after_seq).bind(3, int64_t{q.limit} + 1);
  ClientPage page;
  for (;;) {
    auto row = (*st)->step();
    if (!row.ok()) return row.status();
    if (!*row) break;
    page.items.push_back(read_client(**st));
  }
  if (page.items.size() > static_cast<size_t>(q.limit)) {
    page.items.pop_back();
    page.next_after_seq = page.items.back().seq;
  }
  return page;
}

Result<Client> SqliteStore::revoke_client(const std::string& federation_id, const std::string& client_id,
                                          int64_t now_ms) {
  return write_transaction([&](Connection& c) -> Result<Client> {
    auto up = c.prepare(
        "UPDATE clients SET revoked_ms = ? WHERE id = ? AND federation_id = ? AND revoked_ms IS NULL");
    if (!up.ok()) return up.status();
    if (Status s = (*up)->bind(1, now_ms).bind(2, client_id).bind(3, federation_id).run(); !s.is_ok()) return s;
    auto st = c.prepare(std::string("SELECT ") + kClientColumns + " FROM clients WHERE id = ? AND federation_id = ?");
    if (!st.ok()) return st.status();
    (*st)->bind(1, client_id).bind(2, federation_id);
    return one_row<Client>(*st, read_client, "no client " + client_id + " in federation " + federation_id);
  });
}

Status SqliteStore::touch_clients(const std::vector<std::pair<std::string, int64_t>>& last_seen) {
  if (last_seen.empty()) return Status::ok();
  return write_transaction([&](Connection& c) -> Status {
    for (const auto& [id, ms] : last_seen) {
      // Prepared per row: a statement is rewound when its StatementRef goes (sqlite_db.h).
      auto up = c.prepare("UPDATE clients SET last_seen_ms = ?1 WHERE id = ?2 AND last_seen_ms < ?1");
      if (!up.ok()) return up.status();
      if (Status s = (*up)->bind(1, ms).bind(2, id).run(); !s.is_ok()) return s;
    }
    return Status::ok();
  });
}

}  // namespace mufl::storage
