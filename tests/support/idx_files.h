#pragma once
// Small MNIST-format data sets for tests: the four idx files of core/dataset_files.h with a
// few 28×28 images (a fixed pattern) and labels i % 10, which fl/datasets.h loads like MNIST.
#include <cstdint>
#include <map>
#include <string>

namespace mufl::testing {

// The files' bytes by name: `train` training and `test` test images with their labels.
std::map<std::string, std::string> tiny_idx_files(uint32_t train, uint32_t test);

// Writes tiny_idx_files(train, test) into `dir` (created when missing); returns them.
std::map<std::string, std::string> write_tiny_idx_files(const std::string& dir, uint32_t train, uint32_t test);

}  // namespace mufl::testing
