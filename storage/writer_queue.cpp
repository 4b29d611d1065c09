#include "storage/writer_queue.h"

#include <algorithm>

namespace mufl::storage {

Status WriterQueue::run_body(Writer& w) {
  try {
    return w.body();
  } catch (...) {
    w.thrown = std::current_exception();
    return Status::internal("the write threw");
  }
}

void WriterQueue::submit(Writer& w, const RunBatch& run) {
  std::unique_lock lock(mu_);
  queue_.push_back(&w);
  w.cv.wait(lock, [&] { return w.done || queue_.front() == &w; });
  if (w.done) return;  // a leader ran it
  const auto n = static_cast<std::ptrdiff_t>(std::min(queue_.size(), max_batch_));
  const std::vector<Writer*> batch(queue_.begin(), queue_.begin() + n);
  lock.unlock();
  const size_t finished = std::clamp<size_t>(run(batch), 1, batch.size());
  lock.lock();
  ++batches_;
  writes_ += finished;
  for (size_t i = 0; i < finished; ++i) {
    queue_.pop_front();
    batch[i]->done = true;
    // Notified under the lock: the waiter cannot return (and free its Writer) before we let go.
    if (batch[i] != &w) batch[i]->cv.notify_one();
  }
  if (!queue_.empty()) queue_.front()->cv.notify_one();  // the next leader
}

size_t WriterQueue::batches() const {
  std::lock_guard lock(mu_);
  return batches_;
}

size_t WriterQueue::writes() const {
  std::lock_guard lock(mu_);
  return writes_;
}

size_t WriterQueue::pending() const {
  std::lock_guard lock(mu_);
  return queue_.size();
}

}  // namespace mufl::storage
