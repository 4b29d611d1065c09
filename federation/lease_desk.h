#pragma once
// LeaseDesk: the clients' side of work leases (docs/clients.md, "Lease"). It serves a lease's
// global weights and takes the client's update: checked (federation/update_check.h), written
// durably, recorded in the LeaseStore, and only then acknowledged. What a client is sent, the
// lease's JSON, is:
//   {"id", "group_id", "round", "attempt", "created", "deadline", "assignment": fl::Assignment JSON,
//    "weights": {"url", "sha256", "bytes"}}
// An update must hold exactly the tensors of the lease's weights file (names and shapes).
// Rounds (the federation's RoundClients) open leases here and wait for their reports.
//
// Thread safety: every method may be called from any thread. Blocking: the store and files.
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/clock.h"
#include "core/random.h"
#include "core/result.h"
#include "federation/work_board.h"
#include "protocol/safetensors.h"
#include "storage/lease_store.h"

namespace mufl::federation {

// A round's draw, as a round opens it.
struct DrawRequest {
  std::string group_id;
  int64_t round = 0, attempt = 0;
  std::string global_weights;                   // safetensors
  std::vector<protocol::TensorSpec> tensors;    // what an update must hold: the weights' own
  struct Slot {
    std::string client_id;
    int64_t client_index = 0;
    nlohmann::json assignment;  // fl::assignment_to_json
  };
  std::vector<Slot> slots;
  int64_t deadline_unix_ms = 0;
};

class LeaseDesk {
 public:
  // `dir`: where weights and updates are kept (<dir>/leases/…). `on_reject(reason)` counts a
  // refused update (mufl_client_updates_rejected_total{reason}).
  LeaseDesk(storage::LeaseStore& store, WorkBoard& board, const Clock& clock, RandomSource& rng, std::string dir,
            std::function<void(const std::string&)> on_reject = {});

  // Puts every open lease of the store back on the board (at start-up). Returns how many.
  Result<int64_t> restore_open_leases();

  // Writes the draw's weights, stores its leases and offers them. When the draw exists already
  // (its round restarted after a crash or a stop), a client's lease that is open, reported or
  // expired is kept as it is, and only an abandoned or missing one is opened again. Returns
  // the lease ids in slot order and the deadline to wait for: the latest of the open leases'.
  struct OpenedDraw {
    std::vector<std::string> lease_ids;
    int64_t deadline_unix_ms = 0;
  };
  Result<OpenedDraw> open_draw(const DrawRequest& draw);
  // Waits until every lease of the draw reported, or its deadline, or `should_stop`; then
  // closes the ones still open (expired, or abandoned when stopped) and returns the draw's
  // leases. `stopped` tells which ended it.
  Result<std::vector<storage::Lease>> wait_draw(const std::string& group_id, int64_t round, int64_t attempt,
                                                int64_t deadline_unix_ms, const std::function<bool()>& should_stop,
                                                bool& stopped);
  // An update a report recorded (its file's bytes); kDataLoss when the file's hash differs.
  Result<std::string> read_update(const storage::Lease& lease) const;

  // GET /v1/work/{id}/weights for `client_id`: the bytes and their SHA-256 (hex). kNotFound
  // for an unknown lease or another client's.
  // The bytes are shared by every request for the draw's weights (never copied per request).
  struct WeightsFile {
    std::shared_ptr<const std::string> bytes;
    std::string sha256;
  };
  Result<WeightsFile> weights(const std::string& client_id, const std::string& lease_id) const;
  // PUT /v1/work/{id}/update for `client_id`. kNotFound as weights(); kConflict when the lease
  // was reported with another body, or its deadline passed (a straggler: never aggregated);
  // kInvalidArgument (kResourceExhausted when too large) naming the fault of a bad update.
  // The same body again returns the recorded lease (idempotent).
  Result<storage::Lease> accept_update(const std::string& client_id, const std::string& lease_id,
                                       std::string_view body);
  // The largest update body lease `lease_id` may send (federation/update_check.h's
  // max_update_bytes of its model), while its draw is open; nullopt for any other id. The HTTP
  // server's body limit for PUT /v1/work/{id}/update, so that only a live lease's holder can
  // make mufld read more than the default limit. Reads memory only.
  std::optional<size_t> update_body_limit(std::string_view lease_id) const;

 private:
  struct LeaseTimes {
    int64_t created_unix_ms = 0;
    std::string created, deadline;  // RFC 3339
  };
  storage::Lease new_lease(const DrawRequest& draw, const DrawRequest::Slot& slot, const LeaseTimes& times,
                           const std::string& sha);
  // What every lease of a draw shares: its weights, what an update must hold, and its limit.
  struct Draw {
    WeightsFile weights;
    std::vector<protocol::TensorSpec> specs;
    size_t update_limit = 0;
  };
  // The draw of `lease`: from memory while its draw is open, else from its weights file (kept
  // in memory when the lease is open: restored after a restart). kNotFound when the file is gone.
  Result<std::shared_ptr<const Draw>> draw_of(const storage::Lease& lease) const;
  std::string weights_path(const std::string& group_id, int64_t round, int64_t attempt) const;
  std::string update_path(const std::string& lease_id) const;
  Result<storage::Lease> own_lease(const std::string& client_id, const std::string& lease_id) const;
  Status reject(const std::string& reason, Status status);
  // Keeps `limit` as the update body limit of lease `lease_id` while its draw is open.
  void remember_limit(const std::string& lease_id, size_t limit);

  storage::LeaseStore& store_;
  WorkBoard& board_;
  const Clock& clock_;
  RandomSource& rng_;
  std::string dir_;
  std::function<void(const std::string&)> on_reject_;

  std::mutex mu_;
  std::condition_variable reported_;  // notified after each recorded report
  mutable std::mutex limits_mu_;  // guards the two maps below
  std::map<std::string, size_t, std::less<>> update_limits_;  // lease id → body limit, while its draw is open
  // Each open draw by its weights' file path, so that a thousand clients' requests neither read
  // nor hash the file, nor parse their lease, again (after a restart: read once, then kept).
  mutable std::map<std::string, std::shared_ptr<const Draw>> open_draws_;
};

}  // namespace mufl::federation
