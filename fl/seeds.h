#pragma once
// The seeds of a job's random draws: every one comes from (job seed, purpose, round, attempt,
// client), so the same job draws the same, run straight through, resumed, or cut into client
// shards (fl/shards.h). Torch-free.
#include <cstdint>
#include <string>

namespace mufl::fl {

// SplitMix64 finaliser: turns structured inputs into well-spread seeds.
inline uint64_t mix(uint64_t x) {
  x += 0x9e3779b97f4a7c15ULL;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
  return x ^ (x >> 31);
}

// What a random draw is for, so that draws for different purposes never share a stream.
enum class Purpose : uint64_t { kInit = 1, kSample, kDropout, kTrain, kPartition };

// FNV-1a: a hash of a head key that is the same on every build and platform.
inline uint64_t stable_hash(const std::string& s) {
  uint64_t h = 0xcbf29ce484222325ULL;
  for (unsigned char c : s) h = (h ^ c) * 0x100000001b3ULL;
  return h;
}

inline uint64_t seed_for(uint64_t seed, Purpose purpose, int64_t round = 0, int attempt = 0, int64_t client = 0) {
  uint64_t h = mix(seed);
  for (uint64_t v : {static_cast<uint64_t>(purpose), static_cast<uint64_t>(round), static_cast<uint64_t>(attempt),
                     static_cast<uint64_t>(client)})
    h = mix(h ^ v);
  return h;
}


}  // namespace mufl::fl
