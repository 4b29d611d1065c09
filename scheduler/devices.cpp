#include "scheduler/devices.h"

#include <sstream>

namespace mufl::scheduler {
namespace {

bool parse_count(const std::string& s, int& out) {
  if (s.empty() || s.size() > 3 || s.find_first_not_of("0123456789") != std::string::npos) return false;
  out = std::stoi(s);
  return true;
}

}  // namespace

Result<std::vector<Device>> parse_devices(const std::string& spec, int cuda_count) {
  std::vector<Device> out;
  int cpu_slots = 0;
  auto add_cuda = [&](int i) { out.push_back({"cuda:" + std::to_string(i), "cuda:" + std::to_string(i)}); };
  if (spec == "none") return out;  // serve the API only; nothing trains
  if (spec.empty() || spec.back() == ',' || spec.front() == ',')
    return Status::invalid_argument("--devices: '" + spec + "' is not a list of cpu[:N], cuda[:I] or auto");
  std::stringstream items(spec);
  std::string item;
  while (std::getline(items, item, ',')) {
    const auto colon = item.find(':');
    const std::string kind = item.substr(0, colon);
    const std::string arg = colon == std::string::npos ? "" : item.substr(colon + 1);
    int n = 0;
    if (item.empty()) return Status::invalid_argument("--devices: '" + spec + "' has an empty item");
    if (kind == "auto" && arg.empty()) {
      for (int i = 0; i < cuda_count; ++i) add_cuda(i);
      if (cuda_count == 0) cpu_slots += 1;
    } else if (kind == "cpu") {
      if (arg.empty()) n = 1;
      else if (!parse_count(arg, n) || n < 1 || n > 64)
        return Status::invalid_argument("--devices: '" + item + "': cpu:N needs N from 1 to 64 slots");
      cpu_slots += n;
    } else if (kind == "cuda") {
      if (cuda_count == 0)
        return Status::invalid_argument("--devices: '" + item +
                                        "': this mufld's LibTorch sees no CUDA device (CPU build, or no GPU)");
      if (arg.empty()) {
        for (int i = 0; i < cuda_count; ++i) add_cuda(i);
      } else if (!parse_count(arg, n) || n >= cuda_count) {
        return Status::invalid_argument("--devices: '" + item + "': CUDA devices are 0 to " +
                                        std::to_string(cuda_count - 1));
      } else {
        add_cuda(n);
      }
    } else {
      return Status::invalid_argument("--devices: '" + item + "' is not cpu[:N], cuda[:I] or auto");
    }
  }
  for (int i = 0; i < cpu_slots; ++i) out.push_back({"cpu:" + std::to_string(i), "cpu"});
  if (out.empty()) return Status::invalid_argument("--devices names no device");
  return out;
}

}  // namespace mufl::scheduler
