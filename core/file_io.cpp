#include "core/file_io.h"

#include <fcntl.h>
#include <openssl/evp.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <stdexcept>

#include "core/env.h"

namespace mufl {

namespace {

std::string to_hex(const unsigned char* digest, unsigned int len) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  out.reserve(len * 2);
  for (unsigned int i = 0; i < len; ++i) {
    out += kHex[digest[i] >> 4];
    out += kHex[digest[i] & 15];
  }
  return out;
}

EVP_MD_CTX* md_ctx(void* p) { return static_cast<EVP_MD_CTX*>(p); }

}  // namespace

std::string sha256_hex(std::string_view data) {
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  if (EVP_Digest(data.data(), data.size(), digest, &len, EVP_sha256(), nullptr) != 1)
    throw std::runtime_error("EVP_Digest(sha256) failed");  // broken invariant: OpenSSL cannot hash
  return to_hex(digest, len);
}

bool is_sha256_hex(std::string_view s) {
  return s.size() == 64 && std::all_of(s.begin(), s.end(), [](char c) {
           return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
         });
}

// OpenSSL failures here are broken invariants (no memory, no SHA-256): they throw, as sha256_hex.
Sha256::Sha256() : ctx_(EVP_MD_CTX_new()) {
  if (!ctx_ || EVP_DigestInit_ex(md_ctx(ctx_), EVP_sha256(), nullptr) != 1) {
    EVP_MD_CTX_free(md_ctx(ctx_));
    throw std::runtime_error("EVP_DigestInit_ex(sha256) failed");
  }
}

Sha256::~Sha256() { EVP_MD_CTX_free(md_ctx(ctx_)); }

void Sha256::update(std::string_view piece) {
  if (EVP_DigestUpdate(md_ctx(ctx_), piece.data(), piece.size()) != 1)
    throw std::runtime_error("EVP_DigestUpdate(sha256) failed");
}

std::string Sha256::hex() {
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  if (EVP_DigestFinal_ex(md_ctx(ctx_), digest, &len) != 1) throw std::runtime_error("EVP_DigestFinal_ex(sha256) failed");
  return to_hex(digest, len);
}

Result<std::string> sha256_file_hex(const std::string& path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    const int err = errno;
    std::string msg = "cannot open " + path + ": " + std::strerror(err);
    return err == ENOENT ? Status::not_found(std::move(msg)) : Status::unavailable(std::move(msg));
  }
  Sha256 sha;
  std::string buf(1 << 20, '\0');
  for (;;) {
    const ssize_t n = ::read(fd, buf.data(), buf.size());
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      const int err = errno;
      std::string msg = "cannot read " + path + ": " + std::strerror(err);
      ::close(fd);
      return Status::unavailable(std::move(msg));
    }
    if (n == 0) break;
    sha.update(std::string_view(buf.data(), static_cast<size_t>(n)));
  }
  ::close(fd);
  return sha.hex();
}

Status write_file_durably(const std::string& path, std::string_view bytes) {
  return write_file_durably(Env::posix(), path, bytes);
}

Result<std::string> read_file(const std::string& path) { return Env::posix().read(path); }

}  // namespace mufl
