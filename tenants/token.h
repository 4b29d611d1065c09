#pragma once
// Bearer tokens: 256 random bits, shown to their owner once, stored only as a SHA-256 hash.
#include <string>
#include <string_view>

#include "core/file_io.h"

#include "core/random.h"

namespace mufl::tenants {

// A new token "mufl_<43 base64url characters>" holding 32 bytes from `rng`.
std::string generate_token(RandomSource& rng);

// Lower-case hex SHA-256 (OpenSSL EVP); lives in core/ because files are hashed too.
using mufl::sha256_hex;

// Compares two strings in time that depends only on their lengths (CRYPTO_memcmp), so that a
// caller cannot learn a secret's prefix from response times.
bool constant_time_equal(std::string_view a, std::string_view b);

}  // namespace mufl::tenants
