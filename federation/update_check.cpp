#include "federation/update_check.h"

namespace mufl::federation {
namespace {

uint64_t data_bytes(const std::vector<protocol::TensorSpec>& expected) {
  uint64_t bytes = 0;
  for (const auto& t : expected) {
    uint64_t n = 4;  // F32
    for (int64_t d : t.shape) n *= static_cast<uint64_t>(d);
    bytes += n;
  }
  return bytes;
}

uint64_t header_bytes(const std::vector<protocol::TensorSpec>& expected) {
  uint64_t bytes = kUpdateHeaderSlack;
  for (const auto& t : expected) bytes += t.name.size() + 128 + 24 * t.shape.size();
  return bytes;
}

}  // namespace

size_t max_update_bytes(const std::vector<protocol::TensorSpec>& expected) {
  return static_cast<size_t>(8 + header_bytes(expected) + data_bytes(expected));
}

CheckedUpdate check_update(std::string_view body, const std::vector<protocol::TensorSpec>& expected) {
  if (body.size() > max_update_bytes(expected))
    return {std::nullopt,
            {"too_large", "the update has " + std::to_string(body.size()) + " bytes; the model implies at most " +
                              std::to_string(max_update_bytes(expected))}};
  protocol::DecodeLimits limits;
  limits.max_header_bytes = header_bytes(expected);
  limits.max_data_bytes = data_bytes(expected);
  limits.max_tensors = expected.size();
  auto file = protocol::decode_safetensors(body, limits);
  if (!file.ok()) {
    const std::string why = file.status().message();
    const bool non_finite = why.find(" holds NaN at ") != std::string::npos || why.find(" holds Inf at ") != std::string::npos;
    return {std::nullopt, {non_finite ? "non_finite" : "malformed", why}};
  }
  if (Status s = protocol::check_tensors(*file, expected); !s.is_ok())
    return {std::nullopt, {"tensors", s.message()}};
  return {std::move(*file), {}};
}

}  // namespace mufl::federation
