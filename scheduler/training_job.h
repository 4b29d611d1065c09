#pragma once
// TrainingJob and TrainingBackend: the seam between the executor and where a group's rounds
// run. The executor drives a job round by round (run, checkpoint, record) and never sees how
// a round is trained; the backend builds jobs. local_training() is fl::FlJob in this process,
// the default. Tests wrap it to make a round fail (tests/scheduler/executor_faults_test.cpp);
// other backends (remote clients, cluster workers) plug in here.
//
// Contract: no method throws; failures are Status values, classified as fl::FlJob documents
// (kFailedPrecondition: the same settings fail again; kInternal: a failure of the runtime,
// worth a retry from a checkpoint). After a failed run_round the job's state is unspecified:
// the caller builds it again from a checkpoint.
// Thread safety: one thread at a time per job; a backend may be used from any thread.
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "core/result.h"
#include "fl/fl_job.h"

namespace mufl::scheduler {

class TrainingJob {
 public:
  virtual ~TrainingJob() = default;
  virtual Result<fl::RoundReport> run_round(const std::function<bool()>& should_stop) = 0;
  virtual Result<std::string> checkpoint() const = 0;
  virtual Status restore(const std::string& bytes) = 0;
  virtual Result<std::string> export_model(const std::string& head_key) const = 0;
  // As fl::FlJob::export_cluster_models: head `head_key` of every client cluster's model, in
  // cluster order; empty for a job without clusters.
  virtual Result<std::vector<std::string>> export_cluster_models(const std::string& /*head_key*/) const {
    return std::vector<std::string>{};
  }
  virtual const std::vector<std::string>& heads() const = 0;
  virtual int64_t rounds_done() const = 0;
  virtual void set_affinity_every(int n) = 0;
  // As fl::FlJob::set_final_heads: the heads whose members end with the next round.
  virtual void set_final_heads(const std::vector<std::string>& keys) = 0;
  // As fl::FlJob::release_client_states: the checkpoints the caller trusts are those of rounds
  // ≥ `oldest_round`. A job that keeps no client states has nothing to do.
  virtual Status release_client_states(int64_t /*oldest_round*/) { return Status::ok(); }
};

class TrainingBackend {
 public:
  virtual ~TrainingBackend() = default;
  // As fl::FlJob::create.
  virtual Result<std::unique_ptr<TrainingJob>> create(const fl::JobConfig& config,
                                                      const fl::RuntimeOptions& runtime) = 0;
  // As fl::FlJob::derive. REQUIRES: `source` was made by this backend.
  virtual Result<std::unique_ptr<TrainingJob>> derive(const TrainingJob& source, const fl::JobConfig& config,
                                                      const fl::RuntimeOptions& runtime) = 0;
};

// fl::FlJob in this process. Lives forever.
TrainingBackend& local_training();

}  // namespace mufl::scheduler
