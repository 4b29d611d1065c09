#include "core/file_io.h"

#include <openssl/evp.h>

#include <stdexcept>

#include "core/env.h"

namespace mufl {

std::string sha256_hex(std::string_view data) {
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  if (EVP_Digest(data.data(), data.size(), digest, &len, EVP_sha256(), nullptr) != 1)
    throw std::runtime_error("EVP_Digest(sha256) failed");  // broken invariant: OpenSSL cannot hash
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  out.reserve(len * 2);
  for (unsigned int i = 0; i < len; ++i) {
    out += kHex[digest[i] >> 4];
    out += kHex[digest[i] & 15];
  }
  return out;
}

Status write_file_durably(const std::string& path, std::string_view bytes) {
  return write_file_durably(Env::posix(), path, bytes);
}

Result<std::string> read_file(const std::string& path) { return Env::posix().read(path); }

}  // namespace mufl
