#include "fl/partition.h"

#include <catch2/catch.hpp>

#include <algorithm>
#include <cstdint>
#include <limits>
#include <map>
#include <utility>
#include <vector>
// Last: after the torch headers (Catch's CHECK, not glog's).
#include "tests/support/catch_over_torch.h"

using mufl::fl::Partition;
using mufl::fl::partition_dirichlet;
using mufl::fl::partition_iid;

namespace {

// True when every index 0..n-1 appears in exactly one client.
bool covers_exactly_once(const Partition& p, int64_t n) {
  std::vector<int> seen(static_cast<size_t>(n), 0);
  for (const auto& client : p)
    for (int64_t i : client) {
      if (i < 0 || i >= n) return false;
      ++seen[i];
    }
  return std::all_of(seen.begin(), seen.end(), [](int c) { return c == 1; });
}

// 10 labels, `per_class` samples each, interleaved 0,1,…,9,0,1,…
std::vector<int64_t> balanced_labels(int per_class) {
  std::vector<int64_t> labels;
  for (int i = 0; i < per_class * 10; ++i) labels.push_back(i % 10);
  return labels;
}

// Mean over clients of the share of a client's samples that carry its most frequent label:
// 0.1 for perfectly mixed clients over 10 labels, 1.0 when every client holds a single label.
double mean_top_label_share(const Partition& p, const std::vector<int64_t>& labels) {
  double sum = 0;
  int counted = 0;
  for (const auto& client : p) {
    if (client.empty()) continue;
    std::map<int64_t, int> freq;
    for (int64_t i : client) ++freq[labels[i]];
    int top = 0;
    for (auto [label, n] : freq) top = std::max(top, n);
    sum += static_cast<double>(top) / static_cast<double>(client.size());
    ++counted;
  }
  return sum / counted;
}

}  // namespace

TEST_CASE("partition_iid: every index once, sizes differ by at most one", "[partition]") {
  for (auto [n, clients] : std::vector<std::pair<int64_t, int>>{{1000, 7}, {100, 10}, {5, 8}, {0, 3}, {4000, 1}}) {
    CAPTURE(n, clients);
    Partition p = partition_iid(n, clients, 42);
    REQUIRE(p.size() == static_cast<size_t>(clients));
    CHECK(covers_exactly_once(p, n));
    auto [lo, hi] = std::minmax_element(p.begin(), p.end(), [](auto& a, auto& b) { return a.size() < b.size(); });
    CHECK(hi->size() - lo->size() <= 1);
    for (const auto& client : p) CHECK(std::is_sorted(client.begin(), client.end()));
  }
  CHECK(partition_iid(10, 0, 1).empty());
}

TEST_CASE("partition_iid: same seed same partition, other seed other partition", "[partition]") {
  CHECK(partition_iid(1000, 7, 5) == partition_iid(1000, 7, 5));
  CHECK(partition_iid(1000, 7, 5) != partition_iid(1000, 7, 6));
  // A shuffle, not contiguous blocks.
  Partition p = partition_iid(1000, 4, 5);
  CHECK(p[0].back() - p[0].front() > 250);
}

TEST_CASE("partition_dirichlet: every index once, deterministic for a seed", "[partition]") {
  const auto labels = balanced_labels(200);
  for (double alpha : {0.05, 0.1, 0.5, 1.0, 100.0}) {
    CAPTURE(alpha);
    auto p = partition_dirichlet(labels, 10, 20, alpha, 9);
    REQUIRE(p.ok());
    REQUIRE(p->size() == 20);
    CHECK(covers_exactly_once(*p, static_cast<int64_t>(labels.size())));
    for (const auto& client : *p) {
      CHECK(!client.empty());
      CHECK(std::is_sorted(client.begin(), client.end()));
    }
    auto again = partition_dirichlet(labels, 10, 20, alpha, 9);
    REQUIRE(again.ok());
    CHECK(*again == *p);
    auto other = partition_dirichlet(labels, 10, 20, alpha, 10);
    REQUIRE(other.ok());
    CHECK(*other != *p);
  }
}

