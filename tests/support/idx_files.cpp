#include "tests/support/idx_files.h"

#include <filesystem>
#include <fstream>
#include <stdexcept>
#include <vector>

namespace mufl::testing {

namespace {

void put_be32(std::string& out, uint32_t v) {
  for (int shift = 24; shift >= 0; shift -= 8) out.push_back(static_cast<char>((v >> shift) & 0xff));
}

std::string idx(uint32_t magic, const std::vector<uint32_t>& dims, const std::string& payload) {
  std::string bytes;
  put_be32(bytes, magic);
  for (uint32_t d : dims) put_be32(bytes, d);
  return bytes + payload;
}

std::string images(uint32_t n, unsigned step) {
  std::string v(size_t{n} * 784, '\0');
  for (size_t i = 0; i < v.size(); ++i) v[i] = static_cast<char>((i * step) % 256);
  return v;
}

std::string labels(uint32_t n) {
  std::string v(n, '\0');
  for (uint32_t i = 0; i < n; ++i) v[i] = static_cast<char>(i % 10);
  return v;
}

}  // namespace

std::map<std::string, std::string> tiny_idx_files(uint32_t train, uint32_t test) {
  constexpr uint32_t kImages = 0x00000803, kLabels = 0x00000801;
  return {{"train-images-idx3-ubyte", idx(kImages, {train, 28, 28}, images(train, 7))},
          {"train-labels-idx1-ubyte", idx(kLabels, {train}, labels(train))},
          {"t10k-images-idx3-ubyte", idx(kImages, {test, 28, 28}, images(test, 3))},
          {"t10k-labels-idx1-ubyte", idx(kLabels, {test}, labels(test))}};
}

std::map<std::string, std::string> write_tiny_idx_files(const std::string& dir, uint32_t train, uint32_t test) {
  std::filesystem::create_directories(dir);
  auto files = tiny_idx_files(train, test);
  for (const auto& [name, bytes] : files) {
    std::ofstream out(dir + "/" + name, std::ios::binary);
    out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
    if (!out) throw std::runtime_error("cannot write " + dir + "/" + name);
  }
  return files;
}

}  // namespace mufl::testing
