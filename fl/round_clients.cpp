#include "fl/round_clients.h"

#include <numeric>

namespace mufl::fl {

Result<std::vector<int64_t>> SimulatedClients::candidates(const std::function<bool()>& /*should_stop*/) {
  std::vector<int64_t> ids(partition_.size());
  std::iota(ids.begin(), ids.end(), 0);
  return ids;
}

Result<std::vector<ClientResult>> SimulatedClients::train(const Weights& global, const LocalTrainOptions& options,
                                                          const RoundDraw& /*draw*/,
                                                          const std::vector<ClientTask>& tasks,
                                                          const std::function<bool()>& should_stop, bool& stopped) {
  std::vector<ClientResult> out;
  for (const ClientTask& task : tasks) {
    const auto& samples = partition_.at(static_cast<size_t>(task.client));
    set_weights(worker_, global);
    LocalResult r = train_local(worker_, data_, samples, options, task.seed, &global, should_stop);
    if (r.stopped) {
      stopped = true;
      return out;
    }
    out.push_back({task.client, {get_weights(worker_), static_cast<int64_t>(samples.size())}, std::move(r), 0, {}});
  }
  return out;
}

}  // namespace mufl::fl
