#pragma once
// What a Slurm cluster offers mufld (issue 16: cluster GPUs as devices of mufld), read from
// Slurm itself. mufld asks
//
//   sinfo --Node --noheader --Format 'NodeList:0|,Partition:0|,StateLong:0|,CPUs:0|,Memory:0|,Gres:0|,GresUsed:0'
//
// (kSinfoFormat: node, partition, state, CPUs, memory in MB, GRES configured, GRES in use; one
// line per node and partition, '|' between fields because a field never holds one; width 0:
// no padding) and turns the answer into nodes and their GPUs by type. The long form (--Format),
// because only it has the GRES in use: the short form's %b is the node's active features in
// Slurm 22.05 ("(null)"), not GresUsed. Why sinfo and not `scontrol show node`: its fields are
// ours to choose and delimit, where scontrol's free text has values with spaces (OS=,
// Reason=). Pure functions: no process is started here, so the parser is tested on text.
//
// GRES strings, as Slurm 22.05 prints them: "gpu:v100:4", "gpu:4" (no type), "gpu:a100:2(S:0-1)"
// (socket binding), "gpu:a100:2,gpu:v100:2,shard:8" (a list), "gpu:v100:2(IDX:0-1)" (in use,
// with indices), "(null)" (none). Only "gpu" entries count; a GPU without a type is "gpu".
#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "core/result.h"

namespace mufl::scheduler {

// For `sinfo --Format` (long form).
inline constexpr const char* kSinfoFormat =
    "NodeList:0|,Partition:0|,StateLong:0|,CPUs:0|,Memory:0|,Gres:0|,GresUsed:0";

struct SlurmNode {
  std::string name;
  std::vector<std::string> partitions;  // in the order sinfo listed them ("debug*" → "debug")
  std::string state;                    // lower case, as sinfo's %T: "idle", "mixed", "allocated", "drained"…
  int64_t cpus = 0;
  int64_t memory_mb = 0;
  std::map<std::string, int64_t> gpus;       // GPU type → count configured ("v100" → 4)
  std::map<std::string, int64_t> gpus_used;  // GPU type → count allocated now
  // Whether Slurm would start work on it now: not down, drained, draining, failing, or
  // not responding (a state ending in '*').
  bool usable() const;
};

// The GPUs of a GRES string: type → count, summed over its entries. kInvalidArgument for a
// "gpu" entry whose count is not a number.
Result<std::map<std::string, int64_t>> parse_gpu_gres(std::string_view gres);

// sinfo's answer in kSinfoFormat → one node per name (its lines for several partitions
// merged), in the order first seen. Blank lines are skipped. kInvalidArgument naming the line
// for one with another number of fields or a bad number.
Result<std::vector<SlurmNode>> parse_sinfo_nodes(std::string_view text);

}  // namespace mufl::scheduler
