#pragma once
// Image data sets in memory: MNIST and Fashion-MNIST from raw idx files, and `synthetic`,
// generated from a seed. Every set is 1×28×28 grey images in [0,1] with labels 0..9, so one
// model fits all. Internal to fl/ (torch types); fl/runtime.h has the torch-free checks.
#include <torch/torch.h>

#include <string>

#include "core/result.h"

namespace mufl::fl {

struct ImageSet {
  torch::Tensor images;  // float32 [N, 1, 28, 28], values in [0, 1]
  torch::Tensor labels;  // int64 [N], values 0..9
  int64_t size() const { return labels.size(0); }
};

struct DatasetSplits {
  ImageSet train;
  ImageSet test;
};

// Reads an idx3 image file (magic 0x00000803) or idx1 label file (0x00000801), big-endian
// header, uint8 payload; the file length must match the header exactly. kInvalidArgument for a
// bad magic or a truncated (or overlong) file; kNotFound when missing; kInternal when unreadable.
Result<torch::Tensor> read_idx_images(const std::string& path);  // float [N,1,H,W] / 255
Result<torch::Tensor> read_idx_labels(const std::string& path);  // int64 [N]

// Seven-segment digits 0..9 drawn with random position, scale, slant, stroke width, brightness
// and Gaussian noise: the label is the digit, so every catalog task has a meaning. Labels are
// balanced (each digit samples/10 times, ±1) in shuffled order. Deterministic for a seed (bit
// for bit on one build and CPU kind: the noise comes from torch's randn). ~20 µs a sample;
// samples < 0 counts as 0.
ImageSet make_synthetic(int64_t samples, uint64_t seed);

// "synthetic" needs no files: training and test sets come from fixed, distinct seeds.
inline constexpr int64_t kSyntheticTrainSamples = 4000;
inline constexpr uint64_t kSyntheticTrainSeed = 1;
inline constexpr int64_t kSyntheticTestSamples = 1000;
inline constexpr uint64_t kSyntheticTestSeed = 2;

// Where the files of a data set live below the service's data dir (mufld --data-dir, ./var):
//   <data_dir>/datasets/mnist/{train,t10k}-{images-idx3,labels-idx1}-ubyte
//   <data_dir>/datasets/fashion-mnist/… (same names)
// scripts/setup fetches both there (data/README.md). Returns data_dir + "/datasets/" + dataset.
std::string dataset_dir(const std::string& data_dir, const std::string& dataset);

// Loads a data set by catalog name ("synthetic", "mnist", "fashion-mnist"). kNotFound naming
// the missing file and how to get it (scripts/setup) when the files are absent;
// kInvalidArgument for an unknown name or files that are not 28×28 images with labels 0..9.
// MNIST takes ~0.2 s (mostly the uint8 → float conversion of 55 MB).
Result<DatasetSplits> load_dataset(const std::string& data_dir, const std::string& dataset);

// A federation client's part (fl/client_data.h): the training part, or the held-out part
// (`train` false). kNotFound naming the missing file; kInvalidArgument for files that do not
// hold images with their labels.
Result<ImageSet> load_client_part(const std::string& dir, bool train);
// Whether DIR has a held-out part (either form, or half of the idx pair: loading it then fails).
bool has_client_test_part(const std::string& dir);

// Cheap check for submission time: OK when load_dataset would find every file.
Status check_dataset_files(const std::string& data_dir, const std::string& dataset);

}  // namespace mufl::fl
