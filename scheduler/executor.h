#pragma once
// Executor: trains queued activities on the devices, one activity per device at a time.
// Each device has a worker thread that claims the next queued activity (highest priority, then
// oldest) in a transaction, trains it round by round through fl::FlJob, and after every round
// writes a checkpoint file (temp, fsync, rename) and records the round with the file's SHA-256 in
// one transaction. At the end it exports the model the same way and marks the activity
// succeeded; a failure marks it failed with the reason.
//
// Crash safety: at start(), activities a previous process left in training go back to the queue
// and resume from their last checkpoint; per-round randomness makes the result the same as an
// unbroken run. Cancel: cancelled() stops the activity's training within one batch.
//
// Thread safety: all public methods may be called from any thread.
#include <atomic>
#include <condition_variable>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "core/clock.h"
#include "fl/fl_job.h"
#include "scheduler/devices.h"
#include "storage/store.h"

namespace mufl::scheduler {

struct ExecutorOptions {
  std::vector<Device> devices;
  std::string data_dir = "var";  // data sets: <data_dir>/datasets/; files: <data_dir>/activities/<id>/
  double client_failure_rate = 0.0;  // simulated client dropouts, for every job
  int max_round_attempts = 3;        // draws of a round before the activity fails
};

// What the executor reports as it goes (metrics); every method has a no-op default.
class ExecutorObserver {
 public:
  virtual ~ExecutorObserver() = default;
  virtual void round_finished(const Activity&, const std::string& /*device*/, const fl::RoundReport&) {}
  virtual void activity_started(const Activity&, const std::string& /*device*/) {}
  virtual void activity_ended(const Activity&, ActivityState /*final state*/) {}
};

class Executor {
 public:
  Executor(storage::Store& store, const Clock& clock, ExecutorOptions options, ExecutorObserver* observer = nullptr);
  ~Executor();  // stop()s

  // Requeues interrupted activities and starts one worker per device.
  Status start();
  // Stops the workers: training in progress stops within one batch and stays recorded as
  // training, to be resumed by the next start(). Idempotent.
  void stop();

  // Wakes an idle worker (a new activity is queued).
  void submitted();
  // Stops the activity's training if it runs (it was cancelled in the store already).
  void cancelled(const std::string& activity_id);

  // Where an activity's files live.
  std::string activity_dir(const std::string& activity_id) const;

 private:
  void worker(const Device& device);
  void train(const Activity& activity, const Device& device);
  // The JSON of a round report, as stored and served.
  static std::string report_json(const fl::RoundReport& r, int64_t rounds, const std::string& device);

  storage::Store& store_;
  const Clock& clock_;
  ExecutorOptions options_;
  ExecutorObserver* observer_;
  ExecutorObserver no_observer_;

  std::mutex mu_;
  std::condition_variable wake_;
  bool stopping_ = false;
  uint64_t submissions_ = 0;  // bumped by submitted(): a worker that found nothing waits for a change
  std::map<std::string, std::shared_ptr<std::atomic<bool>>> running_;  // activity id → its stop flag
  std::vector<std::thread> workers_;
};

}  // namespace mufl::scheduler
