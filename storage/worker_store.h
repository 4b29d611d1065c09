#pragma once
// WorkerStore: the mufl-worker jobs mufld has open on a Slurm cluster (docs/cluster.md, "Faults
// and the life of a worker"). A worker is written once its Slurm job is submitted and deleted
// when mufld closes it, so that a mufld restarted after a crash finds the workers it had, with
// their tokens' SHA-256, and can adopt those Slurm still runs instead of cancelling them.
// The token itself is never stored.
//
// Store joins it with the other aggregates (storage/store.h). Thread safety and blocking as
// Store.
#include <cstdint>
#include <string>
#include <vector>

#include "core/result.h"

namespace mufl::storage {

struct WorkerRecord {
  std::string id;            // "wrk_…"
  std::string token_sha256;  // hex SHA-256 of the worker's bearer token
  std::string group_id;      // the group it was opened for
  std::string device;        // the cluster device that claimed the group ("slurm:NODE:TYPE:I")
  std::string slurm_job_id;  // what sbatch answered
  int64_t created_unix_ms = 0;
};

class WorkerStore {
 public:
  virtual ~WorkerStore() = default;

  // Inserts or replaces the record with this id.
  virtual Status save_worker(const WorkerRecord& worker) = 0;
  // Deletes it; OK when there is none.
  virtual Status delete_worker(const std::string& id) = 0;
  // Every record, oldest first.
  virtual Result<std::vector<WorkerRecord>> list_workers() = 0;
};

}  // namespace mufl::storage
