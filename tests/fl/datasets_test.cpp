#include "fl/datasets.h"

#include <catch2/catch.hpp>

#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "tests/support/temp_dir.h"
// Last: after the torch headers (Catch's CHECK, not glog's).
#include "tests/support/catch_over_torch.h"

using mufl::fl::dataset_dir;
using mufl::fl::ImageSet;
using mufl::fl::load_dataset;
using mufl::fl::make_synthetic;
using mufl::fl::read_idx_images;
using mufl::fl::read_idx_labels;
using mufl::testing::TempDir;

namespace {

constexpr uint32_t kImagesMagic = 0x00000803;
constexpr uint32_t kLabelsMagic = 0x00000801;

void put_be32(std::string& out, uint32_t v) {
  for (int shift = 24; shift >= 0; shift -= 8) out.push_back(static_cast<char>((v >> shift) & 0xff));
}

// An idx file: magic, big-endian dims, then `payload` as is (it need not match the dims).
void write_idx(const std::string& path, uint32_t magic, const std::vector<uint32_t>& dims,
               const std::vector<uint8_t>& payload) {
  std::string bytes;
  put_be32(bytes, magic);
  for (uint32_t d : dims) put_be32(bytes, d);
  bytes.append(payload.begin(), payload.end());
  std::ofstream(path, std::ios::binary).write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}

std::vector<uint8_t> pattern(size_t n, unsigned step = 7) {
  std::vector<uint8_t> v(n);
  for (size_t i = 0; i < n; ++i) v[i] = static_cast<uint8_t>((i * step) % 256);
  return v;
}

// A fake MNIST-style directory: `train` and `test` 28×28 images with labels i % 10.
void write_fake_dataset(const std::string& dir, uint32_t train, uint32_t test) {
  std::filesystem::create_directories(dir);
  auto labels = [](uint32_t n) {
    std::vector<uint8_t> v(n);
    for (uint32_t i = 0; i < n; ++i) v[i] = static_cast<uint8_t>(i % 10);
    return v;
  };
  write_idx(dir + "/train-images-idx3-ubyte", kImagesMagic, {train, 28, 28}, pattern(train * 784));
  write_idx(dir + "/train-labels-idx1-ubyte", kLabelsMagic, {train}, labels(train));
  write_idx(dir + "/t10k-images-idx3-ubyte", kImagesMagic, {test, 28, 28}, pattern(test * 784, 3));
  write_idx(dir + "/t10k-labels-idx1-ubyte", kLabelsMagic, {test}, labels(test));
}

bool is_invalid(const mufl::Status& s) { return s.is_invalid_argument(); }

// The repository's data dir as scripts/setup fills it: $MUFL_DATA_DIR, else <repo>/var.
std::string repo_data_dir() {
  const char* env = std::getenv("MUFL_DATA_DIR");
  if (env && *env) return env[0] == '/' ? env : std::string(MUFL_SOURCE_DIR) + "/" + env;
  return std::string(MUFL_SOURCE_DIR) + "/var";
}

// Nearest-class-mean accuracy: class means from `train`, evaluated on `test`.
double nearest_mean_accuracy(const ImageSet& train, const ImageSet& test) {
  auto x = train.images.flatten(1);
  std::vector<torch::Tensor> means;
  for (int64_t c = 0; c < 10; ++c) means.push_back(x.index({train.labels == c}).mean(0));
  auto m = torch::stack(means);                           // [10, 784]
  auto d = torch::cdist(test.images.flatten(1), m);       // [N, 10]
  auto predicted = d.argmin(1);
  return (predicted == test.labels).to(torch::kFloat64).mean().item<double>();
}

}  // namespace

