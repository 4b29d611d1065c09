#include <catch2/catch.hpp>

#include "fl/augment.h"
// Last: after the torch headers (Catch's CHECK, not glog's).
#include "tests/support/catch_over_torch.h"

using namespace mufl::fl;

namespace {
// Eight images with a bright off-centre square each, so that crops and flips move something.
torch::Tensor squares() {
  auto images = torch::zeros({8, 1, 28, 28});
  for (int64_t i = 0; i < 8; ++i) images[i][0].slice(0, 4 + i, 12 + i).slice(1, 3, 10).fill_(0.2 + 0.1 * static_cast<double>(i));
  return images;
}
}  // namespace

TEST_CASE("augment: the same seed gives the same views, another seed other views", "[augment]") {
  const auto images = squares();
  const auto a = augment(images, 42), b = augment(images, 42), c = augment(images, 43);
  CHECK(torch::equal(a, b));
  CHECK_FALSE(torch::equal(a, c));
  CHECK(a.sizes() == images.sizes());
  CHECK(a.min().item<float>() >= 0.0f);
  CHECK(a.max().item<float>() <= 1.0f);
  CHECK_FALSE(torch::equal(a, images));  // it did change them
  // Each image gets its own draw: two identical images in one batch get different views.
  const auto twins = torch::cat({images.slice(0, 0, 1), images.slice(0, 0, 1)});
  const auto v = augment(twins, 7);
  CHECK_FALSE(torch::equal(v[0], v[1]));
}

TEST_CASE("augment: paired views stack two different views of each image, first views first", "[augment]") {
  const auto images = squares();
  const auto pair = paired_views(images, 5);
  REQUIRE(pair.sizes() == torch::IntArrayRef({16, 1, 28, 28}));
  CHECK(torch::equal(pair, paired_views(images, 5)));
  CHECK_FALSE(torch::equal(pair, paired_views(images, 6)));
  CHECK_FALSE(torch::equal(pair.slice(0, 0, 8), pair.slice(0, 8, 16)));
}

TEST_CASE("augment: with every transform off but the crop, a view is the image shifted by at most pad", "[augment]") {
  AugmentOptions only_crop;
  only_crop.flip = false;
  only_crop.brightness = 0;
  only_crop.contrast = 0;
  only_crop.noise_std = 0;
  auto image = torch::zeros({1, 1, 28, 28});
  image[0][0][14][14] = 1.0;  // one pixel in the middle: wherever the crop lands, it stays inside
  for (uint64_t seed = 0; seed < 20; ++seed) {
    const auto v = augment(image, seed, only_crop);
    CHECK(v.sum().item<float>() == 1.0f);
    const auto at = v.flatten().argmax().item<int64_t>();
    CHECK(std::abs(at / 28 - 14) <= 4);
    CHECK(std::abs(at % 28 - 14) <= 4);
  }
  AugmentOptions nothing = only_crop;
  nothing.pad = 0;
  CHECK(torch::equal(augment(image, 3, nothing), image));
}
