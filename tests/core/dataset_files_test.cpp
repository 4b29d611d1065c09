// core/dataset_files.h: the files of each built-in data set, and nothing for any other name.
#include <catch2/catch.hpp>

#include "core/catalog.h"
#include "core/dataset_files.h"

using namespace mufl;

TEST_CASE("dataset files: the idx files of mnist and fashion-mnist, none for synthetic, nullopt otherwise") {
  const std::vector<std::string> idx = {"train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte",
                                        "t10k-labels-idx1-ubyte"};
  CHECK(*dataset_file_names("mnist") == idx);
  CHECK(*dataset_file_names("fashion-mnist") == idx);
  CHECK(dataset_file_names("synthetic")->empty());
  for (const char* name : {"", "cifar10", "MNIST", "../mnist", "mnist/", "mnist/train-images-idx3-ubyte"})
    CHECK_FALSE(dataset_file_names(name));
  // Every catalog data set has an answer.
  for (const auto& d : Catalog::builtin().datasets()) CHECK(dataset_file_names(d.name));
  CHECK(dataset_dir("var", "mnist") == "var/datasets/mnist");
}
