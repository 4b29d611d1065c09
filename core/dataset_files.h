#pragma once
// The files of the built-in data sets (core/catalog.h) and where they live: fl/datasets.h
// reads them from <data_dir>/datasets/<name>/, mufld serves them to cluster workers and
// mufl-worker fetches them into that folder on its node (docs/cluster.md, "Data sets on the
// nodes"). Torch-free.
#include <array>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace mufl {

// The raw idx files of "mnist" and "fashion-mnist", in the order fl/datasets.cpp reads them:
// training images, training labels, test images, test labels.
inline constexpr std::array<const char*, 4> kIdxFileNames = {"train-images-idx3-ubyte", "train-labels-idx1-ubyte",
                                                             "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"};

// The files a built-in data set is read from: kIdxFileNames for "mnist" and "fashion-mnist",
// none for "synthetic" (generated from a seed). nullopt for any other name, so that a name
// from a request (a path segment) reaches the file system only when it is one of these.
std::optional<std::vector<std::string>> dataset_file_names(std::string_view dataset);

// <data_dir>/datasets/<dataset>: the folder of a data set's files.
std::string dataset_dir(const std::string& data_dir, const std::string& dataset);

}  // namespace mufl
