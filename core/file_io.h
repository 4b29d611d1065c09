#pragma once
// Files that must survive a crash (checkpoints, models), and their hashes.
#include <string>
#include <string_view>

#include "core/result.h"

namespace mufl {

// Lower-case hex SHA-256 of `data` (OpenSSL EVP).
std::string sha256_hex(std::string_view data);

// Whether `s` is what sha256_hex returns: 64 lower-case hex digits.
bool is_sha256_hex(std::string_view s);

// SHA-256 of bytes that come in pieces (a download, a file read in parts): update() with each
// piece, then hex() once. Equal to sha256_hex of the pieces joined. Not copyable.
class Sha256 {
 public:
  Sha256();
  ~Sha256();
  Sha256(const Sha256&) = delete;
  Sha256& operator=(const Sha256&) = delete;
  void update(std::string_view piece);
  // The lower-case hex digest of everything update() got; call once, last.
  std::string hex();

 private:
  void* ctx_;  // EVP_MD_CTX
};

// Lower-case hex SHA-256 of the file at `path`, read in pieces of 1 MiB (never whole into
// memory; ~0.1 s for 50 MB). Blocks on the disk. kNotFound when there is no such file;
// kUnavailable when it cannot be opened or read (the message names the path and errno's text).
Result<std::string> sha256_file_hex(const std::string& path);

// write_file_durably(Env::posix(), path, bytes) (core/env.h): after a crash the file is either
// the old one or the whole new one. Errors as core/env.h says (ENOSPC: kInsufficientStorage).
Status write_file_durably(const std::string& path, std::string_view bytes);

// The whole file, through Env::posix(). kNotFound when it does not exist.
Result<std::string> read_file(const std::string& path);

}  // namespace mufl
