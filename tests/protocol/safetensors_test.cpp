#include "protocol/safetensors.h"

#include <catch2/catch.hpp>
#include <cmath>
#include <cstring>
#include <limits>
#include <nlohmann/json.hpp>
#include <random>

using namespace mufl;
using namespace mufl::protocol;

namespace {

TensorFile two_tensors() {
  return {{{"encoder.0.weight", {2, 3}, {1, 2, 3, 4, 5, 6}}, {"head_class.1.bias", {2}, {-0.5f, 0.25f}}},
          {{"format", "mufl"}}};
}

// A body with `header` (as given) and `data` bytes, with the 8-byte length in front.
std::string body(const std::string& header, const std::string& data) {
  std::string out(8, '\0');
  const uint64_t n = header.size();
  std::memcpy(out.data(), &n, 8);
  return out + header + data;
}

std::string f32_bytes(std::vector<float> v) { return std::string(reinterpret_cast<const char*>(v.data()), v.size() * 4); }

std::string error_of(std::string_view bytes, const DecodeLimits& limits = {}) {
  auto r = decode_safetensors(bytes, limits);
  REQUIRE_FALSE(r.ok());
  CHECK(r.status().code() == Status::Code::kInvalidArgument);
  return r.status().message();
}

}  // namespace

TEST_CASE("safetensors: a file round-trips names, shapes, values and metadata, and its data starts 8-byte aligned") {
  auto bytes = encode_safetensors(two_tensors());
  REQUIRE(bytes.ok());
  uint64_t n = 0;
  std::memcpy(&n, bytes->data(), 8);
  CHECK(n % 8 == 0);
  CHECK(bytes->size() == 8 + n + 8 * 4);
  // The header is the documented JSON: offsets into the data part, in the order written.
  const auto header = nlohmann::json::parse(bytes->substr(8, n));
  CHECK(header["encoder.0.weight"]["data_offsets"] == nlohmann::json({0, 24}));
  CHECK(header["head_class.1.bias"]["data_offsets"] == nlohmann::json({24, 32}));
  CHECK(header["__metadata__"]["format"] == "mufl");

  auto file = decode_safetensors(*bytes);
  REQUIRE(file.ok());
  REQUIRE(file->tensors.size() == 2);
  CHECK(file->tensors[0].name == "encoder.0.weight");
  CHECK(file->tensors[0].shape == std::vector<int64_t>{2, 3});
  CHECK(file->tensors[0].values == std::vector<float>{1, 2, 3, 4, 5, 6});
  CHECK(file->tensors[1].values == std::vector<float>{-0.5f, 0.25f});
  CHECK(file->metadata.at("format") == "mufl");
  CHECK(check_tensors(*file, {{"head_class.1.bias", {2}}, {"encoder.0.weight", {2, 3}}}).is_ok());
}

TEST_CASE("safetensors: a scalar and an empty tensor are valid, and encode refuses values that do not fit the shape") {
  TensorFile f{{{"s", {}, {7}}, {"e", {0, 4}, {}}}, {}};
  auto bytes = encode_safetensors(f);
  REQUIRE(bytes.ok());
  auto back = decode_safetensors(*bytes);
  REQUIRE(back.ok());
  CHECK(back->tensors.size() == 2);
  CHECK_FALSE(encode_safetensors({{{"x", {2, 2}, {1, 2, 3}}}, {}}).ok());
  CHECK_FALSE(encode_safetensors({{{"x", {1}, {1}}, {"x", {1}, {2}}}, {}}).ok());
  CHECK_FALSE(encode_safetensors({{{"__metadata__", {1}, {1}}}, {}}).ok());
}

TEST_CASE("safetensors: truncated, oversized and malformed headers are refused by name") {
  const std::string data = f32_bytes({1, 2});
  const std::string good = R"({"w":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}})";
  REQUIRE(decode_safetensors(body(good, data)).ok());

  CHECK_THAT(error_of("short"), Catch::Contains("8-byte"));
  std::string past = body(good, data);
  const uint64_t huge = 1000;
  std::memcpy(past.data(), &huge, 8);
  CHECK_THAT(error_of(past), Catch::Contains("runs past the end"));
  CHECK_THAT(error_of(body(good, data), DecodeLimits{16, 1 << 20, 10}), Catch::Contains("at most 16"));
  CHECK_THAT(error_of(body("{not json", data)), Catch::Contains("not valid JSON"));
  CHECK_THAT(error_of(body("[1,2]", data)), Catch::Contains("not a JSON object"));
  CHECK_THAT(error_of(body(std::string("{\"\xff\":1}"), data)), Catch::Contains("UTF-8"));
  CHECK_THAT(error_of(body(R"({"w":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"w":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}})", data)),
             Catch::Contains("twice"));
  CHECK_THAT(error_of(body(R"({"__metadata__":{"k":1},"w":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}})", data)),
             Catch::Contains("not a string"));
}

