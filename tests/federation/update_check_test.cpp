// check_update: every kind of bad update is refused with its reason, a good one passes.
#include "federation/update_check.h"

#include <catch2/catch.hpp>

#include <cmath>
#include <limits>

using namespace mufl;
using namespace mufl::federation;
using protocol::NamedTensor;
using protocol::TensorFile;
using protocol::TensorSpec;

namespace {

const std::vector<TensorSpec> kModel = {{"encoder.conv.weight", {4, 1, 3, 3}}, {"head.class.bias", {10}}};

TensorFile good_file() {
  TensorFile f;
  f.tensors.push_back({"encoder.conv.weight", {4, 1, 3, 3}, std::vector<float>(36, 0.5f)});
  f.tensors.push_back({"head.class.bias", {10}, std::vector<float>(10, -0.25f)});
  f.metadata["mufl.report"] = R"({"samples": 60})";
  return f;
}

std::string encode(const TensorFile& f) {
  auto bytes = protocol::encode_safetensors(f);
  REQUIRE(bytes.ok());
  return *bytes;
}

std::string reason_of(const std::string& body) {
  auto checked = check_update(body, kModel);
  if (checked.file) return "ok";
  INFO(checked.rejection.detail);
  CHECK_FALSE(checked.rejection.detail.empty());
  return checked.rejection.reason;
}

}  // namespace

TEST_CASE("update check: a good update passes with its metadata") {
  auto checked = check_update(encode(good_file()), kModel);
  REQUIRE(checked.file);
  CHECK(checked.file->metadata.at("mufl.report") == R"({"samples": 60})");
  CHECK(checked.file->tensors.size() == 2);
}

TEST_CASE("update check: each fault is refused with its reason") {
  CHECK(reason_of("") == "malformed");
  CHECK(reason_of("not safetensors at all") == "malformed");
  const std::string good = encode(good_file());
  CHECK(reason_of(good.substr(0, good.size() - 3)) == "malformed");  // truncated

  TensorFile nan = good_file();
  nan.tensors[1].values[3] = std::numeric_limits<float>::quiet_NaN();
  CHECK(reason_of(encode(nan)) == "non_finite");
  TensorFile inf = good_file();
  inf.tensors[0].values[0] = std::numeric_limits<float>::infinity();
  CHECK(reason_of(encode(inf)) == "non_finite");

  TensorFile missing = good_file();
  missing.tensors.pop_back();
  CHECK(reason_of(encode(missing)) == "tensors");
  TensorFile renamed = good_file();
  renamed.tensors[1].name = "head.other.bias";
  CHECK(reason_of(encode(renamed)) == "tensors");
  TensorFile reshaped = good_file();
  reshaped.tensors[0].shape = {36};
  CHECK(reason_of(encode(reshaped)) == "tensors");

  TensorFile extra = good_file();
  extra.tensors.push_back({"smuggled", {1000}, std::vector<float>(1000, 1.0f)});
  CHECK(reason_of(encode(extra)) != "ok");
  TensorFile huge = good_file();
  huge.metadata["padding"] = std::string(kUpdateHeaderSlack + 4096, 'x');
  CHECK(reason_of(encode(huge)) == "too_large");
  CHECK(reason_of(std::string(max_update_bytes(kModel) + 1, '\0')) == "too_large");
}
