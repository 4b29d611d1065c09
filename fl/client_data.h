#pragma once
// A federation client's own samples (mufl-client --data DIR, docs/clients.md): the idx files
// as MNIST ships them, under the catalog's names,
//   DIR/train-images-idx3-ubyte, DIR/train-labels-idx1-ubyte   (required)
//   DIR/t10k-images-idx3-ubyte,  DIR/t10k-labels-idx1-ubyte    (optional: the held-out part)
// so a catalog data set's directory, or a shard that scripts/make-shards cut from one, is a
// client's data as it is. Torch-free header: the loading lives in fl/.
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
