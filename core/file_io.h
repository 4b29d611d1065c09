#pragma once
// Files that must survive a crash (checkpoints, models), and their hashes.
#include <string>
#include <string_view>

#include "core/result.h"

namespace mufl {

// Lower-case hex SHA-256 of `data` (OpenSSL EVP).
std::string sha256_hex(std::string_view data);

// Writes `bytes` to `path` so that after a crash the file is either the old one or the whole
// new one: a temp file in the same directory, fsync, rename over `path`, fsync the directory.
// Creates missing parent directories (mode 0700). kInternal with errno's text on failure.
Status write_file_durably(const std::string& path, std::string_view bytes);

// The whole file. kNotFound when it does not exist, kInternal when it cannot be read.
Result<std::string> read_file(const std::string& path);

}  // namespace mufl
