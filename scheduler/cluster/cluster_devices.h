#pragma once
// A Slurm cluster's GPUs as devices of mufld (issue 16). Each GPU Slurm reports on a node
// becomes one device, "slurm:<node>:<type>:<i>" (i from 0 to the node's count of that type),
// with host = the node and gres = "gpu:<type>". The device is where placement puts a group;
// the group's rounds then run in a `mufl-worker` job that mufld submits to Slurm on that node
// with --gres=gpu:<type>:1 (scheduler/cluster/slurm_client.h).
//
// A node that Slurm says takes no work (down, drained, not responding: SlurmNode::usable)
// keeps its devices, unavailable, so that their history and their group stay visible; a GPU
// that disappears from the node's GRES count is unavailable likewise.
#include <string>
#include <vector>

#include "scheduler/cluster/slurm_inventory.h"
#include "scheduler/devices.h"

namespace mufl::scheduler {

inline constexpr const char* kSlurmDevicePrefix = "slurm:";

struct ClusterDevice {
  Device device;
  bool usable = true;  // Slurm would start work on its node now
};

// Every GPU of every node, in the order sinfo listed the nodes, then by GPU type and index.
std::vector<ClusterDevice> cluster_devices(const std::vector<SlurmNode>& nodes);

// The power profile (scheduler/energy/power_profile.h) of a device: for a cluster GPU the one
// named like its GRES type, case-insensitively ("gpu:v100" → "V100"); else `gpu_fallback` for
// a GPU (a type no profile is named after, or a local CUDA device) and "cpu" for a CPU slot.
std::string power_profile_of(const Device& device, const std::string& gpu_fallback);

}  // namespace mufl::scheduler
