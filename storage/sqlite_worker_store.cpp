// SqliteStore's WorkerStore methods: the cluster's worker jobs (migration 16).
#include <string>
#include <vector>

#include "storage/sqlite_db.h"
#include "storage/sqlite_store.h"
#include "storage/sqlite_store_internal.h"

namespace mufl::storage {

Status SqliteStore::save_worker(const WorkerRecord& w) {
  return write_transaction([&](Connection& c) -> Status {
    auto st = c.prepare(
        "INSERT OR REPLACE INTO cluster_workers(id, token_sha256, group_id, device, slurm_job_id, created_ms) "
        "VALUES(?,?,?,?,?,?)");
    if (!st.ok()) return st.status();
    return (*st)->bind(1, w.id).bind(2, w.token_sha256).bind(3, w.group_id).bind(4, w.device)
        .bind(5, w.slurm_job_id).bind(6, w.created_unix_ms).run();
  });
}

Status SqliteStore::delete_worker(const std::string& id) {
  return write_transaction([&](Connection& c) -> Status {
    auto st = c.prepare("DELETE FROM cluster_workers WHERE id = ?");
    if (!st.ok()) return st.status();
    return (*st)->bind(1, id).run();
  });
}

Result<std::vector<WorkerRecord>> SqliteStore::list_workers() {
  ReaderLease conn(*this);
  auto st = (*conn).prepare(
      "SELECT id, token_sha256, group_id, device, slurm_job_id, created_ms FROM cluster_workers ORDER BY seq");
  if (!st.ok()) return st.status();
  std::vector<WorkerRecord> out;
  for (;;) {
    auto row = (*st)->step();
    if (!row.ok()) return row.status();
    if (!*row) return out;
    WorkerRecord w;
    w.id = (*st)->column_text(0);
    w.token_sha256 = (*st)->column_text(1);
    w.group_id = (*st)->column_text(2);
    w.device = (*st)->column_text(3);
    w.slurm_job_id = (*st)->column_text(4);
    w.created_unix_ms = (*st)->column_int64(5);
    out.push_back(std::move(w));
  }
}

}  // namespace mufl::storage
