#pragma once
// The Alibaba GPU cluster trace 2023 ("openb", data/alibaba-gpu-v2023/): pods and GPU nodes,
// as mufl-sim replays them. Columns and their meaning: data/alibaba-gpu-v2023/ATTRIBUTION.md.
//
// Thread safety: plain values; the readers keep no state.
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "core/result.h"

namespace mufl::scheduler {

struct TracePod {
  std::string name;
  double cpu_milli = 0;
  double memory_mib = 0;
  int num_gpu = 0;        // whole GPUs (0–8); 1 with gpu_milli < 1000 is a share of one GPU
  int gpu_milli = 0;      // share of one GPU in milli when num_gpu == 1
  std::vector<std::string> gpu_spec;  // allowed GPU models; empty = any
  std::string qos;        // LS, Burstable, BE, Guaranteed
  std::string phase;      // Running, Failed, Pending, Succeeded
  int64_t creation_s = 0;
  int64_t deletion_s = 0;
  std::optional<int64_t> scheduled_s;  // absent for pods that never ran (Pending)

  // Run time in the trace: deletion − scheduled; for a pod never scheduled, deletion −
  // creation (how long it was wanted). At least 1 s.
  int64_t duration_s() const;
};

struct TraceNode {
  std::string name;
  double cpu_milli = 0;
  double memory_mib = 0;
  int gpus = 0;
  std::string model;  // P100, T4, V100M16, V100M32, A10, G2, G3, ...
};

// Reads openb_pod_list_*.csv (header `name,cpu_milli,memory_mib,num_gpu,gpu_milli,gpu_spec,qos,
// pod_phase,creation_time,deletion_time,scheduled_time`, columns in any order, LF or CRLF).
// kNotFound for a missing file; kInvalidArgument naming file and line for a missing column, a
// row with the wrong field count, a bad or negative number, num_gpu outside 0..64, gpu_milli
// outside 0..1000, or deletion before creation.
Result<std::vector<TracePod>> read_trace_pods(const std::string& path);

// Reads openb_node_list_*.csv (header `sn,cpu_milli,memory_mib,gpu,model`). Same failures.
Result<std::vector<TraceNode>> read_trace_nodes(const std::string& path);

}  // namespace mufl::scheduler