TEST_CASE("read_idx: images and labels read back exactly", "[data]") {
  TempDir dir;
  const auto pixels = pattern(3 * 4 * 5);
  write_idx(dir.file("img"), kImagesMagic, {3, 4, 5}, pixels);
  write_idx(dir.file("lbl"), kLabelsMagic, {6}, {0, 9, 1, 8, 255, 3});

  auto images = read_idx_images(dir.file("img"));
  REQUIRE(images.ok());
  CHECK(images->sizes() == torch::IntArrayRef{3, 1, 4, 5});
  CHECK(images->scalar_type() == torch::kFloat32);
  auto expected = torch::tensor(std::vector<int64_t>(pixels.begin(), pixels.end())).to(torch::kFloat32).div(255.0f);
  CHECK(torch::equal(images->flatten(), expected));
  CHECK(images->flatten()[1].item<float>() == Approx(7.0 / 255.0));

  auto labels = read_idx_labels(dir.file("lbl"));
  REQUIRE(labels.ok());
  CHECK(labels->scalar_type() == torch::kInt64);
  CHECK(torch::equal(*labels, torch::tensor({0, 9, 1, 8, 255, 3}, torch::kInt64)));

  write_idx(dir.file("empty"), kLabelsMagic, {0}, {});
  auto none = read_idx_labels(dir.file("empty"));
  REQUIRE(none.ok());
  CHECK(none->numel() == 0);
}

TEST_CASE("read_idx: bad magic, truncated and overlong files fail cleanly", "[data]") {
  TempDir dir;
  write_idx(dir.file("img"), kImagesMagic, {2, 3, 3}, pattern(18));
  write_idx(dir.file("lbl"), kLabelsMagic, {2}, {1, 2});
  CHECK(is_invalid(read_idx_labels(dir.file("img")).status()));  // a label reader given images
  CHECK(is_invalid(read_idx_images(dir.file("lbl")).status()));
  write_idx(dir.file("float"), 0x00000d03, {2, 3, 3}, pattern(72));  // idx float payload
  CHECK(is_invalid(read_idx_images(dir.file("float")).status()));
  auto bad = read_idx_images(dir.file("lbl"));
  CHECK(bad.status().message().find("magic") != std::string::npos);

  write_idx(dir.file("short"), kImagesMagic, {2, 3, 3}, pattern(17));
  CHECK(is_invalid(read_idx_images(dir.file("short")).status()));
  write_idx(dir.file("long"), kImagesMagic, {2, 3, 3}, pattern(19));
  CHECK(is_invalid(read_idx_images(dir.file("long")).status()));
  write_idx(dir.file("header"), kImagesMagic, {2}, {});  // dims cut off
  CHECK(is_invalid(read_idx_images(dir.file("header")).status()));
  write_idx(dir.file("tiny"), kLabelsMagic, {}, {});
  std::filesystem::resize_file(dir.file("tiny"), 2);
  CHECK(is_invalid(read_idx_labels(dir.file("tiny")).status()));
  // A header promising 2^96 bytes: must not overflow into "fits".
  write_idx(dir.file("huge"), kImagesMagic, {0xffffffff, 0xffffffff, 0xffffffff}, pattern(64));
  CHECK(is_invalid(read_idx_images(dir.file("huge")).status()));
  write_idx(dir.file("zero"), kImagesMagic, {0xffffffff, 0, 0xffffffff}, pattern(1));
  CHECK(is_invalid(read_idx_images(dir.file("zero")).status()));
}

TEST_CASE("read_idx: a missing file is NotFound and says how to get it", "[data]") {
  TempDir dir;
  auto r = read_idx_images(dir.file("train-images-idx3-ubyte"));
  REQUIRE(!r.ok());
  CHECK(r.status().is_not_found());
  CHECK(r.status().message().find(dir.file("train-images-idx3-ubyte")) != std::string::npos);
  CHECK(r.status().message().find("scripts/setup") != std::string::npos);
  CHECK(read_idx_labels(dir.path()).status().is_not_found());  // a directory is no file either
}

