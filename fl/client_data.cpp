#include "fl/client_data.h"

#include <filesystem>
#include <fstream>
#include <sstream>

#include "fl/datasets.h"
#include "protocol/safetensors.h"

namespace mufl::fl {
namespace {

bool exists(const std::string& path) {
  std::error_code ec;
  return std::filesystem::exists(path, ec);
}

Result<std::string> read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return Status::not_found(path + ": cannot open");
  std::ostringstream out;
  out << in.rdbuf();
  return out.str();
}

// DIR/<part>.safetensors: "images" F32 [N,C,H,W] in [0,1] and "labels" F32 [N] holding integers.
Result<ImageSet> load_safetensors_part(const std::string& path) {
  auto bytes = read_file(path);
  if (!bytes.ok()) return bytes.status();
  protocol::DecodeLimits limits;
  limits.max_data_bytes = uint64_t{16} << 30;
  auto file = protocol::decode_safetensors(*bytes, limits);
  if (!file.ok()) return Status::invalid_argument(path + ": " + file.status().message());
  const protocol::NamedTensor *images = nullptr, *labels = nullptr;
  for (const auto& t : file->tensors) {
    if (t.name == "images") images = &t;
    if (t.name == "labels") labels = &t;
  }
  if (!images || !labels || images->shape.size() != 4 || labels->shape.size() != 1 ||
      images->shape[0] != labels->shape[0])
    return Status::invalid_argument(path + ": needs \"images\" [N,C,H,W] and \"labels\" [N]");
  ImageSet set;
  set.images = torch::from_blob(const_cast<float*>(images->values.data()), images->shape, torch::kFloat32).clone();
  auto l = torch::from_blob(const_cast<float*>(labels->values.data()), labels->shape, torch::kFloat32);
  if (!torch::equal(l, l.round()) || (labels->shape[0] > 0 && l.min().item<float>() < 0))
    return Status::invalid_argument(path + ": labels must be integers >= 0");
  set.labels = l.to(torch::kInt64);
  return set;
}

Result<ImageSet> load_idx_part(const std::string& dir, const std::string& prefix) {
  auto images = read_idx_images(dir + "/" + prefix + "-images-idx3-ubyte");
  if (!images.ok()) return images.status();
  auto labels = read_idx_labels(dir + "/" + prefix + "-labels-idx1-ubyte");
  if (!labels.ok()) return labels.status();
  if (images->size(0) != labels->size(0))
    return Status::invalid_argument(dir + ": " + prefix + " has " + std::to_string(images->size(0)) + " images but " +
                                    std::to_string(labels->size(0)) + " labels");
  return ImageSet{std::move(*images), std::move(*labels)};
}

}  // namespace

bool has_client_test_part(const std::string& dir) {
  return exists(dir + "/test.safetensors") || exists(dir + "/t10k-images-idx3-ubyte") ||
         exists(dir + "/t10k-labels-idx1-ubyte");
}

Result<ImageSet> load_client_part(const std::string& dir, bool train) {
  const std::string st = dir + (train ? "/train.safetensors" : "/test.safetensors");
  if (exists(st)) return load_safetensors_part(st);
  return load_idx_part(dir, train ? "train" : "t10k");
}

Result<ClientDataSummary> inspect_client_data(const std::string& dir) {
  try {
    auto train = load_client_part(dir, true);
    if (!train.ok()) return train.status();
    if (train->size() == 0) return Status::invalid_argument(dir + ": the training part holds no samples");
    ClientDataSummary s;
    s.train_samples = train->size();
    s.channels = train->images.size(1);
    s.height = train->images.size(2);
    s.width = train->images.size(3);
    s.max_label = train->labels.max().item<int64_t>();
    if (!has_client_test_part(dir)) return s;
    auto test = load_client_part(dir, false);
    if (!test.ok()) return test.status();
    if (test->images.sizes().slice(1) != train->images.sizes().slice(1))
      return Status::invalid_argument(dir + ": the test images' shape differs from the training images'");
    s.test_samples = test->size();
    if (s.test_samples > 0) s.max_label = std::max(s.max_label, test->labels.max().item<int64_t>());
    return s;
  } catch (const std::exception& e) {
    return Status::internal(dir + ": " + e.what());
  }
}

}  // namespace mufl::fl
