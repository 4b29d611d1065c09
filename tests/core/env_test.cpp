// core/env.h: the durable write as steps, each of which can fail and leave the old file whole,
// and the classification of file-system errors (a full disk is kInsufficientStorage).
#include "core/env.h"

#include <catch2/catch.hpp>

#include <filesystem>

#include "core/crash_point_env.h"
#include "tests/support/fault_env.h"
#include "tests/support/temp_dir.h"

using namespace mufl;
using mufl::testing::FaultEnv;
using mufl::testing::TempDir;

namespace {

// The names in `dir`, to see that no temp file is left behind.
std::vector<std::string> names_in(const std::string& dir) {
  auto names = Env::posix().list(dir);
  REQUIRE(names.ok());
  std::sort(names->begin(), names->end());
  return *names;
}

}  // namespace

TEST_CASE("env: write_file_durably replaces the file whole and leaves no temp file") {
  TempDir dir;
  const std::string path = dir.file("sub/ckpt.pt");
  REQUIRE(write_file_durably(Env::posix(), path, "first").is_ok());
  REQUIRE(write_file_durably(Env::posix(), path, "second").is_ok());
  CHECK(*Env::posix().read(path) == "second");
  CHECK(names_in(dir.file("sub")) == std::vector<std::string>{"ckpt.pt"});
}

TEST_CASE("env: a failure at any step of a durable write keeps the old file and removes the temp file") {
  using Op = FaultEnv::Op;
  for (Op op : {Op::kCreateDirs, Op::kWrite, Op::kRename, Op::kSyncDir}) {
    TempDir dir;
    const std::string path = dir.file("ckpt.pt");
    REQUIRE(write_file_durably(Env::posix(), path, "old").is_ok());
    FaultEnv env;
    env.fail(op, dir.path(), Status::insufficient_storage("injected: No space left on device"));
    Status s = write_file_durably(env, path, "new");
    INFO("failing step " << static_cast<int>(op));
    CHECK(s.code() == Status::Code::kInsufficientStorage);
    CHECK(env.failures() == 1);
    // Before the rename the old file is there; a failed directory fsync comes after it.
    CHECK(*Env::posix().read(path) == (op == Op::kSyncDir ? "new" : "old"));
    CHECK(names_in(dir.path()) == std::vector<std::string>{"ckpt.pt"});
  }
}

TEST_CASE("env: a full device is kInsufficientStorage, a missing file kNotFound, other errors kUnavailable") {
  // /dev/full answers every write with ENOSPC.
  Status full = Env::posix().write_synced("/dev/full", "bytes");
  CHECK(full.code() == Status::Code::kInsufficientStorage);
  CHECK(full.is_transient());
  CHECK_THAT(full.message(), Catch::Contains("No space left on device"));

  TempDir dir;
  CHECK(Env::posix().read(dir.file("absent")).status().is_not_found());
  Status is_dir = Env::posix().read(dir.path()).status();  // EISDIR
  CHECK(is_dir.code() == Status::Code::kUnavailable);
  CHECK(Env::posix().remove(dir.file("absent")).is_ok());
  CHECK(Env::posix().list(dir.file("absent"))->empty());
}

TEST_CASE("env: remove takes a file or an empty directory, and refuses a directory that is not empty") {
  TempDir dir;
  REQUIRE(write_file_durably(Env::posix(), dir.file("full/f"), "x").is_ok());
  REQUIRE(Env::posix().create_dirs(dir.file("empty")).is_ok());
  CHECK(Env::posix().remove(dir.file("empty")).is_ok());
  CHECK_FALSE(std::filesystem::exists(dir.file("empty")));
  Status not_empty = Env::posix().remove(dir.file("full"));
  CHECK_FALSE(not_empty.is_ok());
  CHECK_THAT(not_empty.message(), Catch::Contains("cannot remove"));
  CHECK(std::filesystem::exists(dir.file("full/f")));
  CHECK(Env::posix().remove(dir.file("full/f")).is_ok());
  CHECK(Env::posix().remove(dir.file("full")).is_ok());
  CHECK(names_in(dir.path()).empty());
}

TEST_CASE("env: MUFL_CRASH_AT parses op, path part and n, and refuses the rest") {
  std::string error;
  auto p = parse_crash_point("rename:checkpoint-2.pt", error);
  REQUIRE(p);
  CHECK(p->op == "rename");
  CHECK(p->path_part == "checkpoint-2.pt");
  CHECK(p->nth == 1);
  auto q = parse_crash_point("list:/groups/:3", error);
  REQUIRE(q);
  CHECK(q->path_part == "/groups/");
  CHECK(q->nth == 3);
  for (const char* bad : {"", "rename", "explode:x", "write:", "write:x:0"}) {
    error.clear();
    CHECK_FALSE(parse_crash_point(bad, error));
    CHECK_FALSE(error.empty());
  }
}
