#pragma once
// Devices that run training: CPU slots (each a share of the machine's threads) and CUDA GPUs.
// `--devices` names them: "cpu:2" (two CPU slots), "cuda" (every CUDA GPU LibTorch sees),
// "cuda:0,cpu:1" (a list), "auto" (every GPU, else one CPU slot), or "none" (no device: mufld
// serves the API and queues work, but trains nothing; for API-only nodes and the API benchmark).
#include <string>
#include <vector>

#include "core/result.h"

namespace mufl::scheduler {

struct Device {
  std::string name;         // "cpu:0", "cuda:1", "slurm:node7:v100:0": shown in progress and metrics
  std::string torch_device; // what LibTorch calls it: "cpu", "cuda:1" ("cuda" on a cluster node)
  // A GPU of a Slurm cluster (scheduler/cluster/cluster_devices.h): its node and its GRES
  // ("gpu:v100"). Both empty for a device of this host.
  std::string host = {};
  std::string gres = {};
  bool on_cluster() const { return !gres.empty(); }
};

// `cuda_count`: how many CUDA devices LibTorch reports (0 on a CPU build).
// kInvalidArgument for a bad spec or a CUDA device that is not there.
Result<std::vector<Device>> parse_devices(const std::string& spec, int cuda_count);

}  // namespace mufl::scheduler
