#pragma once
// RemoteClients: the RoundClients of a job on a federation (fl/client_pool.h). It turns the
// round's global weights into safetensors, each task into an Assignment (the same settings
// and seed a simulated client trains with), lets the pool hand them out, and decodes the
// updates that come back. A client trains with train_assignment(), which runs the same
// train_local as SimulatedClients: one implementation of local training, not two.
// Internal to fl/ (torch types).
#include <memory>

#include "fl/client_pool.h"
#include "fl/round_clients.h"

namespace mufl::fl {

class RemoteClients final : public RoundClients {
 public:
  // `shape` is a model of the job's shape (its parameter names and shapes); it must outlive this.
  // `job` names the job's draws (RemoteDraw::job); clients have `timeout_ms` to report, and
  // a round waits as long for `min_clients` of them to be online.
  RemoteClients(MultiTaskNet& shape, std::shared_ptr<ClientPool> pool, std::string job, int64_t timeout_ms,
                int64_t min_clients)
      : shape_(shape), pool_(std::move(pool)), job_(std::move(job)), timeout_ms_(timeout_ms), min_clients_(min_clients) {}

  Result<std::vector<int64_t>> candidates(const std::function<bool()>& should_stop) override {
    return pool_->candidates(static_cast<size_t>(min_clients_), timeout_ms_, should_stop);
  }
  // An update that does not decode, or does not fit the model, is left out as a client that
  // did not report (the pool's checks make that rare: they refuse it at upload).
  Status train(const Weights& global, const LocalTrainOptions& options, const RoundDraw& draw,
               const std::vector<ClientTask>& tasks, const std::function<void(ClientResult)>& report,
               const std::function<bool()>& should_stop, bool& stopped) override;
  bool remote() const override { return true; }
  // Personalised epochs (fl/training.h): each client's assignment carries the pool's largest
  // client's samples, read each round, so that a client trains epochs by its own data volume.
  void set_personalized_epochs(bool on) { personalized_epochs_ = on; }
  // FedEMA (fl/fedema.h): each client starts from the EMA of the model it kept for this job
  // and the global one (Assignment::local_update), λ = `lambda` (0: auto). Default "fedavg".
  void set_local_update(std::string rule, double lambda) {
    local_update_ = std::move(rule);
    ema_lambda_ = lambda;
  }

 private:
  Result<ClientResult> decode(int64_t client, std::string_view update) const;

  MultiTaskNet& shape_;
  std::shared_ptr<ClientPool> pool_;
  std::string job_;
  int64_t timeout_ms_;
  int64_t min_clients_;
  bool personalized_epochs_ = false;
  std::string local_update_ = "fedavg";
  double ema_lambda_ = 0;
};

}  // namespace mufl::fl
