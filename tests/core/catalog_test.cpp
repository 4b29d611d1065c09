#include "core/catalog.h"

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

using mufl::Catalog;

TEST_CASE("catalog: the three data sets with the eight tasks") {
  const Catalog& c = Catalog::builtin();
  for (const char* ds : {"synthetic", "mnist", "fashion-mnist"}) {
    INFO(ds);
    REQUIRE(c.dataset(ds) != nullptr);
    for (const char* t : {"class", "parity", "magnitude", "reconstruct", "segment", "edges", "distance", "ssl"})
      CHECK(c.supports(ds, t));
  }
  CHECK(c.dataset("cifar10") == nullptr);
  CHECK_FALSE(c.supports("mnist", "nope"));
  CHECK_FALSE(c.supports("nope", "class"));
  CHECK(c.task("class")->outputs == 10);
  CHECK(c.task("segment")->kind == "dense");
  CHECK(c.task("ssl")->kind == "embedding");
  CHECK(c.task("ssl")->metric == "linear_probe_accuracy");
}

TEST_CASE("catalog: JSON lists every entry with its target, loss and metric") {
  auto j = Catalog::builtin().to_json();
  CHECK(j["datasets"].size() == 3);
  CHECK(j["tasks"].size() == 8);
  for (const auto& t : j["tasks"]) {
    CHECK_FALSE(t["target"].get<std::string>().empty());
    CHECK_FALSE(t["metric"].get<std::string>().empty());
  }
  CHECK(j["datasets"][0]["input_shape"] == nlohmann::json({1, 28, 28}));
}
