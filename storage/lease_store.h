#pragma once
// LeaseStore: the work leases of federation rounds (docs/clients.md, "Lease"). A lease is one
// client's part of one group round. It is written before it is offered to the client and its
// report is written before the client is answered, so a restart of mufld keeps every lease and
// every committed report; the work board (federation/work_board.h) is filled again from
// list_open_leases().
//
// Store joins it with the other aggregates (storage/store.h). Thread safety and blocking as
// Store.
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "core/result.h"

namespace mufl::storage {

enum class LeaseState { kOpen, kReported, kExpired, kAbandoned };
const char* lease_state_name(LeaseState s);

struct Lease {
  std::string id;  // "lea_…"
  std::string group_id;
  int64_t round = 0;    // the lineage round it trains (1-based)
  int64_t attempt = 0;  // the draw of that round (0-based)
  std::string client_id;
  int64_t client_index = 0;     // the client's number in the round's population (its seed)
  std::string assignment_json;  // what the client is sent
  int64_t deadline_unix_ms = 0;
  LeaseState state = LeaseState::kOpen;
  std::string report_json;  // the client's report, once reported
  std::string update_path;  // the client's update (safetensors), once reported
  std::string update_sha256;
  int64_t created_unix_ms = 0;
  int64_t updated_unix_ms = 0;
};

class LeaseStore {
 public:
  virtual ~LeaseStore() = default;

  // Inserts `leases` (state open) in one transaction; kAlreadyExists when an id is taken.
  virtual Status create_leases(const std::vector<Lease>& leases) = 0;
  // kNotFound when there is no such lease.
  virtual Result<Lease> get_lease(const std::string& id) = 0;
  // Every open lease, oldest first.
  virtual Result<std::vector<Lease>> list_open_leases() = 0;
  // The leases of one draw of a group round, in creation order.
  virtual Result<std::vector<Lease>> list_round_leases(const std::string& group_id, int64_t round,
                                                       int64_t attempt) = 0;
  // Records the client's update: open → reported with the report and the file (written and
  // synced before). kFailedPrecondition when the lease is no longer open (the caller tells
  // an idempotent repeat, same sha256, from a conflict by get_lease); kNotFound.
  virtual Result<Lease> record_lease_report(const std::string& id, const std::string& report_json,
                                            const std::string& update_path, const std::string& update_sha256,
                                            int64_t now_ms) = 0;
  // Moves the still-open leases of a draw to `state` (kExpired: its deadline passed;
  // kAbandoned: the round ended without them). Returns how many moved.
  virtual Result<int64_t> close_round_leases(const std::string& group_id, int64_t round, int64_t attempt,
                                             LeaseState state, int64_t now_ms) = 0;
};

}  // namespace mufl::storage
