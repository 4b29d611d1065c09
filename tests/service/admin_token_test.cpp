#include "service/admin_token.h"

#include <catch2/catch.hpp>

#include <sys/stat.h>

#include <fstream>

#include "tests/support/temp_dir.h"

using namespace mufl;
using namespace mufl::service;

TEST_CASE("admin token: MUFL_ADMIN_TOKEN wins and writes no file") {
  testing::TempDir dir;
  SecureRandom rng;
  auto t = load_or_create_admin_token(dir.path(), "from-env", rng);
  REQUIRE(t.ok());
  CHECK(t->token == "from-env");
  CHECK(t->source == "MUFL_ADMIN_TOKEN");
  struct stat st {};
  CHECK(::stat(dir.file("admin.token").c_str(), &st) != 0);
}

TEST_CASE("admin token: generated once with mode 0600, then read back") {
  testing::TempDir dir;
  SecureRandom rng;
  auto first = load_or_create_admin_token(dir.path(), "", rng);
  REQUIRE(first.ok());
  CHECK(first->token.rfind("mufl_", 0) == 0);
  struct stat st {};
  REQUIRE(::stat(dir.file("admin.token").c_str(), &st) == 0);
  CHECK((st.st_mode & 0777) == 0600);
  auto second = load_or_create_admin_token(dir.path(), "", rng);
  REQUIRE(second.ok());
  CHECK(second->token == first->token);
}

TEST_CASE("admin token: a file others can read, or an empty one, is refused") {
  testing::TempDir dir;
  SecureRandom rng;
  std::string path = dir.file("admin.token");
  { std::ofstream(path) << "tok\n"; }
  ::chmod(path.c_str(), 0644);
  auto open_file = load_or_create_admin_token(dir.path(), "", rng);
  CHECK(open_file.status().code() == Status::Code::kFailedPrecondition);
  { std::ofstream(path, std::ios::trunc) << "\n"; }
  ::chmod(path.c_str(), 0600);
  CHECK(load_or_create_admin_token(dir.path(), "", rng).status().code() == Status::Code::kFailedPrecondition);
  CHECK_FALSE(load_or_create_admin_token(dir.file("missing/dir"), "", rng).ok());
}
