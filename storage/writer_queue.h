#pragma once
// WriterQueue: group commit for the store's one writer connection, as LevelDB's DBImpl::Write
// batches its writers.
//
// Every write transaction ends with a COMMIT that waits for the disk (an fsync of the WAL under
// --db-sync full). One at a time, that wait bounds the writes per second (bench/api's POST
// phase: the commit was a third of mufld's samples). Writers that arrive while a commit is under
// way queue up; the first in the queue leads: it hands the front of the queue (itself first) to
// the batch runner, which runs their bodies one after the other in ONE transaction and commits
// them together. Each writer is told its outcome only after the COMMIT that holds its write
// returned, so nothing acknowledged can be lost; a writer whose body failed changed nothing (the
// runner puts each body in a savepoint).
//
// Thread safety: submit() may be called from any thread, concurrently.
#include <condition_variable>
#include <cstddef>
#include <deque>
#include <exception>
#include <functional>
#include <mutex>
#include <vector>

#include "core/status.h"

namespace mufl::storage {

class WriterQueue {
 public:
  // One caller's write. Lives on the caller's stack until submit() returns.
  struct Writer {
    std::function<Status()> body;  // the caller's work; runs on the leader's thread
    Status status;                 // the outcome, set by the batch runner
    std::exception_ptr thrown;     // what the body threw, for the caller to rethrow
    bool done = false;             // guarded by the queue's mutex
    std::condition_variable cv;
  };
  // Runs the writers of `batch`, in order, in one transaction, and sets each one's status (and
  // thrown). Returns how many writers from the front of the batch it finished: at least 1 (the
  // leader, batch[0], always gets an outcome), at most batch.size(). Writers after those stay
  // queued for the next batch: the transaction was lost (for example to a full disk) before
  // they ran. Must not throw.
  using RunBatch = std::function<size_t(const std::vector<Writer*>& batch)>;

  // REQUIRES: max_batch >= 1.
  explicit WriterQueue(size_t max_batch) : max_batch_(max_batch) {}
  WriterQueue(const WriterQueue&) = delete;
  WriterQueue& operator=(const WriterQueue&) = delete;

  // Runs w.body for a batch runner: its Status, or, when it throws, a failed Status with the
  // exception kept in w.thrown.
  static Status run_body(Writer& w);

  // Queues `w` and returns once a batch runner (`run`, called on this thread or by another
  // writer's) has finished it.
  void submit(Writer& w, const RunBatch& run);

  // Batches run and writers finished since construction: their ratio is the mean batch size.
  size_t batches() const;
  size_t writes() const;
  // Writers queued now, the running batch included (tests use it to line writers up).
  size_t pending() const;

 private:
  const size_t max_batch_;
  mutable std::mutex mu_;
  std::deque<Writer*> queue_;  // guarded by mu_; the front is the leader or next to lead
  size_t batches_ = 0, writes_ = 0;  // guarded by mu_
};

}  // namespace mufl::storage
