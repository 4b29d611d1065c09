#pragma once
// Bearer tokens: 256 random bits, shown to their owner once, stored only as a SHA-256 hash.
#include <string>
#include <string_view>

#include "core/file_io.h"

#include "core/random.h"

namespace mufl::tenants {

// Token prefixes: what a token is for shows in its first characters, so that authentication
// knows which table to ask and a leaked token is easy to recognise.
inline constexpr std::string_view kTenantTokenPrefix = "mufl_";
inline constexpr std::string_view kClientTokenPrefix = "muflc_";      // an enrolled federation client
inline constexpr std::string_view kEnrollmentTokenPrefix = "mufle_";  // a federation's enrollment token
inline constexpr std::string_view kWorkerTokenPrefix = "muflw_";      // a cluster worker's (docs/cluster.md)

// A new token "<prefix><43 base64url characters>" holding 32 bytes from `rng`.
std::string generate_token(RandomSource& rng, std::string_view prefix = kTenantTokenPrefix);

// Lower-case hex SHA-256 (OpenSSL EVP); lives in core/ because files are hashed too.
using mufl::sha256_hex;

// Compares two strings in time that depends only on their lengths (CRYPTO_memcmp), so that a
// caller cannot learn a secret's prefix from response times.
bool constant_time_equal(std::string_view a, std::string_view b);

}  // namespace mufl::tenants
