#include "scheduler/cluster/cluster_devices.h"

#include <cctype>

#include "scheduler/energy/power_profile.h"

namespace mufl::scheduler {
namespace {

bool same_ignoring_case(const std::string& a, const std::string& b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i)
    if (std::tolower(static_cast<unsigned char>(a[i])) != std::tolower(static_cast<unsigned char>(b[i]))) return false;
  return true;
}

}  // namespace

std::vector<ClusterDevice> cluster_devices(const std::vector<SlurmNode>& nodes) {
  std::vector<ClusterDevice> out;
  for (const SlurmNode& node : nodes)
    for (const auto& [type, count] : node.gpus)
      for (int64_t i = 0; i < count; ++i) {
        Device d;
        d.name = kSlurmDevicePrefix + node.name + ":" + type + ":" + std::to_string(i);
        d.torch_device = "cuda";
        d.host = node.name;
        d.gres = "gpu:" + type;
        out.push_back({d, node.usable()});
      }
  return out;
}

std::string power_profile_of(const Device& device, const std::string& gpu_fallback) {
  if (device.torch_device == "cpu") return "cpu";
  if (device.on_cluster()) {
    const std::string type = device.gres.substr(device.gres.find(':') + 1);
    for (const PowerProfile& p : builtin_power_profiles())
      if (same_ignoring_case(p.model, type)) return p.model;
  }
  return gpu_fallback;
}

}  // namespace mufl::scheduler