TEST_CASE("partition_dirichlet: small alpha skews labels, large alpha mixes them", "[partition]") {
  const auto labels = balanced_labels(400);
  auto skewed = partition_dirichlet(labels, 10, 20, 0.1, 3);
  auto mixed = partition_dirichlet(labels, 10, 20, 1000.0, 3);
  REQUIRE(skewed.ok());
  REQUIRE(mixed.ok());
  const double skewed_share = mean_top_label_share(*skewed, labels);
  const double mixed_share = mean_top_label_share(*mixed, labels);
  CAPTURE(skewed_share, mixed_share);
  CHECK(skewed_share > 0.5);
  CHECK(mixed_share < 0.2);
}

TEST_CASE("partition_dirichlet: min_per_client is honoured", "[partition]") {
  const auto labels = balanced_labels(100);  // 1000 samples
  SECTION("by redrawing or topping up, even with tiny alpha and many clients") {
    for (int64_t min : {int64_t{1}, int64_t{5}, int64_t{10}}) {
      CAPTURE(min);
      auto p = partition_dirichlet(labels, 10, 100, 0.01, 4, min);
      REQUIRE(p.ok());
      CHECK(covers_exactly_once(*p, 1000));
      for (const auto& client : *p) CHECK(static_cast<int64_t>(client.size()) >= min);
    }
  }
  SECTION("exactly enough samples: every client gets exactly the minimum") {
    auto p = partition_dirichlet(labels, 10, 50, 0.1, 4, 20);
    REQUIRE(p.ok());
    CHECK(covers_exactly_once(*p, 1000));
    for (const auto& client : *p) CHECK(client.size() == 20);
  }
  SECTION("zero allows empty clients") {
    auto p = partition_dirichlet(labels, 10, 300, 0.01, 4, 0);
    REQUIRE(p.ok());
    CHECK(covers_exactly_once(*p, 1000));
  }
}

TEST_CASE("partition_dirichlet: classes without samples and a single client", "[partition]") {
  std::vector<int64_t> labels = {3, 3, 3, 7, 7, 7, 7};
  auto p = partition_dirichlet(labels, 10, 2, 0.5, 1);
  REQUIRE(p.ok());
  CHECK(covers_exactly_once(*p, 7));
  auto one = partition_dirichlet(labels, 10, 1, 0.5, 1);
  REQUIRE(one.ok());
  CHECK(*one == Partition{{0, 1, 2, 3, 4, 5, 6}});
}

TEST_CASE("partition_dirichlet: invalid arguments", "[partition]") {
  const auto labels = balanced_labels(10);  // 100 samples
  auto invalid = [](const mufl::Result<Partition>& r) { return !r.ok() && r.status().is_invalid_argument(); };
  CHECK(invalid(partition_dirichlet(labels, 10, 11, 0.5, 1, 10)));  // 110 > 100
  CHECK(invalid(partition_dirichlet(labels, 10, 4, 0.0, 1)));
  CHECK(invalid(partition_dirichlet(labels, 10, 4, -1.0, 1)));
  CHECK(invalid(partition_dirichlet(labels, 10, 4, std::numeric_limits<double>::quiet_NaN(), 1)));
  CHECK(invalid(partition_dirichlet(labels, 10, 0, 0.5, 1)));
  CHECK(invalid(partition_dirichlet(labels, 10, 4, 0.5, 1, -1)));
  CHECK(invalid(partition_dirichlet(labels, 10, 4, 0.5, 1, INT64_MAX)));  // no overflow
  CHECK(invalid(partition_dirichlet(labels, 5, 4, 0.5, 1)));              // label 9 >= 5 classes
  CHECK(invalid(partition_dirichlet({0, 1, -1}, 2, 1, 0.5, 1)));
  CHECK(invalid(partition_dirichlet({}, 10, 1, 0.5, 1)));  // one client, at least one sample
  auto alpha = partition_dirichlet(labels, 10, 4, 0.0, 1);
  REQUIRE(!alpha.ok());
  REQUIRE(alpha.status().field_errors().size() == 1);
  CHECK(alpha.status().field_errors()[0].field == "partition.alpha");
  CHECK(partition_dirichlet(labels, 10, 10, 0.5, 1, 10).ok());  // 100 == 100
}
