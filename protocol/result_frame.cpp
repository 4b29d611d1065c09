#include "protocol/result_frame.h"

#include <cstdint>

namespace mufl::protocol {
namespace {
constexpr size_t kHeader = 8;
}  // namespace

Result<ResultFrame> split_result_frame(std::string_view body) {
  if (body.size() < kHeader) return Status::invalid_argument("the result is shorter than its 8-byte header");
  uint64_t n = 0;
  for (size_t i = 0; i < kHeader; ++i) n |= static_cast<uint64_t>(static_cast<unsigned char>(body[i])) << (8 * i);
  if (n > body.size() - kHeader)
    return Status::invalid_argument("the result's header says " + std::to_string(n) + " bytes of report, and " +
                                    std::to_string(body.size() - kHeader) + " follow");
  return ResultFrame{body.substr(kHeader, n), body.substr(kHeader + n)};
}

std::string make_result_frame(std::string_view report_json, std::string_view checkpoint) {
  std::string out(kHeader, '\0');
  const uint64_t n = report_json.size();
  for (size_t i = 0; i < kHeader; ++i) out[i] = static_cast<char>((n >> (8 * i)) & 0xff);
  out.reserve(kHeader + report_json.size() + checkpoint.size());
  out.append(report_json);
  out.append(checkpoint);
  return out;
}

}  // namespace mufl::protocol
