#pragma once
// WorkerDesk: the `mufl-worker` jobs mufld has open on a Slurm cluster, and the rounds passed
// between them and the executor (docs/cluster.md, "The worker protocol"). The cluster backend
// opens a worker when a cluster device claims a group, posts each round (its job config and the
// checkpoint to train from), and waits for the result; the HTTP routes (service/worker_routes.cpp)
// hand the round to the worker's long poll and take its result. A result is accepted only for
// the round posted now, whole (report, checkpoint and its SHA-256 agree), and only once: a late
// or repeated one is kConflict and changes nothing.
//
// Tokens: open() makes a random one per worker and keeps its SHA-256 only. A closed worker's
// token still authenticates for kClosedGrace (so that its poll learns it is done: 410); then
// open() forgets the worker, and its token authenticates no more.
//
// The long poll is a federation::WorkBoard keyed by worker id: no thread waits per worker.
//
// Thread safety: every method may be called from any thread.
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>

#include "core/random.h"
#include "core/result.h"
#include "federation/work_board.h"
#include "fl/fl_job.h"
#include "protocol/result_frame.h"

namespace mufl::scheduler {

// A round as a worker gets it.
struct WorkerRound {
  int64_t round = 0;                              // the lineage round its result will be
  std::string config_json;                        // fl::job_config_to_json, dumped
  std::shared_ptr<const std::string> checkpoint;  // FlJob::checkpoint bytes to train from
  // The GPU power limit placement chose for the group, in watts; nullopt: the GPU's highest.
  std::optional<double> power_limit_watts;
};

// A worker's result of a round, checked.
struct WorkerResult {
  fl::RoundReport report;
  std::string checkpoint;
  double joules = 0;   // what the worker's GPU used over the round, by `meter`
  std::string meter;   // "nvml", "rapl" or "model"
  double seconds = 0;  // the round's time on the node
  std::string host;
};

class WorkerDesk {
 public:
  explicit WorkerDesk(RandomSource& rng);
  ~WorkerDesk();

  struct Opened {
    std::string id;     // "wrk_…"
    std::string token;  // shown once: it goes into the worker's environment
    std::string token_sha256;  // what is kept, here and in storage::WorkerRecord
  };
  static constexpr std::chrono::seconds kClosedGrace{120};  // > the longest poll (60 s)
  // Opens a worker; forgets those closed more than kClosedGrace ago.
  Opened open(const std::string& group_id, const std::string& device);
  // Opens again a worker an earlier mufld opened (storage::WorkerRecord): the token whose
  // SHA-256 is `token_sha256` authenticates as `id` from now on. Replaces a closed worker of
  // that id; kAlreadyExists when one is open.
  Status adopt(const std::string& id, const std::string& token_sha256, const std::string& group_id,
               const std::string& device);
  // The worker is done: its polls get `done` (410), a round posted to it fails its wait.
  void close(const std::string& id);
  // Forgets a closed worker (its token no longer authenticates).
  void forget(const std::string& id);
  bool is_open(const std::string& id) const;

  // Executor side. post(): offers the round to the worker (replacing one not yet taken).
  void post(const std::string& id, WorkerRound round);
  // Waits for the posted round's result until `deadline`, or until `give_up()` says so (asked
  // every `check_every`). The round is taken back whatever the outcome (a later result is
  // kConflict). kUnavailable at the deadline or on give_up; kFailedPrecondition when the worker
  // was closed meanwhile; the result otherwise.
  Result<WorkerResult> wait(const std::string& id, std::chrono::steady_clock::time_point deadline,
                            const std::function<bool()>& give_up,
                            std::chrono::milliseconds check_every = std::chrono::milliseconds(250));

  // HTTP side. authenticate: OK for the worker's own token; kUnauthenticated otherwise (an
  // unknown id too, so that ids cannot be probed).
  Status authenticate(const std::string& id, std::string_view token) const;
  // The long poll's board (key: worker id; a done worker is offered kDoneMarker).
  federation::WorkBoard& board() { return board_; }
  static constexpr const char* kDoneMarker = "{\"done\":true}";
  // The checkpoint of the posted round; kConflict when `round` is not the one posted now.
  Result<std::shared_ptr<const std::string>> checkpoint(const std::string& id, int64_t round) const;
  // A worker's framed result (docs/cluster.md): kConflict when `round` is not posted now (taken
  // back, or already reported); kInvalidArgument, naming what is wrong, for a frame or report
  // that does not parse, a report of another round, or a checkpoint whose SHA-256 is not the
  // report's. Nothing changes unless it returns OK.
  Status deliver(const std::string& id, int64_t round, const std::string& body);
  // The largest result body accepted: the checkpoint's size posted now, twice, plus 1 MiB;
  // nullopt when no round is posted (for HttpServerOptions::body_limit_for).
  std::optional<size_t> result_body_limit(std::string_view id) const;

  size_t open_workers() const;

 private:
  struct Worker {
    std::string token_sha256;
    std::string group_id, device;
    bool open = true;
    std::chrono::steady_clock::time_point closed_at{};
    std::optional<WorkerRound> posted;
    std::optional<WorkerResult> result;  // for `posted`
  };
  static std::string lease_id(const std::string& worker_id, int64_t round);

  RandomSource& rng_;
  federation::WorkBoard board_;
  mutable std::mutex mu_;
  std::condition_variable changed_;
  std::map<std::string, Worker, std::less<>> workers_;
};

// The result body's frame (protocol/result_frame.h), here for the executor's and tests' use.
using protocol::make_result_frame;
using protocol::split_result_frame;

}  // namespace mufl::scheduler
