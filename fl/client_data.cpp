#include "fl/client_data.h"

#include <filesystem>

#include "fl/datasets.h"

namespace mufl::fl {
namespace {

struct Part {
  torch::Tensor images, labels;
};

Result<Part> read_part(const std::string& dir, const std::string& prefix) {
  auto images = read_idx_images(dir + "/" + prefix + "-images-idx3-ubyte");
  if (!images.ok()) return images.status();
  auto labels = read_idx_labels(dir + "/" + prefix + "-labels-idx1-ubyte");
  if (!labels.ok()) return labels.status();
  if (images->size(0) != labels->size(0))
    return Status::invalid_argument(dir + ": " + prefix + " has " + std::to_string(images->size(0)) + " images but " +
                                    std::to_string(labels->size(0)) + " labels");
  return Part{std::move(*images), std::move(*labels)};
}

}  // namespace

Result<ClientDataSummary> inspect_client_data(const std::string& dir) {
  try {
    auto train = read_part(dir, "train");
    if (!train.ok()) return train.status();
    if (train->images.size(0) == 0) return Status::invalid_argument(dir + ": the training part holds no samples");
    ClientDataSummary s;
    s.train_samples = train->images.size(0);
    s.channels = train->images.size(1);
    s.height = train->images.size(2);
    s.width = train->images.size(3);
    s.max_label = train->labels.max().item<int64_t>();
    std::error_code ec;
    const bool has_test_images = std::filesystem::exists(dir + "/t10k-images-idx3-ubyte", ec);
    const bool has_test_labels = std::filesystem::exists(dir + "/t10k-labels-idx1-ubyte", ec);
    if (!has_test_images && !has_test_labels) return s;
    auto test = read_part(dir, "t10k");
    if (!test.ok()) return test.status();
    if (test->images.sizes().slice(1) != train->images.sizes().slice(1))
      return Status::invalid_argument(dir + ": the test images' shape differs from the training images'");
    s.test_samples = test->images.size(0);
    if (s.test_samples > 0) s.max_label = std::max(s.max_label, test->labels.max().item<int64_t>());
    return s;
  } catch (const std::exception& e) {
    return Status::internal(dir + ": " + e.what());
  }
}

}  // namespace mufl::fl
