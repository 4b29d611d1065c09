// libFuzzer target of the weights' wire format (protocol/safetensors.h): any bytes decode to
// finite tensors that encode and decode again to the same file, or fail with kInvalidArgument.
// Never a crash, a read out of bounds (ASan) or undefined behaviour (UBSan). Run:
// MUFL_FUZZ_TARGET=safetensors scripts/fuzz; its seeds and crashes are replayed by CTest's
// fuzz_safetensors_replay.
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "protocol/safetensors.h"

using namespace mufl;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view bytes(reinterpret_cast<const char*>(data), size);
  auto file = protocol::decode_safetensors(bytes);
  if (!file.ok()) {
    if (file.status().code() != Status::Code::kInvalidArgument) std::abort();
    return 0;
  }
  for (const auto& t : file->tensors)
    for (float v : t.values)
      if (!std::isfinite(v)) std::abort();
  auto again = protocol::encode_safetensors(*file);
  if (!again.ok()) std::abort();
  auto back = protocol::decode_safetensors(*again);
  if (!back.ok() || back->tensors.size() != file->tensors.size() || back->metadata != file->metadata) std::abort();
  for (size_t i = 0; i < back->tensors.size(); ++i) {
    const auto &a = file->tensors[i], &b = back->tensors[i];
    if (a.name != b.name || a.shape != b.shape || a.values != b.values) std::abort();
  }
  return 0;
}
