#pragma once
// The wire format of model weights between mufld and its remote clients and workers:
// safetensors (github.com/huggingface/safetensors), as docs/wire-format.md specifies it for mufl.
//
//   8 bytes    N, the header's length, unsigned little-endian
//   N bytes    the header: a UTF-8 JSON object, name → {"dtype", "shape", "data_offsets"},
//              plus an optional "__metadata__" object of string → string; padded with spaces
//   the rest   the tensors' bytes, little-endian, row-major, each at [begin, end) of this part
//
// mufl writes and accepts only F32 tensors. Decoding treats the bytes as hostile: every number
// in the header is checked before it is used (the header length against the body, each range
// against the data and against its dtype and shape, with overflow checks, and the ranges
// against each other: in order, without holes or overlap, covering the data exactly), every
// value must be finite, and a failure is an error naming the first problem, never a read out of
// bounds. Torch-free, so that the service, mufl-client and the tests share it.
#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "core/result.h"
#include "core/status.h"

namespace mufl::protocol {

struct NamedTensor {
  std::string name;
  std::vector<int64_t> shape;
  std::vector<float> values;  // row-major; size = product of shape (1 for a scalar, shape {})
};

struct TensorFile {
  std::vector<NamedTensor> tensors;             // in the order of their data
  std::map<std::string, std::string> metadata;  // "__metadata__"
};

// What decode accepts at most. The defaults hold mufl's models with room to spare.
struct DecodeLimits {
  uint64_t max_header_bytes = 1 << 20;     // 1 MiB of JSON
  uint64_t max_data_bytes = 256ull << 20;  // 256 MiB of tensors
  size_t max_tensors = 4096;
};

// The file's bytes. Tensors are written in the given order; names must be unique and not
// "__metadata__", shapes non-negative and matching values.size(). kInvalidArgument otherwise.
Result<std::string> encode_safetensors(const TensorFile& file);

// The tensors and metadata of `bytes`, or kInvalidArgument naming the first problem (see above).
Result<TensorFile> decode_safetensors(std::string_view bytes, const DecodeLimits& limits = {});

// One expected tensor: its name and shape.
struct TensorSpec {
  std::string name;
  std::vector<int64_t> shape;
};

// OK when `file` holds exactly the tensors of `expected` (any order) with those shapes;
// kInvalidArgument naming the first missing, extra or misshapen tensor otherwise.
Status check_tensors(const TensorFile& file, const std::vector<TensorSpec>& expected);

}  // namespace mufl::protocol
