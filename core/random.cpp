#include "core/random.h"

#include <openssl/rand.h>

#include <cstdio>
#include <cstdlib>

namespace mufl {

std::string RandomSource::bytes(size_t n) {
  std::string s(n, '\0');
  fill(reinterpret_cast<uint8_t*>(s.data()), n);
  return s;
}

void SecureRandom::fill(uint8_t* out, size_t n) {
  if (RAND_bytes(out, static_cast<int>(n)) != 1) {
    std::fputs("mufl: OpenSSL RAND_bytes failed; refusing to continue\n", stderr);
    std::abort();
  }
}

SecureRandom& SecureRandom::instance() {
  static auto* r = new SecureRandom();
  return *r;
}

void SeededRandom::fill(uint8_t* out, size_t n) {
  std::lock_guard lock(mu_);
  for (size_t i = 0; i < n; ++i) out[i] = static_cast<uint8_t>(gen_());
}

}  // namespace mufl
