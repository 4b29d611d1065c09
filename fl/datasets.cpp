#include "fl/datasets.h"

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <exception>
#include <filesystem>
#include <fstream>
#include <random>
#include <vector>

#include "core/dataset_files.h"

namespace mufl::fl {

namespace {

namespace fs = std::filesystem;

constexpr uint32_t kIdxImagesMagic = 0x00000803;  // uint8 payload, 3 dimensions
constexpr uint32_t kIdxLabelsMagic = 0x00000801;  // uint8 payload, 1 dimension
constexpr int64_t kSide = 28;
constexpr int64_t kClasses = 10;

constexpr const auto& kIdxFiles = kIdxFileNames;  // core/dataset_files.h, shared with what mufld serves

bool has_files(const std::string& dataset) {
  auto names = dataset_file_names(dataset);
  return names && !names->empty();
}

Status unknown_dataset(const std::string& dataset) {
  return Status::invalid_argument("unknown data set \"" + dataset + "\"",
                                  {{"dataset", "must be one of synthetic, mnist, fashion-mnist"}});
}

Status missing_file(const std::string& path) {
  return Status::not_found(path + ": no such file; run scripts/setup to fetch the data sets (see data/README.md)");
}

// Reads a whole idx file of `magic` into a uint8 tensor shaped by its header.
Result<torch::Tensor> read_idx(const std::string& path, uint32_t magic) {
  std::error_code ec;
  if (!fs::is_regular_file(path, ec)) return missing_file(path);
  const uintmax_t file_size = fs::file_size(path, ec);
  if (ec) return Status::internal(path + ": cannot stat: " + ec.message());
  std::ifstream in(path, std::ios::binary);
  if (!in) return Status::internal(path + ": cannot open for reading");

  // The magic first, so that a wrong kind of file is reported as such even when it is short.
  unsigned char word[4];
  auto be32 = [](const unsigned char* b) {
    return (uint32_t{b[0]} << 24) | (uint32_t{b[1]} << 16) | (uint32_t{b[2]} << 8) | uint32_t{b[3]};
  };
  auto truncated_header = [&] {
    return Status::invalid_argument(path + ": truncated idx header (" + std::to_string(file_size) + " bytes)");
  };
  if (file_size < 4) return truncated_header();
  if (!in.read(reinterpret_cast<char*>(word), 4)) return Status::internal(path + ": read failed");
  if (const uint32_t found = be32(word); found != magic) {
    char buf[96];
    std::snprintf(buf, sizeof buf, ": bad idx magic 0x%08x (expected 0x%08x)", found, magic);
    return Status::invalid_argument(path + buf);
  }
  const int ndim = static_cast<int>(magic & 0xff);
  const uintmax_t header_size = 4 + 4 * static_cast<uintmax_t>(ndim);
  if (file_size < header_size) return truncated_header();
  std::vector<int64_t> dims;
  for (int i = 0; i < ndim; ++i) {
    if (!in.read(reinterpret_cast<char*>(word), 4)) return Status::internal(path + ": read failed");
    dims.push_back(be32(word));
  }
  // The payload size, compared with the room in the file step by step so it cannot overflow.
  const uintmax_t room = file_size - header_size;
  uintmax_t payload = std::find(dims.begin(), dims.end(), 0) != dims.end() ? 0 : 1;
  bool too_big = false;  // the header promises more bytes than the file holds
  for (int64_t d : dims) {
    if (payload == 0) break;
    if (payload > room / static_cast<uintmax_t>(d)) {
      too_big = true;
      break;
    }
    payload *= static_cast<uintmax_t>(d);
  }
  if (too_big || header_size + payload != file_size)
    return Status::invalid_argument(path + ": " + std::to_string(file_size) + " bytes do not match the idx header (" +
                                    (too_big ? std::string("more than that") : std::to_string(header_size + payload)) +
                                    " expected); truncated or corrupt");
  try {
    torch::Tensor t = torch::empty(dims, torch::kUInt8);
    if (payload > 0 && !in.read(reinterpret_cast<char*>(t.data_ptr<uint8_t>()), static_cast<std::streamsize>(payload)))
      return Status::internal(path + ": read failed");
    return t;
  } catch (const std::exception& e) {
    return Status::internal(path + ": " + e.what());
  }
}

// Seven-segment layout: segment endpoints in units of the digit box (x right, y down).
struct Segment {
  float x0, y0, x1, y1;
};
//   a: top, b: top right, c: bottom right, d: bottom, e: bottom left, f: top left, g: middle
constexpr std::array<Segment, 7> kSegments = {{
    {0, 0, 1, 0},
    {1, 0, 1, 0.5f},
    {1, 0.5f, 1, 1},
    {0, 1, 1, 1},
    {0, 0.5f, 0, 1},
    {0, 0, 0, 0.5f},
    {0, 0.5f, 1, 0.5f},
}};
// Bit s set: segment s (a..g) lit.
constexpr std::array<uint8_t, 10> kDigitSegments = {
    0b0111111,  // 0: abcdef
    0b0000110,  // 1: bc
    0b1011011,  // 2: abdeg
    0b1001111,  // 3: abcdg
    0b1100110,  // 4: bcfg
    0b1101101,  // 5: acdfg
    0b1111101,  // 6: acdefg
    0b0000111,  // 7: abc
    0b1111111,  // 8: abcdefg
    0b1101111,  // 9: abcdfg
};

float squared_distance_to_segment(float px, float py, const Segment& g) {
  const float dx = g.x1 - g.x0, dy = g.y1 - g.y0;
  const float len2 = dx * dx + dy * dy;
  const float t = std::clamp(len2 > 0 ? ((px - g.x0) * dx + (py - g.y0) * dy) / len2 : 0.0f, 0.0f, 1.0f);
  const float ex = px - (g.x0 + t * dx), ey = py - (g.y0 + t * dy);
  return ex * ex + ey * ey;
}

// Draws one digit into a 28×28 image (row-major, zeroed by the caller); returns the standard
// deviation of the noise the caller adds to this image.
float draw_digit(int digit, std::mt19937_64& rng, float* img) {
  std::uniform_real_distribution<float> u01(0.0f, 1.0f);
  auto uniform = [&](float lo, float hi) { return lo + (hi - lo) * u01(rng); };
  const float scale = uniform(0.75f, 1.15f);
  const float w = 10.0f * scale, h = 18.0f * scale;
  const float stroke = uniform(1.5f, 3.2f);
  const float slant = uniform(-0.25f, 0.25f);  // leftward x shift per pixel below the centre
  const float brightness = uniform(0.7f, 1.0f);
  const float noise_sd = uniform(0.02f, 0.12f);
  // Centred like MNIST, then moved by a few pixels; clamped so the strokes stay inside.
  const float half = stroke / 2;
  const float mx = 1.0f + half + std::abs(slant) * h / 2 + w / 2, my = 1.0f + half + h / 2;
  const float cx = std::clamp(14.0f + uniform(-3.5f, 3.5f), mx, kSide - mx);
  const float cy = std::clamp(14.0f + uniform(-3.0f, 3.0f), my, kSide - my);
  const float left = cx - w / 2, top = cy - h / 2;

  std::array<Segment, 7> lit{};
  int n = 0;
  for (int s = 0; s < 7; ++s) {
    if (!(kDigitSegments[digit] >> s & 1)) continue;
    const Segment& g = kSegments[s];
    lit[n++] = {left + g.x0 * w, top + g.y0 * h, left + g.x1 * w, top + g.y1 * h};
  }
  // Only pixels within reach of a stroke can light up: the box grown by stroke, edge and slant.
  const float reach = half + 1.5f;
  const float sx = std::abs(slant) * (h / 2 + reach);
  const int x_lo = std::max(0, static_cast<int>(left - reach - sx));
  const int x_hi = std::min<int>(kSide, static_cast<int>(left + w + reach + sx) + 1);
  const int y_lo = std::max(0, static_cast<int>(top - reach));
  const int y_hi = std::min<int>(kSide, static_cast<int>(top + h + reach) + 1);
  for (int y = y_lo; y < y_hi; ++y) {
    const float py = y + 0.5f;
    // Undo the slant instead of slanting the segments: one shear for all of them.
    const float shift = 0.5f + slant * (py - cy);
    for (int x = x_lo; x < x_hi; ++x) {
      const float px = x + shift;
      float d2 = 1e9f;
      for (int s = 0; s < n; ++s) d2 = std::min(d2, squared_distance_to_segment(px, py, lit[s]));
      // Anti-aliased edge one pixel wide.
      img[y * kSide + x] = brightness * std::clamp(half + 0.5f - std::sqrt(d2), 0.0f, 1.0f);
    }
  }
  return noise_sd;
}

// uint8 [N,H,W] → float [N,1,H,W] in [0,1]; uint8 [N] → int64 [N].
torch::Tensor to_images(const torch::Tensor& raw) { return raw.to(torch::kFloat32).div_(255.0f).unsqueeze(1); }
torch::Tensor to_labels(const torch::Tensor& raw) { return raw.to(torch::kInt64); }

// Loads one split and checks it is what every model here expects.
Result<ImageSet> load_split(const std::string& dir, const char* images_name, const char* labels_name) {
  auto images = read_idx(dir + "/" + images_name, kIdxImagesMagic);
  if (!images.ok()) return images.status();
  auto labels = read_idx(dir + "/" + labels_name, kIdxLabelsMagic);
  if (!labels.ok()) return labels.status();
  const torch::Tensor& im = *images;
  const torch::Tensor& lb = *labels;
  if (im.size(1) != kSide || im.size(2) != kSide)
    return Status::invalid_argument(dir + "/" + images_name + ": images are " + std::to_string(im.size(1)) + "×" +
                                    std::to_string(im.size(2)) + ", expected 28×28");
  if (im.size(0) != lb.size(0))
    return Status::invalid_argument(dir + ": " + std::to_string(im.size(0)) + " images but " +
                                    std::to_string(lb.size(0)) + " labels");
  if (lb.numel() > 0 && lb.max().item<uint8_t>() >= kClasses)
    return Status::invalid_argument(dir + "/" + labels_name + ": labels outside 0..9");
  return ImageSet{to_images(im), to_labels(lb)};
}

}  // namespace

Result<torch::Tensor> read_idx_images(const std::string& path) {
  auto raw = read_idx(path, kIdxImagesMagic);
  if (!raw.ok()) return raw.status();
  try {
    return to_images(*raw);
  } catch (const std::exception& e) {
    return Status::internal(path + ": " + e.what());
  }
}

Result<torch::Tensor> read_idx_labels(const std::string& path) {
  auto raw = read_idx(path, kIdxLabelsMagic);
  if (!raw.ok()) return raw.status();
  try {
    return to_labels(*raw);
  } catch (const std::exception& e) {
    return Status::internal(path + ": " + e.what());
  }
}

ImageSet make_synthetic(int64_t samples, uint64_t seed) {
  samples = std::max<int64_t>(samples, 0);
  std::mt19937_64 rng(seed);
  std::vector<int64_t> digits(static_cast<size_t>(samples));
  for (int64_t i = 0; i < samples; ++i) digits[i] = i % kClasses;
  std::shuffle(digits.begin(), digits.end(), rng);

  torch::Tensor images = torch::zeros({samples, 1, kSide, kSide}, torch::kFloat32);
  torch::Tensor noise_sd = torch::empty({samples, 1, 1, 1}, torch::kFloat32);
  float* px = images.data_ptr<float>();
  float* sd = noise_sd.data_ptr<float>();
  for (int64_t i = 0; i < samples; ++i) sd[i] = draw_digit(static_cast<int>(digits[i]), rng, px + i * kSide * kSide);
  // Noise from torch's seeded generator: vectorised, 3× faster than std::normal_distribution
  // for the whole set. Like training itself it is bitwise reproducible for one build and CPU kind
  // (randn picks a SIMD kernel per CPU); the digits, labels and geometry are so everywhere.
  auto gen = at::detail::createCPUGenerator(seed);
  images.add_(torch::randn(images.sizes(), gen, torch::kFloat32).mul_(noise_sd)).clamp_(0.0f, 1.0f);
  return {images, torch::tensor(digits, torch::kInt64)};
}

std::string dataset_dir(const std::string& data_dir, const std::string& dataset) {
  return mufl::dataset_dir(data_dir, dataset);
}

Result<DatasetSplits> load_dataset(const std::string& data_dir, const std::string& dataset) {
  try {
    if (dataset == "synthetic")
      return DatasetSplits{make_synthetic(kSyntheticTrainSamples, kSyntheticTrainSeed),
                           make_synthetic(kSyntheticTestSamples, kSyntheticTestSeed)};
    if (!has_files(dataset)) return unknown_dataset(dataset);
    // Checked first so that a missing test file fails before seconds spent on the training set.
    if (Status s = check_dataset_files(data_dir, dataset); !s.is_ok()) return s;
    const std::string dir = dataset_dir(data_dir, dataset);
    auto train = load_split(dir, kIdxFiles[0], kIdxFiles[1]);
    if (!train.ok()) return train.status();
    auto test = load_split(dir, kIdxFiles[2], kIdxFiles[3]);
    if (!test.ok()) return test.status();
    return DatasetSplits{std::move(train).value(), std::move(test).value()};
  } catch (const std::exception& e) {
    return Status::internal("loading data set " + dataset + ": " + e.what());
  }
}

Status check_dataset_files(const std::string& data_dir, const std::string& dataset) {
  if (dataset == "synthetic") return Status::ok();
  if (!has_files(dataset)) return unknown_dataset(dataset);
  const std::string dir = dataset_dir(data_dir, dataset);
  for (const char* name : kIdxFiles) {
    std::error_code ec;
    const std::string path = dir + "/" + name;
    if (!fs::is_regular_file(path, ec)) return missing_file(path);
  }
  return Status::ok();
}

}  // namespace mufl::fl
