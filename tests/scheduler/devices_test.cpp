#include "scheduler/devices.h"

#include <catch2/catch.hpp>

using namespace mufl;
using namespace mufl::scheduler;

namespace {
std::vector<std::string> names(const std::string& spec, int cuda) {
  auto d = parse_devices(spec, cuda);
  REQUIRE(d.ok());
  std::vector<std::string> out;
  for (const auto& x : *d) out.push_back(x.name + "=" + x.torch_device);
  return out;
}
}  // namespace

TEST_CASE("devices: cpu slots, cuda devices, lists and auto") {
  CHECK(names("cpu:2", 0) == std::vector<std::string>{"cpu:0=cpu", "cpu:1=cpu"});
  CHECK(names("cpu", 0) == std::vector<std::string>{"cpu:0=cpu"});
  CHECK(names("auto", 0) == std::vector<std::string>{"cpu:0=cpu"});
  CHECK(names("auto", 2) == std::vector<std::string>{"cuda:0=cuda:0", "cuda:1=cuda:1"});
  CHECK(names("cuda", 2) == std::vector<std::string>{"cuda:0=cuda:0", "cuda:1=cuda:1"});
  CHECK(names("cuda:1,cpu:1", 2) == std::vector<std::string>{"cuda:1=cuda:1", "cpu:0=cpu"});
}

TEST_CASE("devices: bad specs are refused with a message") {
  for (const char* spec : {"", "gpu", "cpu:0", "cpu:x", "cpu:65", "cuda", "cuda:0", "tpu:1", "cpu:2,"}) {
    INFO(spec);
    auto d = parse_devices(spec, 0);
    CHECK_FALSE(d.ok());
  }
  CHECK_FALSE(parse_devices("cuda:2", 2).ok());
}

TEST_CASE("devices: none means an API-only server", "[devices]") {
  auto d = parse_devices("none", 2);
  REQUIRE(d.ok());
  CHECK(d->empty());
  CHECK_FALSE(parse_devices("none,cpu:1", 0).ok());
}
