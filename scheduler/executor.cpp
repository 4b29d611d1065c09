#include "scheduler/executor.h"

#include <spdlog/spdlog.h>

#include <nlohmann/json.hpp>

#include "core/file_io.h"

namespace mufl::scheduler {

Executor::Executor(storage::Store& store, const Clock& clock, ExecutorOptions options, ExecutorObserver* observer)
    : store_(store), clock_(clock), options_(std::move(options)), observer_(observer ? observer : &no_observer_) {}

Executor::~Executor() { stop(); }

Status Executor::start() {
  auto requeued = store_.requeue_interrupted(clock_.now_unix_ms());
  if (!requeued.ok()) return requeued.status();
  if (*requeued > 0) spdlog::info("executor: {} interrupted activities go back to the queue", *requeued);
  std::lock_guard lock(mu_);
  stopping_ = false;
  for (const auto& d : options_.devices) workers_.emplace_back([this, d] { worker(d); });
  return Status::ok();
}

void Executor::stop() {
  std::vector<std::thread> workers;
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
    for (auto& [id, flag] : running_) flag->store(true);
    workers.swap(workers_);
  }
  wake_.notify_all();
  for (auto& t : workers) t.join();
}

void Executor::submitted() {
  {
    std::lock_guard lock(mu_);
    ++submissions_;
  }
  wake_.notify_all();
}

void Executor::cancelled(const std::string& activity_id) {
  std::lock_guard lock(mu_);
  if (auto it = running_.find(activity_id); it != running_.end()) it->second->store(true);
}

std::string Executor::activity_dir(const std::string& activity_id) const {
  return options_.data_dir + "/activities/" + activity_id;
}

void Executor::worker(const Device& device) {
  while (true) {
    uint64_t seen;
    {
      std::lock_guard lock(mu_);
      if (stopping_) return;
      seen = submissions_;
    }
    auto claimed = store_.claim_next_queued(device.name, clock_.now_unix_ms());
    if (!claimed.ok()) {
      spdlog::error("executor {}: cannot claim work: {}", device.name, claimed.status().to_string());
    } else if (*claimed) {
      train(**claimed, device);
      continue;
    }
    // Nothing to do (or the store failed): sleep until a submission or stop. A submission between
    // the claim and here bumped `submissions_`, so it is not missed.
    std::unique_lock lock(mu_);
    wake_.wait_for(lock, std::chrono::seconds(claimed.ok() ? 60 : 1),
                   [&] { return stopping_ || submissions_ != seen; });
  }
}

std::string Executor::report_json(const fl::RoundReport& r, int64_t rounds, const std::string& device) {
  nlohmann::json metrics = nlohmann::json::object();
  for (const auto& m : r.eval) metrics[m.task] = {{"loss", m.loss}, {m.metric, m.value}};
  return nlohmann::json{{"round", r.round},
                        {"rounds", rounds},
                        {"device", device},
                        {"attempts", r.attempts},
                        {"clients_sampled", r.clients_sampled},
                        {"clients_reported", r.clients_reported},
                        {"clients_dropped", r.clients_dropped},
                        {"samples", r.samples},
                        {"train_loss", r.train_loss},
                        {"learning_rate", r.learning_rate},
                        {"seconds", r.seconds},
                        {"metrics", metrics}}
      .dump();
}

void Executor::train(const Activity& activity, const Device& device) {
  const std::string& id = activity.id;
  auto stop_flag = std::make_shared<std::atomic<bool>>(false);
  {
    std::lock_guard lock(mu_);
    running_[id] = stop_flag;
    if (stopping_) stop_flag->store(true);
  }
  // A cancel that committed between the claim and the registration above found no flag to set.
  if (auto now = store_.get_activity(id, storage::Scope::all()); now.ok() && now->state != ActivityState::kTraining)
    stop_flag->store(true);
  observer_->activity_started(activity, device.name);
  ActivityState final_state = ActivityState::kTraining;  // still training: interrupted, resumes later
  auto fail = [&](const std::string& reason) {
    spdlog::warn("activity {} failed: {}", id, reason);
    Status s = store_.finish_training(id, ActivityState::kFailed, reason, std::nullopt, clock_.now_unix_ms());
    if (s.is_ok()) final_state = ActivityState::kFailed;
  };

  [&] {
    fl::JobConfig config = fl::JobConfig::from_spec(activity.spec);
    config.client_failure_rate = options_.client_failure_rate;
    config.max_round_attempts = options_.max_round_attempts;
    auto job = fl::FlJob::create(config, fl::RuntimeOptions{options_.data_dir, device.torch_device});
    if (!job.ok()) return fail("cannot start training: " + job.status().message());

    // Resume from the last checkpoint when there is one (after a restart).
    auto ckpt = store_.get_file(id, "checkpoint");
    if (ckpt.ok() && *ckpt) {
      auto bytes = read_file((*ckpt)->path);
      if (!bytes.ok() || sha256_hex(*bytes) != (*ckpt)->sha256)
        return fail("its checkpoint " + (*ckpt)->path + " is missing or corrupt");
      if (Status s = (*job)->restore(*bytes); !s.is_ok()) return fail("cannot resume: " + s.message());
      spdlog::info("activity {} resumes after round {} on {}", id, (*job)->rounds_done(), device.name);
    } else {
      spdlog::info("activity {} starts on {}", id, device.name);
    }

    const auto should_stop = [&] { return stop_flag->load(std::memory_order_relaxed); };
    while (!(*job)->finished()) {
      if (should_stop()) return;
      auto report = (*job)->run_round(should_stop);
      if (!report.ok()) return fail(report.status().message());
      if (report->stopped) return;
      auto bytes = (*job)->checkpoint();
      if (!bytes.ok()) return fail(bytes.status().message());
      const std::string path = activity_dir(id) + "/checkpoint.pt";
      if (Status s = write_file_durably(path, *bytes); !s.is_ok()) return fail(s.message());
      storage::StoredFile file{(*job)->rounds_done(), path, sha256_hex(*bytes), static_cast<int64_t>(bytes->size())};
      storage::RoundRecord record{report->round, report_json(*report, activity.spec.rounds, device.name), 0};
      Status recorded = store_.record_round(id, record, file, clock_.now_unix_ms());
      if (recorded.code() == Status::Code::kFailedPrecondition) return;  // cancelled meanwhile
      if (!recorded.is_ok()) return fail("cannot record round: " + recorded.message());
      observer_->round_finished(activity, device.name, *report);
    }

    auto model = (*job)->export_model();
    if (!model.ok()) return fail(model.status().message());
    const std::string path = activity_dir(id) + "/model.pt";
    if (Status s = write_file_durably(path, *model); !s.is_ok()) return fail(s.message());
    storage::StoredFile file{(*job)->rounds_done(), path, sha256_hex(*model), static_cast<int64_t>(model->size())};
    Status done = store_.finish_training(id, ActivityState::kSucceeded, "", file, clock_.now_unix_ms());
    if (done.is_ok()) {
      final_state = ActivityState::kSucceeded;
      spdlog::info("activity {} succeeded after {} rounds", id, (*job)->rounds_done());
    }
  }();

  if (final_state == ActivityState::kTraining && stop_flag->load()) {
    // Either a cancel (the store says cancelled) or a shutdown (still training, resumes later).
    auto now = store_.get_activity(id, storage::Scope::all());
    if (now.ok() && now->state == ActivityState::kCancelled) final_state = ActivityState::kCancelled;
  }
  if (final_state != ActivityState::kTraining) observer_->activity_ended(activity, final_state);
  std::lock_guard lock(mu_);
  running_.erase(id);
}

}  // namespace mufl::scheduler
