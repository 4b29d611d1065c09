#pragma once
// ClientPool: the real clients a job's rounds train on (a federation's mufl-client processes,
// docs/clients.md), as fl/ sees them. FlJob samples from candidates() and hands each chosen
// client an Assignment; the pool delivers them (work leases), waits, and returns the updates
// that came back. fl/ encodes and decodes the tensors (safetensors, docs/wire-format.md), so
// a pool moves bytes and JSON only: federation/ implements it without torch or fl/ code.
//
// Contract: no method throws. Thread safety: one round at a time per pool.
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/result.h"
#include "protocol/safetensors.h"

namespace mufl::fl {

// One draw of a round: every chosen client trains `global_weights` with its assignment.
struct RemoteDraw {
  std::string job;    // the job's name (JobConfig::name: a group id)
  int64_t round = 0;  // the lineage round, 1-based
  int attempt = 0;    // the draw of that round, 0-based
  // Which of the round's start models (client clustering: the cluster, one draw each; else
  // 0). Draws of one round and attempt with different parts are distinct.
  int part = 0;
  int64_t timeout_ms = 0;  // how long the clients have to report
  std::string global_weights;                 // safetensors, F32
  std::vector<protocol::TensorSpec> tensors;  // what an update must hold
  struct Task {
    int64_t client = 0;  // the client's number in the pool (candidates())
    nlohmann::json assignment;  // fl::assignment_to_json (fl/assignment.h)
  };
  std::vector<Task> tasks;
};

// What one client sent back: safetensors of its weights, its fl::LocalReport under
// fl::kReportMetadataKey.
struct RemoteUpdate {
  int64_t client = 0;
  std::string update;
  // When set, reads the update's bytes (then `update` is empty): a pool whose updates wait on
  // disk hands them over one at a time, so a round of many clients does not hold every
  // update in memory at once.
  std::function<Result<std::string>()> read;
};

class ClientPool {
 public:
  virtual ~ClientPool() = default;

  // The clients a round may choose (online, not revoked), by number, ascending. A client's
  // number stays the same for the pool's life. Waits until at least `wanted` are online, or
  // `wait_ms` passed, or `should_stop` fired (then returns what there is): after a restart of
  // mufld its clients are offline until they poll again.
  virtual Result<std::vector<int64_t>> candidates(size_t wanted, int64_t wait_ms,
                                                  const std::function<bool()>& should_stop) = 0;

  // The most training samples any of the pool's clients (not revoked) declared: personalised
  // epochs scale each client's epochs against it. 0 when no client declared any.
  virtual Result<int64_t> largest_train_samples() = 0;

  // Hands out the draw and waits until every client reported, the round's deadline passed, or
  // `should_stop` fired (then sets `stopped`). Returns the updates that came back, in task
  // order. The same draw again (a restart of the round after a crash) keeps the reports
  // already committed.
  virtual Result<std::vector<RemoteUpdate>> run(const RemoteDraw& draw, const std::function<bool()>& should_stop,
                                                bool& stopped) = 0;
};

}  // namespace mufl::fl
