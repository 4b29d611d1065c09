#pragma once
// Files that must survive a crash (checkpoints, models), and their hashes.
#include <string>
#include <string_view>

#include "core/result.h"

namespace mufl {

// Lower-case hex SHA-256 of `data` (OpenSSL EVP).
std::string sha256_hex(std::string_view data);

// write_file_durably(Env::posix(), path, bytes) (core/env.h): after a crash the file is either
// the old one or the whole new one. Errors as core/env.h says (ENOSPC: kInsufficientStorage).
Status write_file_durably(const std::string& path, std::string_view bytes);

// The whole file, through Env::posix(). kNotFound when it does not exist.
Result<std::string> read_file(const std::string& path);

}  // namespace mufl
