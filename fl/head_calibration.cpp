#include "fl/head_calibration.h"

#include "fl/seeds.h"
#include "fl/strategy.h"

namespace mufl::fl {

Result<int64_t> calibrate_heads(MultiTaskNet& global, MultiTaskNet& worker, const TaskData& data,
                                const Partition& partition, const std::vector<ClientTask>& clients,
                                const std::vector<size_t>& heads, LocalTrainOptions options,
                                const std::function<bool()>& should_stop, bool& stopped) {
  options.head_only = heads;
  options.epochs = 1;
  options.affinity_every = 0;
  options.prox_mu = 0;
  options.personalize_max_samples = 0;
  const Weights start = get_weights(global);
  UpdateSum sum;
  int64_t trained = 0;
  for (const ClientTask& task : clients) {
    const auto& samples = partition.at(static_cast<size_t>(task.client));
    if (samples.empty()) continue;
    set_weights(worker, start);
    const LocalResult r = train_local(worker, data, samples, options, mix(task.seed ^ 0x63616c6962ULL),  // "calib"
                                      nullptr, should_stop);
    if (r.stopped) {
      stopped = true;
      return trained;
    }
    trained += r.samples;
    sum.add({get_weights(worker), static_cast<int64_t>(samples.size())});
  }
  // Every client started from `start` and changed only the chosen heads, so the mean of the
  // rest is `start` again, exactly (n·w is exact in float64 and so is its quotient by Σn).
  if (sum.count() > 0) set_weights(global, sum.mean());
  return trained;
}

}  // namespace mufl::fl
