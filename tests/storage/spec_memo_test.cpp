#include <catch2/catch.hpp>

#include <nlohmann/json.hpp>
#include <atomic>
#include <thread>
#include <vector>

#include "storage/spec_memo.h"

namespace mufl::storage {
namespace {

ActivitySpec sample_spec(const std::string& name, int64_t rounds) {
  ActivitySpec s;
  s.name = name;
  s.dataset = "synthetic";
  s.task = "class";
  s.rounds = rounds;
  s.partition.kind = "dirichlet";
  s.partition.alpha = 0.5;
  s.deadline_unix_ms = 1'700'000'000'000;
  return s;
}

}  // namespace

TEST_CASE("parse_stored_spec returns the spec the text holds, again on a second read", "[storage][spec_memo]") {
  const ActivitySpec want = sample_spec("memo-a", 7);
  const std::string text = spec_to_json(want).dump();
  auto first = parse_stored_spec(text, "act_a");
  REQUIRE(first.ok());
  CHECK(*first == want);
  auto second = parse_stored_spec(text, "act_a");  // from the memo
  REQUIRE(second.ok());
  CHECK(*second == want);
}

TEST_CASE("parse_stored_spec keys on the text, so a changed text is parsed anew", "[storage][spec_memo]") {
  const std::string a = spec_to_json(sample_spec("memo-b", 3)).dump();
  const std::string b = spec_to_json(sample_spec("memo-b", 4)).dump();
  REQUIRE(parse_stored_spec(a, "act_b")->rounds == 3);
  CHECK(parse_stored_spec(b, "act_b")->rounds == 4);
  CHECK(parse_stored_spec(a, "act_b")->rounds == 3);
}

TEST_CASE("parse_stored_spec names the activity of a corrupt spec and does not keep it", "[storage][spec_memo]") {
  auto bad = parse_stored_spec("{not json", "act_bad");
  REQUIRE_FALSE(bad.ok());
  CHECK(bad.status().code() == Status::Code::kInternal);
  CHECK_THAT(bad.status().message(), Catch::Contains("act_bad") && Catch::Contains("corrupt spec"));
  auto missing = parse_stored_spec(R"({"name":"x"})", "act_missing");  // valid JSON, fields missing
  REQUIRE_FALSE(missing.ok());
  CHECK_THAT(missing.status().message(), Catch::Contains("act_missing"));
  // Asked again, still an error (a failure is never memoised as a spec).
  CHECK_FALSE(parse_stored_spec("{not json", "act_bad").ok());
}

TEST_CASE("parse_stored_spec stays right past its bound and from several threads", "[storage][spec_memo]") {
  const size_t n = kSpecMemoEntries + 100;  // crosses the bound once: the memo empties itself
  std::vector<std::string> texts;
  for (size_t i = 0; i < n; i += 97) texts.push_back(spec_to_json(sample_spec("memo-" + std::to_string(i), 1 + static_cast<int64_t>(i))).dump());
  for (size_t i = 0; i < n; ++i) REQUIRE(parse_stored_spec(spec_to_json(sample_spec("fill-" + std::to_string(i), 1)).dump(), "act_f").ok());
  std::vector<std::thread> threads;
  std::atomic<int> wrong{0};
  for (int t = 0; t < 4; ++t)
    threads.emplace_back([&] {
      for (int round = 0; round < 3; ++round)
        for (size_t k = 0; k < texts.size(); ++k) {
          auto s = parse_stored_spec(texts[k], "act_t");
          if (!s.ok() || s->rounds != 1 + static_cast<int64_t>(k * 97)) ++wrong;
        }
    });
  for (auto& t : threads) t.join();
  CHECK(wrong.load() == 0);
}

}  // namespace mufl::storage
