#include "core/group.h"

#include <catch2/catch.hpp>

#include <set>
#include <string>

using namespace mufl;

TEST_CASE("GroupPhase: every phase round-trips through its stored name") {
  std::set<std::string> names;
  for (GroupPhase p : kAllGroupPhases) {
    auto back = parse_group_phase(to_string(p));
    REQUIRE(back.has_value());
    CHECK(*back == p);
    names.insert(to_string(p));
  }
  CHECK(names == std::set<std::string>{"consolidating", "training", "split", "done", "failed"});
}

TEST_CASE("GroupPhase: an unknown name parses to nothing") {
  CHECK_FALSE(parse_group_phase("").has_value());
  CHECK_FALSE(parse_group_phase("Training").has_value());
  CHECK_FALSE(parse_group_phase("splitting").has_value());
}

TEST_CASE("GroupPhase: only consolidating and training are live") {
  CHECK(is_live(GroupPhase::kConsolidating));
  CHECK(is_live(GroupPhase::kTraining));
  CHECK_FALSE(is_live(GroupPhase::kSplit));
  CHECK_FALSE(is_live(GroupPhase::kDone));
  CHECK_FALSE(is_live(GroupPhase::kFailed));
}
