#include "scheduler/training_job.h"

namespace mufl::scheduler {
namespace {

// A TrainingJob that is an fl::FlJob.
class LocalJob final : public TrainingJob {
 public:
  explicit LocalJob(std::unique_ptr<fl::FlJob> job) : job_(std::move(job)) {}
  Result<fl::RoundReport> run_round(const std::function<bool()>& should_stop) override {
    return job_->run_round(should_stop);
  }
  Result<std::string> checkpoint() const override { return job_->checkpoint(); }
  Status restore(const std::string& bytes) override { return job_->restore(bytes); }
  Result<std::string> export_model(const std::string& head_key) const override {
    return job_->export_model(head_key);
  }
  Result<std::vector<std::string>> export_cluster_models(const std::string& head_key) const override {
    return job_->export_cluster_models(head_key);
  }
  const std::vector<std::string>& heads() const override { return job_->heads(); }
  int64_t rounds_done() const override { return job_->rounds_done(); }
  void set_affinity_every(int n) override { job_->set_affinity_every(n); }
  void set_final_heads(const std::vector<std::string>& keys) override { job_->set_final_heads(keys); }
  Status release_client_states(int64_t oldest_round) override { return job_->release_client_states(oldest_round); }
  const fl::FlJob& job() const { return *job_; }

 private:
  std::unique_ptr<fl::FlJob> job_;
};

Result<std::unique_ptr<TrainingJob>> wrap(Result<std::unique_ptr<fl::FlJob>> made) {
  if (!made.ok()) return made.status();
  return std::unique_ptr<TrainingJob>(std::make_unique<LocalJob>(std::move(*made)));
}

class LocalTraining final : public TrainingBackend {
 public:
  Result<std::unique_ptr<TrainingJob>> create(const fl::JobConfig& config, const fl::RuntimeOptions& runtime) override {
    return wrap(fl::FlJob::create(config, runtime));
  }
  Result<std::unique_ptr<TrainingJob>> derive(const TrainingJob& source, const fl::JobConfig& config,
                                              const fl::RuntimeOptions& runtime) override {
    const auto* local = dynamic_cast<const LocalJob*>(&source);
    if (!local) return Status::internal("derive: the source job is not a local job");
    return wrap(fl::FlJob::derive(local->job(), config, runtime));
  }
};

}  // namespace

TrainingBackend& local_training() {
  static LocalTraining backend;
  return backend;
}

}  // namespace mufl::scheduler