TEST_CASE("safetensors: wrong dtypes, shapes and offsets are refused, naming the tensor") {
  const std::string data = f32_bytes({1, 2});
  auto entry = [&](const std::string& fields) { return body(R"({"w":{)" + fields + "}}", data); };
  CHECK_THAT(error_of(entry(R"("dtype":"F16","shape":[2],"data_offsets":[0,8])")), Catch::Contains("'w' has dtype F16"));
  CHECK_THAT(error_of(entry(R"("shape":[2],"data_offsets":[0,8])")), Catch::Contains("'w' has no dtype"));
  CHECK_THAT(error_of(entry(R"("dtype":"F32","shape":[3],"data_offsets":[0,8])")), Catch::Contains("needs 12"));
  CHECK_THAT(error_of(entry(R"("dtype":"F32","shape":[-2],"data_offsets":[0,8])")), Catch::Contains("negative or too large"));
  CHECK_THAT(error_of(entry(R"("dtype":"F32","shape":[4294967296,4294967296],"data_offsets":[0,8])")),
             Catch::Contains("negative or too large"));
  CHECK_THAT(error_of(entry(R"("dtype":"F32","shape":["2"],"data_offsets":[0,8])")), Catch::Contains("list of integers"));
  CHECK_THAT(error_of(entry(R"("dtype":"F32","shape":[2],"data_offsets":[8,0])")), Catch::Contains("ends before"));
  CHECK_THAT(error_of(entry(R"("dtype":"F32","shape":[2],"data_offsets":[-1,7])")), Catch::Contains("data_offsets"));
  CHECK_THAT(error_of(entry(R"("dtype":"F32","shape":[1],"data_offsets":[4,8])")), Catch::Contains("a hole or an overlap"));
  CHECK_THAT(error_of(entry(R"("dtype":"F32","shape":[1],"data_offsets":[0,4])")), Catch::Contains("cover 4 bytes of 8"));
  // Two tensors over the same bytes.
  CHECK_THAT(error_of(body(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}})", data)),
             Catch::Contains("a hole or an overlap"));
}

TEST_CASE("safetensors: NaN or Inf anywhere, too much data, or too many tensors is refused") {
  const std::string header = R"({"w":{"dtype":"F32","shape":[3],"data_offsets":[0,12]}})";
  CHECK_THAT(error_of(body(header, f32_bytes({1, std::nanf(""), 3}))), Catch::Contains("NaN at index 1"));
  CHECK_THAT(error_of(body(header, f32_bytes({1, 2, std::numeric_limits<float>::infinity()}))), Catch::Contains("Inf at index 2"));
  CHECK_THAT(error_of(body(header, f32_bytes({1, 2, 3})), DecodeLimits{1 << 20, 8, 10}), Catch::Contains("at most 8"));
  CHECK_THAT(error_of(body(header, f32_bytes({1, 2, 3})), DecodeLimits{1 << 20, 1 << 20, 0}), Catch::Contains("more than 0 tensors"));
}

TEST_CASE("safetensors: check_tensors names the missing, extra or misshapen tensor") {
  auto file = decode_safetensors(*encode_safetensors(two_tensors()));
  REQUIRE(file.ok());
  CHECK_THAT(check_tensors(*file, {{"encoder.0.weight", {2, 3}}}).message(), Catch::Contains("'head_class.1.bias' is not part"));
  CHECK_THAT(check_tensors(*file, {{"encoder.0.weight", {2, 3}}, {"head_class.1.bias", {2}}, {"x", {1}}}).message(),
             Catch::Contains("'x' is missing"));
  CHECK_THAT(check_tensors(*file, {{"encoder.0.weight", {3, 2}}, {"head_class.1.bias", {2}}}).message(),
             Catch::Contains("expected [3,2]"));
}

TEST_CASE("safetensors: 20,000 random corruptions of a valid file decode cleanly or fail cleanly") {
  // Run under the sanitizer build too (MUFL_SANITIZE): a read out of bounds fails it there.
  const auto valid = *encode_safetensors(two_tensors());
  std::mt19937_64 rng(42);
  int decoded = 0, refused = 0;
  for (int i = 0; i < 20000; ++i) {
    std::string bytes = valid;
    const int edits = 1 + static_cast<int>(rng() % 4);
    for (int e = 0; e < edits; ++e) {
      const size_t at = rng() % bytes.size();
      switch (rng() % 3) {
        case 0: bytes[at] = static_cast<char>(rng()); break;           // change a byte
        case 1: bytes.resize(at); break;                                 // truncate
        default: bytes.insert(at, 1, static_cast<char>(rng())); break;  // insert a byte
      }
      if (bytes.empty()) break;
    }
    auto r = decode_safetensors(bytes);
    if (r.ok()) {
      ++decoded;
      for (const auto& t : r->tensors)
        for (float v : t.values) REQUIRE(std::isfinite(v));
    } else {
      ++refused;
      REQUIRE(r.status().code() == Status::Code::kInvalidArgument);
    }
  }
  CHECK(refused > 0);
  CHECK(decoded + refused == 20000);
}
