#pragma once
// ClusterWatch: keeps mufld's devices in step with a Slurm cluster (issue 16). It asks Slurm
// for its nodes (SlurmClient::nodes) at start() and then every `period_ms`; every GPU it has
// not seen becomes a device of the inventory, with the power profile of its GRES type for
// placement (scheduler/cluster/cluster_devices.h: power_profile_of) and a ReportedMeter: each
// round's joules are what the worker that ran it measured (NVML, else that profile's model),
// and is handed to `on_added` (the executor gives it a worker). A device
// whose node Slurm says takes no work becomes unavailable until the node is back.
//
// A failed ask (Slurm down, sinfo missing) changes nothing: the devices keep the state of the
// last answer, and the error is kept for last_error() (logged once per change).
//
// Thread safety: all methods may be called from any thread. The callback runs on the thread
// that refreshes (start()'s own thread, or the caller of refresh()).
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "core/clock.h"
#include "core/status.h"
#include "scheduler/cluster/slurm_client.h"
#include "scheduler/device_inventory.h"

namespace mufl::scheduler {

struct ClusterWatchOptions {
  int64_t period_ms = 30'000;
  std::string gpu_profile = "V100";  // a GPU whose GRES type names no power profile
};

class ClusterWatch {
 public:
  // `slurm`, `inventory` and `clock` must outlive the watch.
  ClusterWatch(SlurmClient& slurm, DeviceInventory& inventory, const Clock& clock, ClusterWatchOptions options,
               std::function<void(const std::vector<Device>&)> on_added);
  ~ClusterWatch();  // stops the thread

  // Asks Slurm once and applies its answer. The answer's error, if any (also kept).
  Status refresh();
  // refresh() now, then every period on a thread of its own. Returns the first refresh's status.
  Status start();
  void stop();
  // The last refresh's error; OK after a good one.
  Status last_error() const;

 private:
  SlurmClient& slurm_;
  DeviceInventory& inventory_;
  const Clock& clock_;
  ClusterWatchOptions options_;
  std::function<void(const std::vector<Device>&)> on_added_;

  mutable std::mutex mu_;
  std::condition_variable cv_;
  bool stopping_ = false;
  Status last_error_;
  std::thread thread_;
};

}  // namespace mufl::scheduler
