#pragma once
// RandomSource: where ids and tokens get their randomness, so tests can make it repeatable.
// Thread safety: implementations are safe to call from any thread.
#include <cstdint>
#include <memory>
#include <mutex>
#include <random>
#include <string>

namespace mufl {

class RandomSource {
 public:
  virtual ~RandomSource() = default;
  // Fills `out` with `n` random bytes.
  virtual void fill(uint8_t* out, size_t n) = 0;
  std::string bytes(size_t n);
};

// Cryptographically secure bytes from OpenSSL's RAND_bytes. Aborts if the CSPRNG fails,
// because handing out a predictable token would be worse than stopping.
class SecureRandom final : public RandomSource {
 public:
  void fill(uint8_t* out, size_t n) override;
  static SecureRandom& instance();
};

// Repeatable bytes from a seed (std::mt19937_64). For tests only: not secure.
class SeededRandom final : public RandomSource {
 public:
  explicit SeededRandom(uint64_t seed) : gen_(seed) {}
  void fill(uint8_t* out, size_t n) override;

 private:
  std::mutex mu_;
  std::mt19937_64 gen_;
};

}  // namespace mufl
