#include "core/ids.h"

#include <cstdint>

namespace mufl {
namespace {
constexpr char kAlphabet[] = "0123456789abcdefghjkmnpqrstvwxyz";  // Crockford base32, lower case
constexpr size_t kRandomBytes = 12;                               // 96 bits
constexpr size_t kEncodedChars = 20;                              // ceil(96 / 5)
}  // namespace

std::string new_id(std::string_view prefix, RandomSource& rng) {
  uint8_t raw[kRandomBytes];
  rng.fill(raw, sizeof raw);
  std::string id(prefix);
  id += '_';
  uint32_t buffer = 0;
  int bits = 0;
  size_t emitted = 0;
  for (uint8_t byte : raw) {
    buffer = (buffer << 8) | byte;
    bits += 8;
    while (bits >= 5 && emitted < kEncodedChars) {
      id += kAlphabet[(buffer >> (bits - 5)) & 31];
      bits -= 5;
      ++emitted;
    }
  }
  if (emitted < kEncodedChars) id += kAlphabet[(buffer << (5 - bits)) & 31];
  return id;
}

bool looks_like_id(std::string_view id, std::string_view prefix) {
  if (id.size() != prefix.size() + 1 + kEncodedChars) return false;
  if (id.substr(0, prefix.size()) != prefix || id[prefix.size()] != '_') return false;
  for (char c : id.substr(prefix.size() + 1)) {
    bool ok = false;
    for (const char* a = kAlphabet; *a; ++a) ok |= (*a == c);
    if (!ok) return false;
  }
  return true;
}

}  // namespace mufl
