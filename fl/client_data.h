#pragma once
// A federation client's own samples (mufl-client --data DIR, docs/clients.md), each part in
// one of two forms:
//   training: DIR/train.safetensors, or DIR/train-images-idx3-ubyte + DIR/train-labels-idx1-ubyte
//   held-out (optional): DIR/test.safetensors, or DIR/t10k-images-idx3-ubyte + …-labels-idx1-ubyte
// The idx files are MNIST's own format and names, so a catalog data set's directory is a
// client's data as it is. A safetensors part holds "images" F32 [N,C,H,W] in [0,1] and
// "labels" F32 [N] (integers): any shape, and the exact floats of a generated data set.
// Torch-free header: datasets.h has the loader, load_client_part.
#include <cstdint>
#include <string>

#include "core/result.h"

namespace mufl::fl {

struct ClientDataSummary {
  int64_t train_samples = 0;
  int64_t test_samples = 0;  // 0 when there is no held-out part
  int64_t channels = 1, height = 0, width = 0;
  int64_t max_label = 0;  // the largest label in either part
};

// Reads the files and checks them: each images file with its labels file of the same length,
// the test part (when there) with the training part's image shape. kNotFound naming a missing
// training file (or one of the two test files without the other); kInvalidArgument for files
// that are not idx or do not agree.
Result<ClientDataSummary> inspect_client_data(const std::string& dir);

}  // namespace mufl::fl
