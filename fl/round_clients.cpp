#include "fl/round_clients.h"

#include <numeric>

namespace mufl::fl {

Result<std::vector<int64_t>> SimulatedClients::candidates(const std::function<bool()>& /*should_stop*/) {
  std::vector<int64_t> ids(partition_.size());
  std::iota(ids.begin(), ids.end(), 0);
  return ids;
}

Status SimulatedClients::train(const Weights& global, const LocalTrainOptions& options, const RoundDraw& draw,
                               const std::vector<ClientTask>& tasks, const std::function<void(ClientResult)>& report,
                               const std::function<bool()>& should_stop, bool& stopped) {
  for (const ClientTask& task : tasks) {
    const auto& samples = partition_.at(static_cast<size_t>(task.client));
    if (fedema_) {
      auto start = fedema_->start(task.client, draw.round, global, worker_);
      if (!start.ok()) return start.status();
    } else {
      set_weights(worker_, global);
    }
    LocalResult r = train_local(worker_, data_, samples, options, task.seed, &global, should_stop);
    if (r.stopped) {
      stopped = true;
      return Status::ok();
    }
    if (fedema_)
      if (Status kept = fedema_->keep(task.client, draw.round, worker_); !kept.is_ok()) return kept;
    ClientResult result;
    result.client = task.client;
    result.update = {get_weights(worker_), static_cast<int64_t>(samples.size())};
    result.local = std::move(r);
    report(std::move(result));
  }
  return Status::ok();
}

}  // namespace mufl::fl
