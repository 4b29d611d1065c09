#pragma once
// What a client's update must be before it may be aggregated (docs/clients.md, "Lease"): a
// safetensors file (docs/wire-format.md) holding exactly the tensors of the lease's weights,
// F32, all finite, no larger than those tensors imply. A refusal says which rule failed, as the reason
// label of mufl_client_updates_rejected_total and a problem's detail.
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/result.h"
#include "protocol/safetensors.h"

namespace mufl::federation {

struct UpdateRejection {
  std::string reason;  // too_large, malformed, non_finite, tensors
  std::string detail;  // for the problem+json, naming the first fault
};

// The header an update may have beyond its tensors' names: the report travels in metadata.
inline constexpr size_t kUpdateHeaderSlack = 256 * 1024;

// The decoded update, or why it is refused.
struct CheckedUpdate {
  std::optional<protocol::TensorFile> file;
  UpdateRejection rejection;  // meaningful when !file
};
CheckedUpdate check_update(std::string_view body, const std::vector<protocol::TensorSpec>& expected);

// The largest body an update for `expected` may have (bytes): its tensors, their header
// entries, and kUpdateHeaderSlack.
size_t max_update_bytes(const std::vector<protocol::TensorSpec>& expected);

}  // namespace mufl::federation