TEST_CASE("load_dataset: idx data sets from <data_dir>/datasets/<name>", "[data]") {
  TempDir data;
  CHECK(dataset_dir("var", "mnist") == "var/datasets/mnist");
  CHECK(dataset_dir(data.path(), "fashion-mnist") == data.path() + "/datasets/fashion-mnist");

  for (const char* name : {"mnist", "fashion-mnist"}) {
    CAPTURE(name);
    auto missing = load_dataset(data.path(), name);
    REQUIRE(!missing.ok());
    CHECK(missing.status().is_not_found());
    CHECK(missing.status().message().find("scripts/setup") != std::string::npos);
    CHECK(mufl::fl::check_dataset_files(data.path(), name).is_not_found());

    const std::string dir = dataset_dir(data.path(), name);
    write_fake_dataset(dir, 30, 20);
    CHECK(mufl::fl::check_dataset_files(data.path(), name).is_ok());
    auto splits = load_dataset(data.path(), name);
    REQUIRE(splits.ok());
    CHECK(splits->train.size() == 30);
    CHECK(splits->test.size() == 20);
    CHECK(splits->train.images.sizes() == torch::IntArrayRef{30, 1, 28, 28});
    CHECK(splits->test.images.sizes() == torch::IntArrayRef{20, 1, 28, 28});
    CHECK(splits->train.labels[13].item<int64_t>() == 3);
    CHECK(splits->train.images.flatten()[2].item<float>() == Approx(14.0 / 255.0));
    CHECK(splits->test.images.flatten()[2].item<float>() == Approx(6.0 / 255.0));

    // One file gone: both checks name it.
    std::filesystem::remove(dir + "/t10k-labels-idx1-ubyte");
    auto check = mufl::fl::check_dataset_files(data.path(), name);
    CHECK(check.is_not_found());
    CHECK(check.message().find("t10k-labels-idx1-ubyte") != std::string::npos);
    auto partial = load_dataset(data.path(), name);
    REQUIRE(!partial.ok());
    CHECK(partial.status().message().find("t10k-labels-idx1-ubyte") != std::string::npos);
  }
}

TEST_CASE("load_dataset: files that are not 28×28 digits are rejected", "[data]") {
  TempDir data;
  const std::string dir = dataset_dir(data.path(), "mnist");
  write_fake_dataset(dir, 10, 10);
  SECTION("labels outside 0..9") {
    write_idx(dir + "/train-labels-idx1-ubyte", kLabelsMagic, {10}, {0, 1, 2, 3, 4, 5, 6, 7, 8, 10});
    CHECK(is_invalid(load_dataset(data.path(), "mnist").status()));
  }
  SECTION("image count differs from label count") {
    write_idx(dir + "/t10k-labels-idx1-ubyte", kLabelsMagic, {9}, pattern(9, 1));
    CHECK(is_invalid(load_dataset(data.path(), "mnist").status()));
  }
  SECTION("images of another size") {
    write_idx(dir + "/train-images-idx3-ubyte", kImagesMagic, {10, 32, 32}, pattern(10 * 32 * 32));
    CHECK(is_invalid(load_dataset(data.path(), "mnist").status()));
  }
  SECTION("a truncated file") {
    std::filesystem::resize_file(dir + "/train-images-idx3-ubyte", 16 + 784 * 10 - 1);
    CHECK(is_invalid(load_dataset(data.path(), "mnist").status()));
  }
}

TEST_CASE("load_dataset: unknown names are invalid, synthetic needs no files", "[data]") {
  TempDir data;
  auto unknown = load_dataset(data.path(), "cifar10");
  REQUIRE(!unknown.ok());
  CHECK(unknown.status().is_invalid_argument());
  CHECK(mufl::fl::check_dataset_files(data.path(), "cifar10").is_invalid_argument());
  CHECK(mufl::fl::check_dataset_files(data.path() + "/nowhere", "synthetic").is_ok());

  auto synthetic = load_dataset(data.path() + "/nowhere", "synthetic");
  REQUIRE(synthetic.ok());
  CHECK(synthetic->train.size() == mufl::fl::kSyntheticTrainSamples);
  CHECK(synthetic->test.size() == mufl::fl::kSyntheticTestSamples);
  CHECK(torch::equal(synthetic->train.images, make_synthetic(4000, 1).images));
  CHECK(torch::equal(synthetic->test.images, make_synthetic(1000, 2).images));
}

