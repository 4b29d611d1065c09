#pragma once
// The body of a cluster worker's result (docs/cluster.md, "The worker protocol"): one request,
// so that a round's report and its checkpoint are recorded together or not at all.
//
//   8 bytes: N, unsigned little-endian   (as safetensors frames its header)
//   N bytes: the report, JSON
//   the rest: the checkpoint
//
// mufld splits it (scheduler/cluster/worker_desk.h); mufl-worker makes it (worker/). Pure.
#include <string>
#include <string_view>

#include "core/result.h"

namespace mufl::protocol {

struct ResultFrame {
  std::string_view report_json;
  std::string_view checkpoint;
};

// Views into `body`. kInvalidArgument for a body shorter than its header says.
Result<ResultFrame> split_result_frame(std::string_view body);
std::string make_result_frame(std::string_view report_json, std::string_view checkpoint);

}  // namespace mufl::protocol
