// core/file_io.h's hashes: SHA-256 of pieces and of a file read in pieces equal that of the
// whole bytes; a missing file is kNotFound.
#include <catch2/catch.hpp>

#include <fstream>
#include <string>

#include "core/file_io.h"
#include "tests/support/temp_dir.h"

using namespace mufl;

TEST_CASE("file io: SHA-256 in pieces and of a file equals SHA-256 of the whole") {
  std::string bytes;
  for (int i = 0; i < 3'000'000; ++i) bytes.push_back(static_cast<char>((i * 31) % 251));  // > one 1 MiB read
  const std::string whole = sha256_hex(bytes);
  CHECK(sha256_hex("") == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");

  Sha256 pieces;
  for (size_t at = 0; at < bytes.size(); at += 77'777) pieces.update(std::string_view(bytes).substr(at, 77'777));
  CHECK(pieces.hex() == whole);
  Sha256 none;
  CHECK(none.hex() == sha256_hex(""));

  mufl::testing::TempDir dir;
  std::ofstream(dir.file("f"), std::ios::binary) << bytes;
  std::ofstream(dir.file("empty"), std::ios::binary);
  CHECK(*sha256_file_hex(dir.file("f")) == whole);
  CHECK(*sha256_file_hex(dir.file("empty")) == sha256_hex(""));
  CHECK(sha256_file_hex(dir.file("nothing")).status().is_not_found());
  CHECK(sha256_file_hex(dir.path()).status().code() == Status::Code::kUnavailable);  // a folder cannot be read
}

TEST_CASE("file io: is_sha256_hex accepts sha256_hex's form only") {
  CHECK(is_sha256_hex(sha256_hex("x")));
  CHECK_FALSE(is_sha256_hex(""));
  CHECK_FALSE(is_sha256_hex(std::string(63, 'a')));
  CHECK_FALSE(is_sha256_hex(std::string(65, 'a')));
  CHECK_FALSE(is_sha256_hex(std::string(64, 'A')));
  CHECK_FALSE(is_sha256_hex(std::string(63, 'a') + "g"));
}
