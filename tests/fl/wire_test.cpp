#include "fl/wire.h"

#include <catch2/catch.hpp>
// Last: after the torch headers (Catch's CHECK, not glog's).
#include "tests/support/catch_over_torch.h"

using namespace mufl;
using namespace mufl::fl;

namespace {

MultiTaskNet net_of(std::vector<std::string> names, std::vector<std::string> keys, uint64_t seed) {
  std::vector<TaskDef> tasks;
  for (const auto& n : names) tasks.push_back(*find_task(n));
  torch::manual_seed(seed);
  return MultiTaskNet(tasks, keys);
}

}  // namespace

TEST_CASE("wire: a model's weights go through safetensors bytes and come back bit for bit") {
  auto model = net_of({"class", "segment"}, {"act_a", "act_b"}, 3);
  auto bytes = protocol::encode_safetensors(to_tensor_file(model, {{"round", "4"}}));
  REQUIRE(bytes.ok());
  auto file = protocol::decode_safetensors(*bytes);
  REQUIRE(file.ok());
  CHECK(file->metadata.at("round") == "4");
  CHECK(file->tensors.size() == weight_names(model).size());
  CHECK(file->tensors.front().name == weight_names(model).front());  // the parameters' order

  auto other = net_of({"class", "segment"}, {"act_a", "act_b"}, 99);  // same shapes, other values
  auto w = weights_from(*file, other);
  REQUIRE(w.ok());
  const auto original = get_weights(model);
  REQUIRE(w->size() == original.size());
  for (size_t i = 0; i < original.size(); ++i) CHECK(torch::equal((*w)[i], original[i]));
  CHECK_FALSE(torch::equal(get_weights(other)[0], original[0]));  // weights_from does not change the model
}

TEST_CASE("wire: weights for other heads or other shapes are refused by name") {
  auto model = net_of({"class", "segment"}, {"act_a", "act_b"}, 3);
  auto file = to_tensor_file(model);
  auto other_heads = net_of({"class", "segment"}, {"act_a", "act_c"}, 3);
  auto r = weights_from(file, other_heads);
  REQUIRE_FALSE(r.ok());
  CHECK_THAT(r.status().message(), Catch::Contains("head_act_c"));

  auto bent = file;
  bent.tensors.back().shape = {static_cast<int64_t>(bent.tensors.back().values.size()), 1};
  r = weights_from(bent, model);
  REQUIRE_FALSE(r.ok());
  CHECK_THAT(r.status().message(), Catch::Contains(bent.tensors.back().name));
}
