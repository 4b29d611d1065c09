#include "tenants/token.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>

#include <stdexcept>

namespace mufl::tenants {

std::string generate_token(RandomSource& rng, std::string_view prefix) {
  static constexpr char kBase64Url[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
  uint8_t raw[32];
  rng.fill(raw, sizeof raw);
  std::string out(prefix);
  // 32 bytes = 256 bits = 42 full 6-bit groups plus 4 bits.
  uint32_t buffer = 0;
  int bits = 0;
  for (uint8_t b : raw) {
    buffer = (buffer << 8) | b;
    bits += 8;
    while (bits >= 6) {
      out += kBase64Url[(buffer >> (bits - 6)) & 63];
      bits -= 6;
    }
  }
  if (bits > 0) out += kBase64Url[(buffer << (6 - bits)) & 63];
  return out;
}

bool constant_time_equal(std::string_view a, std::string_view b) {
  return a.size() == b.size() && CRYPTO_memcmp(a.data(), b.data(), a.size()) == 0;
}

}  // namespace mufl::tenants
