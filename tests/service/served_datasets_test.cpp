// ServedDatasets (service/served_datasets.h): the data set files mufld serves to cluster
// workers, each hashed once while its size and modification time stay the same.
#include <catch2/catch.hpp>

#include <filesystem>
#include <fstream>

#include "core/dataset_files.h"
#include "core/file_io.h"
#include "service/served_datasets.h"
#include "tests/support/idx_files.h"
#include "tests/support/temp_dir.h"

using namespace mufl;
using mufl::service::ServedDatasets;
using mufl::testing::TempDir;
namespace fs = std::filesystem;

TEST_CASE("served data sets: a file is hashed once, and again only when its size or modification time change") {
  TempDir data;
  const std::string dir = data.path() + "/datasets/mnist";
  auto files = mufl::testing::write_tiny_idx_files(dir, 20, 10);
  ServedDatasets served(data.path());

  auto first = served.manifest("mnist");
  REQUIRE(first.ok());
  REQUIRE(first->size() == 4);
  CHECK(served.files_hashed() == 4);
  for (const auto& f : *first) CHECK(f.sha256 == sha256_hex(files.at(f.name)));
  REQUIRE(served.manifest("mnist").ok());
  CHECK(served.files_hashed() == 4);  // all four from the cache

  // Same size, new bytes and a new modification time: hashed again, the new SHA-256 served.
  const std::string path = dir + "/t10k-labels-idx1-ubyte";
  std::string changed = files.at("t10k-labels-idx1-ubyte");
  changed.back() ^= 1;
  std::ofstream(path, std::ios::binary | std::ios::trunc) << changed;
  fs::last_write_time(path, fs::last_write_time(path) + std::chrono::seconds(5));
  auto second = served.manifest("mnist");
  REQUIRE(second.ok());
  CHECK(served.files_hashed() == 5);
  CHECK(second->back().name == "t10k-labels-idx1-ubyte");
  CHECK(second->back().sha256 == sha256_hex(changed));
  CHECK(second->back().bytes == changed.size());
  // Another size (at the same modification time): hashed again too.
  const auto mtime = fs::last_write_time(path);
  std::ofstream(path, std::ios::binary | std::ios::app) << "x";
  fs::last_write_time(path, mtime);
  REQUIRE(served.manifest("mnist").ok());
  CHECK(served.files_hashed() == 6);
  CHECK(served.manifest("mnist")->back().bytes == changed.size() + 1);
}

TEST_CASE("served data sets: only the built-in data sets' own files, and what is missing is kNotFound") {
  TempDir data;
  ServedDatasets served(data.path());
  CHECK(served.manifest("synthetic")->empty());
  CHECK(served.manifest("cifar10").status().is_not_found());
  CHECK(served.manifest("../mnist").status().is_not_found());
  CHECK(served.manifest("mnist").status().is_not_found());  // no files here yet
  CHECK(served.manifest("mnist").status().message().find(data.path()) == std::string::npos);

  for (const char* name : kIdxFileNames)
    CHECK(*served.path_of("fashion-mnist", name) == data.path() + "/datasets/fashion-mnist/" + name);
  for (const char* file : {"../mufl.db", "", ".", "train-images-idx3-ubyte.part", "/etc/passwd", "x"})
    CHECK(served.path_of("mnist", file).status().is_not_found());
  CHECK(served.path_of("synthetic", "train-images-idx3-ubyte").status().is_not_found());
  CHECK(served.path_of("..", "train-images-idx3-ubyte").status().is_not_found());

  // A folder where a file should be is missing too.
  mufl::testing::write_tiny_idx_files(data.path() + "/datasets/mnist", 10, 10);
  fs::remove(data.path() + "/datasets/mnist/t10k-images-idx3-ubyte");
  fs::create_directory(data.path() + "/datasets/mnist/t10k-images-idx3-ubyte");
  CHECK(served.manifest("mnist").status().is_not_found());
}