TEST_CASE("make_synthetic: shapes, range, balanced labels, determinism", "[data]") {
  const auto start = std::chrono::steady_clock::now();
  ImageSet s = make_synthetic(4000, 1);
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  CAPTURE(seconds);
  CHECK(s.images.sizes() == torch::IntArrayRef{4000, 1, 28, 28});
  CHECK(s.images.scalar_type() == torch::kFloat32);
  CHECK(s.labels.sizes() == torch::IntArrayRef{4000});
  CHECK(s.labels.scalar_type() == torch::kInt64);
  CHECK(s.images.min().item<float>() >= 0.0f);
  CHECK(s.images.max().item<float>() <= 1.0f);
  CHECK(torch::equal(s.labels.bincount(), torch::full({10}, 400, torch::kInt64)));
  // Strokes are bright, the background mostly dark.
  auto mean = s.images.mean().item<double>();
  CHECK(mean > 0.05);
  CHECK(mean < 0.4);

  ImageSet again = make_synthetic(4000, 1);
  CHECK(torch::equal(again.images, s.images));
  CHECK(torch::equal(again.labels, s.labels));
  ImageSet other = make_synthetic(4000, 2);
  CHECK(!torch::equal(other.images, s.images));
  CHECK(!torch::equal(other.labels, s.labels));

  ImageSet few = make_synthetic(13, 7);
  CHECK(few.size() == 13);
  CHECK(few.labels.bincount().max().item<int64_t>() == 2);
  CHECK(make_synthetic(0, 7).size() == 0);
  CHECK(make_synthetic(-5, 7).size() == 0);
}

TEST_CASE("make_synthetic: the label can be read off the image", "[data]") {
  ImageSet train = make_synthetic(2000, 1);
  ImageSet test = make_synthetic(1000, 2);
  // Every pair of class means differs clearly (as 7 and 1 differ by one stroke).
  auto x = train.images.flatten(1);
  std::vector<torch::Tensor> means;
  for (int64_t c = 0; c < 10; ++c) means.push_back(x.index({train.labels == c}).mean(0));
  auto d = torch::cdist(torch::stack(means), torch::stack(means));
  const double min_distance = (d + torch::eye(10) * 1e9).min().item<double>();
  CAPTURE(min_distance);
  CHECK(min_distance > 1.0);
  // A nearest-class-mean classifier on held-out samples beats 50% (chance: 10%).
  const double accuracy = nearest_mean_accuracy(train, test);
  CAPTURE(accuracy);
  CHECK(accuracy > 0.5);
}

TEST_CASE("load_dataset: the real MNIST and Fashion-MNIST when scripts/setup fetched them", "[data]") {
  const std::string data_dir = repo_data_dir();
  // First labels of each split, a cheap check that the right files sit under the right name.
  struct Expect {
    const char* name;
    int64_t first_train_label, first_test_label;
  };
  for (Expect e : {Expect{"mnist", 5, 7}, Expect{"fashion-mnist", 9, 9}}) {
    CAPTURE(e.name);
    if (!mufl::fl::check_dataset_files(data_dir, e.name).is_ok()) {
      WARN("skipped: " << e.name << " not under " << data_dir << "/datasets (run scripts/setup)");
      continue;
    }
    const auto start = std::chrono::steady_clock::now();
    auto splits = load_dataset(data_dir, e.name);
    const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    REQUIRE(splits.ok());
    CAPTURE(seconds);
    CHECK(splits->train.size() == 60000);
    CHECK(splits->test.size() == 10000);
    CHECK(splits->train.images.sizes() == torch::IntArrayRef{60000, 1, 28, 28});
    CHECK(splits->train.labels[0].item<int64_t>() == e.first_train_label);
    CHECK(splits->test.labels[0].item<int64_t>() == e.first_test_label);
    CHECK(splits->train.labels.bincount().size(0) == 10);
    CHECK(splits->train.images.max().item<float>() == 1.0f);
  }
}
