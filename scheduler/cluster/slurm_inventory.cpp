#include "scheduler/cluster/slurm_inventory.h"

#include <algorithm>
#include <cctype>
#include <charconv>

#include "core/strings.h"

namespace mufl::scheduler {
namespace {

std::string_view trim(std::string_view s) {
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.front()))) s.remove_prefix(1);
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back()))) s.remove_suffix(1);
  return s;
}

bool to_int(std::string_view s, int64_t& out) {
  const auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), out);
  return ec == std::errc() && end == s.data() + s.size() && out >= 0;
}

std::string lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

}  // namespace

bool SlurmNode::usable() const {
  if (state.empty() || state.back() == '*') return false;  // not responding
  for (const char* bad : {"down", "drain", "fail", "maint", "future", "unknown", "reboot"})
    if (state.find(bad) != std::string::npos) return false;
  return true;
}

Result<std::map<std::string, int64_t>> parse_gpu_gres(std::string_view gres) {
  std::map<std::string, int64_t> gpus;
  gres = trim(gres);
  if (gres.empty() || gres == "(null)") return gpus;
  // Entries are separated by commas outside parentheses ("gpu:a100:2(S:0-1),gpu:v100:2(IDX:0,2)").
  std::vector<std::string_view> entries;
  int depth = 0;
  size_t start = 0;
  for (size_t i = 0; i <= gres.size(); ++i) {
    if (i == gres.size() || (gres[i] == ',' && depth == 0)) {
      entries.push_back(gres.substr(start, i - start));
      start = i + 1;
    } else if (gres[i] == '(') {
      ++depth;
    } else if (gres[i] == ')') {
      depth = std::max(0, depth - 1);
    }
  }
  for (std::string_view entry : entries) {
    entry = trim(entry.substr(0, entry.find('(')));
    const auto parts = split_fields(entry, ':');
    if (parts.empty() || parts[0] != "gpu") continue;  // shard, mps, license…
    // gpu:COUNT, gpu:TYPE:COUNT; "gpu" alone means one.
    const std::string type = parts.size() >= 3 ? std::string(parts[1]) : "gpu";
    int64_t count = 1;
    if (parts.size() >= 2 && !to_int(parts.back(), count))
      return Status::invalid_argument("GRES entry '" + std::string(entry) + "': the count is not a number");
    gpus[type] += count;
  }
  return gpus;
}

Result<std::vector<SlurmNode>> parse_sinfo_nodes(std::string_view text) {
  std::vector<SlurmNode> nodes;
  std::map<std::string, size_t, std::less<>> index;
  int line_no = 0;
  for (std::string_view line : split_fields(text, '\n')) {
    ++line_no;
    if (trim(line).empty()) continue;
    const std::string where = "sinfo line " + std::to_string(line_no);
    const auto f = split_fields(line, '|');
    if (f.size() != 7) return Status::invalid_argument(where + ": " + std::to_string(f.size()) + " fields, not 7");
    const std::string name(trim(f[0]));
    if (name.empty()) return Status::invalid_argument(where + ": no node name");
    auto [it, fresh] = index.try_emplace(name, nodes.size());
    if (fresh) {
      SlurmNode n;
      n.name = name;
      n.state = lower(trim(f[2]));
      if (!to_int(trim(f[3]), n.cpus) || !to_int(trim(f[4]), n.memory_mb))
        return Status::invalid_argument(where + ": CPUs or memory is not a number");
      auto gpus = parse_gpu_gres(f[5]);
      if (!gpus.ok()) return Status::invalid_argument(where + ": " + gpus.status().message());
      auto used = parse_gpu_gres(f[6]);
      if (!used.ok()) return Status::invalid_argument(where + ": " + used.status().message());
      n.gpus = std::move(*gpus);
      n.gpus_used = std::move(*used);
      nodes.push_back(std::move(n));
    }
    std::string partition(trim(f[1]));
    if (!partition.empty() && partition.back() == '*') partition.pop_back();  // the default partition
    auto& parts = nodes[it->second].partitions;
    if (!partition.empty() && std::find(parts.begin(), parts.end(), partition) == parts.end())
      parts.push_back(partition);
  }
  return nodes;
}

}  // namespace mufl::scheduler
