#include <catch2/catch.hpp>

#include <filesystem>

#include "cli/atomic_file.h"
#include "core/file_io.h"
#include "tests/support/temp_dir.h"

using mufl::cli::write_file_atomically;

TEST_CASE("cli atomic file: writes a new file, refuses to replace one without overwrite, leaves no temp") {
  mufl::testing::TempDir dir;
  const std::string path = dir.file("model.pt");
  REQUIRE(write_file_atomically(path, "first", false).is_ok());
  CHECK(*mufl::read_file(path) == "first");

  mufl::Status again = write_file_atomically(path, "second", false);
  CHECK(again.code() == mufl::Status::Code::kAlreadyExists);
  CHECK_THAT(again.message(), Catch::Contains("--force"));
  CHECK(*mufl::read_file(path) == "first");

  REQUIRE(write_file_atomically(path, "third", true).is_ok());
  CHECK(*mufl::read_file(path) == "third");

  CHECK(write_file_atomically(dir.file("no/such/dir/x"), "x", false).code() == mufl::Status::Code::kInternal);
  int entries = 0;
  for ([[maybe_unused]] const auto& e : std::filesystem::directory_iterator(dir.path())) ++entries;
  CHECK(entries == 1);  // model.pt only: no temp file left behind
}
