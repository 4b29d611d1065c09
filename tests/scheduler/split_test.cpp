#include "scheduler/grouping/split.h"

#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <limits>
#include <random>
#include <stdexcept>

using namespace mufl;
using namespace mufl::scheduler;

namespace {

using Groups = std::vector<std::vector<int>>;

// MAS's own scoring (harm_weight 1): the search is pinned on it; the harm weight has its own tests.
SplitPlan plan(const AffinityMatrix& z, int max_groups, uint64_t exhaustive_limit = 2'000'000) {
  SplitOptions options;
  options.max_groups = max_groups;
  options.harm_weight = 1.0;
  options.exhaustive_limit = exhaustive_limit;
  auto p = plan_split(z, options);
  REQUIRE(p.ok());
  return *p;
}

// K x K with `within` between members of the same cluster and `across` otherwise; cluster[t]
// names task t's cluster. The diagonal is 0 (ignored anyway).
AffinityMatrix clusters(const std::vector<int>& cluster, double within, double across) {
  const size_t k = cluster.size();
  AffinityMatrix z(k, std::vector<double>(k, 0.0));
  for (size_t i = 0; i < k; ++i)
    for (size_t j = 0; j < k; ++j)
      if (i != j) z[i][j] = cluster[i] == cluster[j] ? within : across;
  return z;
}

AffinityMatrix uniform(size_t k, double value) { return clusters(std::vector<int>(k, 0), value, value); }

// Values in [lo, hi) from the raw mt19937 output (std::uniform_real_distribution is not the same
// on every standard library; this is).
double draw(std::mt19937& gen, double lo, double hi) { return lo + (hi - lo) * (gen() / 4294967296.0); }

AffinityMatrix random_matrix(size_t k, std::mt19937& gen) {
  AffinityMatrix z(k, std::vector<double>(k, 0.0));
  for (size_t i = 0; i < k; ++i)
    for (size_t j = 0; j < k; ++j)
      if (i != j) z[i][j] = draw(gen, -1.0, 1.0);
  return z;
}

// The restricted growth string of a partition.
std::vector<int> rgs_of(const Groups& groups, int k) {
  std::vector<int> rgs(k, -1);
  int next = 0;
  std::vector<int> label(groups.size(), -1);
  std::vector<int> group_of(k);
  for (size_t g = 0; g < groups.size(); ++g)
    for (int t : groups[g]) group_of[t] = static_cast<int>(g);
  for (int t = 0; t < k; ++t) {
    int& l = label[group_of[t]];
    if (l < 0) l = next++;
    rgs[t] = l;
  }
  return rgs;
}

// Independent reference: tries every labelling in [0, m)^K, scores it with partition_score and
// keeps the best by the documented rule (scores within 1e-12 x max|Z| x K of each other are
// equal on the total, i.e. 1e-12 x max|Z| on the mean; then fewer groups; then the smallest
// restricted growth string).
Groups brute_force(const AffinityMatrix& z, int max_groups) {
  const int k = static_cast<int>(z.size());
  double scale = 0;
  for (int i = 0; i < k; ++i)
    for (int j = 0; j < k; ++j)
      if (i != j) scale = std::max(scale, std::abs(z[i][j]));
  const double tol = 1e-12 * scale;
  std::vector<int> labels(k, 0);
  Groups best;
  double best_score = 0;
  std::vector<int> best_rgs;
  while (true) {
    Groups groups(max_groups);
    for (int t = 0; t < k; ++t) groups[labels[t]].push_back(t);
    groups.erase(std::remove_if(groups.begin(), groups.end(), [](const auto& g) { return g.empty(); }), groups.end());
    std::sort(groups.begin(), groups.end());
    const double s = partition_score(z, groups);
    const std::vector<int> rgs = rgs_of(groups, k);
    const bool better = best.empty() || s > best_score + tol ||
                        (s >= best_score - tol &&
                         (groups.size() < best.size() || (groups.size() == best.size() && rgs < best_rgs)));
    if (better) {
      best = groups;
      best_score = s;
      best_rgs = rgs;
    }
    int t = 0;
    while (t < k && ++labels[t] == max_groups) labels[t++] = 0;
    if (t == k) break;
  }
  return best;
}

}  // namespace

TEST_CASE("split: count_partitions sums Stirling numbers of the second kind") {
  CHECK(count_partitions(5, 3) == 41);      // 1 + 15 + 25
  CHECK(count_partitions(10, 3) == 9842);   // 1 + 511 + 9330
  CHECK(count_partitions(14, 3) == 797162); // 1 + 8191 + 788970
  CHECK(count_partitions(15, 3) == 2391485);
  CHECK(count_partitions(4, 4) == 15);      // Bell(4)
  CHECK(count_partitions(4, 9) == 15);      // more groups than tasks: all partitions
  CHECK(count_partitions(10, 1) == 1);
  CHECK(count_partitions(1, 3) == 1);
  CHECK(count_partitions(0, 3) == 0);
  CHECK(count_partitions(3, 0) == 0);
  CHECK(count_partitions(-1, 3) == 0);
  CHECK(count_partitions(25, 25) == 4638590332229999353ULL);  // Bell(25) still fits
  CHECK(count_partitions(26, 26) == std::numeric_limits<uint64_t>::max());  // Bell(26) > 2^64
  CHECK(count_partitions(100, 3) == std::numeric_limits<uint64_t>::max());
  CHECK(count_partitions(1000, 1) == 1);
}

TEST_CASE("split: two clear clusters become two groups") {
  // Tasks {0,1} and {2,3}: +2 within, -1 across.
  // {01|23}: every task gets 2 from its partner -> 2.
  // {0123}: every task gets (2 - 1 - 1) / 3 = 0 -> 0.
  // {01|2|3}: 0 and 1 get 2; 2 alone gets (row 0 + column 0) / 6 = 0; so does 3 -> (2+2)/4 = 1.
  const AffinityMatrix z = clusters({0, 0, 1, 1}, 2.0, -1.0);
  const SplitPlan p = plan(z, 3);
  CHECK(p.groups == Groups{{0, 1}, {2, 3}});
  CHECK(p.score == Approx(2.0));
  CHECK(p.task_scores == std::vector<double>{2.0, 2.0, 2.0, 2.0});
  CHECK(p.method == "exhaustive");
  CHECK(p.partitions_scored == count_partitions(4, 3));
  CHECK(p.candidate_partitions == 14);

  // Interleaved labels and three clusters: the plan follows the clusters, not the indices.
  const SplitPlan q = plan(clusters({0, 1, 2, 0, 1, 2, 0, 1, 2}, 1.0, -0.5), 3);
  CHECK(q.groups == Groups{{0, 3, 6}, {1, 4, 7}, {2, 5, 8}});
  CHECK(q.score == Approx(1.0));
}

TEST_CASE("split: a uniform matrix ties everywhere and stays one group") {
  // Every task scores the common value in every partition, so all tie and the fewest groups win.
  for (double v : {1.0, 0.25, -5.0}) {
    INFO(v);
    const SplitPlan p = plan(uniform(5, v), 3);
    CHECK(p.groups == Groups{{0, 1, 2, 3, 4}});
    CHECK(p.score == Approx(v));
  }
}

TEST_CASE("split: one group and all singletons both score the mean affinity") {
  // An identity of the MAS rule (see split.h): so a split is chosen only when some partition
  // beats that mean, and the best plan is never below it.
  std::mt19937 gen(7);
  for (int round = 0; round < 20; ++round) {
    const size_t k = 2 + round % 6;
    const AffinityMatrix z = random_matrix(k, gen);
    double mean = 0;
    for (size_t i = 0; i < k; ++i)
      for (size_t j = 0; j < k; ++j)
        if (i != j) mean += z[i][j];
    mean /= static_cast<double>(k * (k - 1));
    Groups one(1), alone;
    for (int t = 0; t < static_cast<int>(k); ++t) {
      one[0].push_back(t);
      alone.push_back({t});
    }
    CHECK(partition_score(z, one) == Approx(mean).margin(1e-12));
    CHECK(partition_score(z, alone) == Approx(mean).margin(1e-12));
    CHECK(plan(z, 3).score >= mean - 1e-12);
  }
}

TEST_CASE("split: strongly negative affinities - tasks everyone hurts end alone") {
  // Z[i][j] = -20 when j is 0 or 1 (every update hurts tasks 0 and 1), -1 otherwise.
  // Rows: 0 and 1 sum to -22 (-20 - 1 - 1), 2 and 3 to -41. Columns: 0 and 1 to -60, 2 and 3
  // to -3. Alone: task 0 or 1 scores (-22 - 60) / 6 = -13.67, task 2 or 3 (-41 - 3) / 6 = -7.33.
  // max_groups 3:
  //   {0|1|23}: -13.67 - 13.67 - 1 - 1 -> -7.33   (best)
  //   {0|123}:  -13.67 - 20 - 1 - 1     -> -8.92
  //   {01|23}:  -20 - 20 - 1 - 1        -> -10.5
  //   {0123}:   the mean affinity       -> -10.5
  // max_groups 2: {0|123} and {1|023} tie at -8.92; {023|1} ("0100") < {0|123} ("0111").
  AffinityMatrix z(4, std::vector<double>(4, 0.0));
  for (int i = 0; i < 4; ++i)
    for (int j = 0; j < 4; ++j)
      if (i != j) z[i][j] = j < 2 ? -20.0 : -1.0;
  const SplitPlan three = plan(z, 3);
  CHECK(three.groups == Groups{{0}, {1}, {2, 3}});
  CHECK(three.score == Approx(-22.0 / 3.0));
  CHECK(three.task_scores[0] == Approx(-82.0 / 6.0));
  CHECK(three.task_scores[2] == Approx(-1.0));
  // With room for four groups the four singletons score only the mean (-10.5): still three.
  CHECK(plan(z, 4).groups == Groups{{0}, {1}, {2, 3}});
  const SplitPlan two = plan(z, 2);
  CHECK(two.groups == Groups{{0, 2, 3}, {1}});
  CHECK(two.score == Approx((-82.0 / 6.0 - 20.0 - 1.0 - 1.0) / 4.0));
}

TEST_CASE("split: a conflicting task that hurts all the others ends up alone") {
  // Tasks 0..2 help each other (+1) and help task 3 (+1); task 3 hurts each of them (-4).
  // {012|3}: 0..2 get 1; task 3 alone gets (row -12 + column +3) / 6 = -1.5 -> 1.5 / 4 = 0.375.
  // {0123}:  0..2 get (1 + 1 - 4) / 3 = -2/3, task 3 gets 1 -> -0.25 (the mean).
  // {01|2|3}: 1 + 1 + 1/6 - 1.5 -> 0.167.  {01|23}: 1 + 1 - 4 + 1 -> -0.25.
  AffinityMatrix z = uniform(4, 1.0);
  for (int j = 0; j < 3; ++j) z[3][j] = -4.0;
  const SplitPlan p = plan(z, 3);
  CHECK(p.groups == Groups{{0, 1, 2}, {3}});
  CHECK(p.score == Approx(0.375));
  CHECK(p.task_scores[3] == Approx(-1.5));
}

TEST_CASE("split: ties prefer fewer groups, then the smallest restricted growth string") {
  SECTION("fewer groups") {
    // Z01 = Z10 = -1, every other affinity -10. Task 2 or 3 alone: (-30 - 30) / 6 = -10.
    // {01|23}: -1 - 1 - 10 - 10 -> -5.5.  {01|2|3}: -1 - 1 - 10 - 10 -> -5.5 as well.
    AffinityMatrix z = uniform(4, -10.0);
    z[0][1] = z[1][0] = -1.0;
    const SplitPlan p = plan(z, 3);
    CHECK(p.groups == Groups{{0, 1}, {2, 3}});
    CHECK(p.score == Approx(-5.5));
    CHECK(partition_score(z, {{0, 1}, {2}, {3}}) == Approx(-5.5));
  }
  SECTION("smallest string among as many groups") {
    // Pairs {0,1},{2,3} and {0,2},{1,3} have +2 inside, {0,3},{1,2} have -1.
    // {01|23} ("0011") and {02|13} ("0101") both score 2; 3 groups score at most 1.5.
    AffinityMatrix z = uniform(4, 2.0);
    z[0][3] = z[3][0] = z[1][2] = z[2][1] = -1.0;
    CHECK(plan(z, 3).groups == Groups{{0, 1}, {2, 3}});
    // Swap the roles: +2 for {0,2},{1,3} and {0,3},{1,2}; "0101" < "0110".
    AffinityMatrix w = uniform(4, 2.0);
    w[0][1] = w[1][0] = w[2][3] = w[3][2] = -1.0;
    CHECK(plan(w, 3).groups == Groups{{0, 2}, {1, 3}});
  }
}

TEST_CASE("split: one task") {
  const SplitPlan p = plan({{std::nan("")}}, 3);  // the diagonal is ignored, even NaN
  CHECK(p.groups == Groups{{0}});
  CHECK(p.score == 0.0);
  CHECK(p.task_scores == std::vector<double>{0.0});
  CHECK(p.method == "exhaustive");
  CHECK(p.partitions_scored == 1);
}

TEST_CASE("split: max_groups 1 keeps one group") {
  const SplitPlan p = plan(clusters({0, 0, 1, 1}, 2.0, -1.0), 1);
  CHECK(p.groups == Groups{{0, 1, 2, 3}});
  CHECK(p.score == Approx(0.0));
  CHECK(p.partitions_scored == 1);
  // More groups than tasks act as K.
  CHECK(plan(clusters({0, 0, 1, 1}, 2.0, -1.0), 50).groups == Groups{{0, 1}, {2, 3}});
}

TEST_CASE("split: bad input is refused") {
  SplitOptions options;
  auto field_of = [](const Result<SplitPlan>& r) {
    REQUIRE_FALSE(r.ok());
    REQUIRE(r.status().is_invalid_argument());
    REQUIRE(r.status().field_errors().size() == 1);
    return r.status().field_errors()[0].field;
  };
  CHECK(field_of(plan_split({}, options)) == "affinity");
  CHECK(field_of(plan_split({{}}, options)) == "affinity");
  CHECK(field_of(plan_split({{0, 1}, {1}}, options)) == "affinity");
  CHECK(field_of(plan_split({{0, 1, 2}, {1, 0, 2}}, options)) == "affinity");
  CHECK(field_of(plan_split({{0, std::nan("")}, {1, 0}}, options)) == "affinity");
  CHECK(field_of(plan_split({{0, 1}, {std::numeric_limits<double>::infinity(), 0}}, options)) == "affinity");
  options.max_groups = 0;
  CHECK(field_of(plan_split({{0, 1}, {1, 0}}, options)) == "max_groups");
}

TEST_CASE("split: partition_score checks its partition and reports task scores") {
  const AffinityMatrix z = clusters({0, 0, 1, 1}, 2.0, -1.0);
  std::vector<double> scores;
  CHECK(partition_score(z, {{3, 2}, {1, 0}}, &scores) == Approx(2.0));
  CHECK(scores == std::vector<double>{2.0, 2.0, 2.0, 2.0});
  CHECK_THROWS_AS(partition_score(z, {{0, 1}, {2}}), std::invalid_argument);          // 3 missing
  CHECK_THROWS_AS(partition_score(z, {{0, 1}, {1, 2, 3}}), std::invalid_argument);    // 1 twice
  CHECK_THROWS_AS(partition_score(z, {{0, 1}, {}, {2, 3}}), std::invalid_argument);   // empty group
  CHECK_THROWS_AS(partition_score(z, {{0, 1}, {2, 4}}), std::invalid_argument);       // out of range
  CHECK_THROWS_AS(partition_score({}, {}), std::invalid_argument);
  CHECK_THROWS_AS(partition_score({{0, 1}}, {{0}}), std::invalid_argument);            // not square
}

TEST_CASE("split: exhaustive search matches a brute force over labellings") {
  std::mt19937 gen(2024);
  for (int round = 0; round < 60; ++round) {
    const int k = 2 + round % 6;         // 2..7 tasks
    const int m = 1 + (round / 6) % 4;   // 1..4 groups
    const AffinityMatrix z = random_matrix(static_cast<size_t>(k), gen);
    INFO("round " << round << " k " << k << " m " << m);
    const SplitPlan p = plan(z, m);
    CHECK(p.method == "exhaustive");
    CHECK(p.partitions_scored == count_partitions(k, m));
    CHECK(p.groups == brute_force(z, m));
    CHECK(p.score == partition_score(z, p.groups));
  }
}

TEST_CASE("split: the heuristic finds planted clusters beyond the exhaustive limit") {
  // Three clusters of six (labels shuffled over 18 tasks): +1 within, -1 across, plus noise in
  // [-0.3, 0.3). 18 tasks in 3 groups is 64,561,751,355 partitions: far past any limit.
  std::mt19937 gen(11);
  std::vector<int> cluster;
  for (int c = 0; c < 3; ++c)
    for (int n = 0; n < 6; ++n) cluster.push_back(c);
  std::shuffle(cluster.begin(), cluster.end(), gen);
  AffinityMatrix z = clusters(cluster, 1.0, -1.0);
  for (auto& row : z)
    for (double& v : row) v += draw(gen, -0.3, 0.3);
  Groups planted(3);
  for (int t = 0; t < 18; ++t) planted[cluster[t]].push_back(t);
  std::sort(planted.begin(), planted.end());

  const SplitPlan p = plan(z, 3);
  CHECK(p.method == "heuristic");
  CHECK(p.candidate_partitions > SplitOptions{}.exhaustive_limit);
  CHECK(p.groups == planted);
  CHECK(p.score == partition_score(z, planted));
  CHECK(p.partitions_scored > 0);

  // Forced with a small limit on 9 tasks, where exhaustive still runs: the same answer.
  const AffinityMatrix small = clusters({0, 1, 2, 0, 1, 2, 0, 1, 2}, 1.0, -1.0);
  const SplitPlan h = plan(small, 3, 100);
  CHECK(h.method == "heuristic");
  CHECK(h.groups == plan(small, 3).groups);
}

TEST_CASE("split: heuristic and exhaustive agree on most random 6-task matrices") {
  std::mt19937 gen(6);
  int agree = 0;
  const int rounds = 200;
  for (int round = 0; round < rounds; ++round) {
    const AffinityMatrix z = random_matrix(6, gen);
    const SplitPlan best = plan(z, 3);
    const SplitPlan h = plan(z, 3, 0);
    REQUIRE(best.method == "exhaustive");
    REQUIRE(h.method == "heuristic");
    INFO("round " << round);
    CHECK(h.score <= best.score + 1e-12);  // the heuristic is never better than the optimum
    CHECK(h.groups.size() <= 3);
    if (h.score >= best.score - 1e-12) ++agree;
  }
  INFO("agreed on " << agree << " of " << rounds);
  CHECK(agree >= rounds * 9 / 10);  // 198 of 200 at the time of writing
}

TEST_CASE("split: harm counts twice by default, so a task its mates hurt is not kept with them for others' gain") {
  // In one group task 1's mates raise its loss (0.2 - 0.5 < 0) while the others gain a little.
  // MAS (harm weight 1) keeps all three together (score 0.05, against 0.0333 for {0,2} {1});
  // with harm counted twice, {0,2} {1} wins (0.0 against -0.05): no member is hurt by its mates.
  const AffinityMatrix z = {{0, 0.2, 0.0}, {-0.1, 0, 0.6}, {0.1, -0.5, 0}};
  SplitOptions mas;
  mas.harm_weight = 1.0;
  mas.max_groups = 2;
  auto a = plan_split(z, mas);
  REQUIRE(a.ok());
  CHECK(a->groups == Groups{{0, 1, 2}});
  CHECK(a->score == Approx(0.05));
  SplitOptions regret;  // default harm weight 2
  regret.max_groups = 2;
  auto b = plan_split(z, regret);
  REQUIRE(b.ok());
  CHECK(b->groups == Groups{{0, 2}, {1}});
  CHECK(b->score == Approx(partition_score(weigh_harm(z, 2.0), b->groups)).margin(1e-12));
  // Without any negative affinity the weight changes nothing.
  const AffinityMatrix helpful = {{0, 1.0, 0.1}, {1.0, 0, 0.1}, {0.9, 0.9, 0}};
  CHECK(plan_split(helpful, mas)->groups == plan_split(helpful, regret)->groups);
  CHECK(weigh_harm(z, 3.0)[2][1] == Approx(-1.5));
  CHECK(weigh_harm(z, 3.0)[0][1] == 0.2);
  SplitOptions bad;
  bad.harm_weight = 0.5;
  CHECK(plan_split(z, bad).status().is_invalid_argument());
}

TEST_CASE("split no_harm: a pair splits when a step of one raises the other's loss, even if the pair gains on the mean") {
  // The mnist label pair's consolidation affinity (2026-12-07): class helps parity (0.152),
  // parity's steps raise class's loss on balance (harm-weighted -0.014). MAS keeps a pair (one
  // group and two singletons tie); no_harm puts class alone.
  const AffinityMatrix pair = {{0, 0.152}, {-0.007, 0}};
  CHECK(plan_split(pair)->groups == Groups{{0, 1}});
  SplitOptions no_harm;
  no_harm.rule = SplitRule::kNoHarm;
  auto p = plan_split(pair, no_harm);
  REQUIRE(p.ok());
  CHECK(p->groups == Groups{{0}, {1}});
  CHECK(p->score == 0.0);
  CHECK(p->task_scores == std::vector<double>{0.0, 0.0});
  // Both helped: they stay together, each scoring its mate's help.
  const AffinityMatrix mutual = {{0, 0.3}, {0.1, 0}};
  auto m = plan_split(mutual, no_harm);
  REQUIRE(m.ok());
  CHECK(m->groups == Groups{{0, 1}});
  CHECK(m->task_scores[0] == Approx(0.1));
  CHECK(m->task_scores[1] == Approx(0.3));
  CHECK(m->score == Approx(0.2));
}

TEST_CASE("split no_harm: the best partition in which nobody is harmed, past max_groups if it must be") {
  // 0 and 1 help each other; 2 is harmed by 0 (-0.4) but helped by 1 (0.1); 3 is harmed by all.
  const AffinityMatrix z = {{0, 0.5, -0.2, -0.1}, {0.4, 0, 0.1, -0.1}, {0.0, 0.2, 0, -0.3}, {0.1, 0.1, 0.1, 0}};
  SplitOptions no_harm;
  no_harm.rule = SplitRule::kNoHarm;
  no_harm.max_groups = 2;  // not a bound for no_harm: 3 must be alone
  auto p = plan_split(z, no_harm);
  REQUIRE(p.ok());
  // {0,1} scores 0.4 + 0.5; {1,2} would score 0.2 + 0.1 with 0 and 3 alone: {0,1} {2} {3} wins.
  CHECK(p->groups == Groups{{0, 1}, {2}, {3}});
  CHECK(p->method == "exhaustive");
  for (size_t t = 0; t < z.size(); ++t) CHECK(p->task_scores[t] >= 0);
}

TEST_CASE("split no_harm: past 10 tasks a greedy merge finds helpful blocks and leaves a harmed task alone") {
  // Twelve tasks in three blocks of four that help each other, task 11 harmed by everyone.
  const int k = 12;
  AffinityMatrix z(k, std::vector<double>(k, -0.05));
  for (int i = 0; i < 11; ++i)
    for (int j = 0; j < 11; ++j)
      if (i != j && i / 4 == j / 4) z[i][j] = 0.3;
  for (int i = 0; i < k; ++i) z[i][i] = 1;
  SplitOptions no_harm;
  no_harm.rule = SplitRule::kNoHarm;
  auto p = plan_split(z, no_harm);
  REQUIRE(p.ok());
  CHECK(p->method == "heuristic");
  CHECK(p->groups == Groups{{0, 1, 2, 3}, {4, 5, 6, 7}, {8, 9, 10}, {11}});
  CHECK(parse_split_rule("no_harm") == SplitRule::kNoHarm);
  CHECK(parse_split_rule("mas") == SplitRule::kMas);
  CHECK(!parse_split_rule("best"));
  CHECK(std::string(to_string(SplitRule::kNoHarm)) == "no_harm");
}

namespace {

bool kind_pure(const Groups& groups, const std::vector<std::string>& kinds) {
  for (const auto& g : groups)
    for (int t : g)
      if (kinds[t] != kinds[g.front()]) return false;
  return true;
}

// The best score over every kind-pure partition into at most max_groups groups (brute force
// over labellings).
double best_pure_score(const AffinityMatrix& z, const std::vector<std::string>& kinds, int max_groups) {
  const int k = static_cast<int>(z.size());
  double best = -std::numeric_limits<double>::infinity();
  std::vector<int> label(k, 0);
  for (;;) {
    Groups groups(max_groups);
    for (int t = 0; t < k; ++t) groups[label[t]].push_back(t);
    groups.erase(std::remove_if(groups.begin(), groups.end(), [](const auto& g) { return g.empty(); }), groups.end());
    if (kind_pure(groups, kinds)) best = std::max(best, partition_score(z, groups));
    int t = 0;
    while (t < k && ++label[t] == max_groups) label[t++] = 0;
    if (t == k) return best;
  }
}

}  // namespace

TEST_CASE("split by kind: no group mixes kinds, and the best such partition wins") {
  // Tasks 0 and 2 help each other, as do 1 and 3; MAS pairs them across kinds.
  const AffinityMatrix z = clusters({0, 1, 0, 1}, 1.0, -1.0);
  const std::vector<std::string> kinds = {"label", "label", "dense", "dense"};
  SplitOptions options;
  options.harm_weight = 1.0;
  CHECK(plan_split(z, options)->groups == Groups{{0, 2}, {1, 3}});
  options.kinds = kinds;
  auto p = plan_split(z, options);
  REQUIRE(p.ok());
  CHECK(kind_pure(p->groups, kinds));
  CHECK(p->score == Approx(best_pure_score(z, kinds, 3)));

  // Random matrices, 7 tasks of three kinds: exhaustive is the brute force's optimum; the
  // heuristic (forced by a small limit) keeps kinds apart too, and is never better.
  std::mt19937 gen(21);
  const std::vector<std::string> three = {"label", "dense", "label", "embedding", "dense", "dense", "label"};
  for (int trial = 0; trial < 20; ++trial) {
    const AffinityMatrix r = random_matrix(7, gen);
    SplitOptions o;
    o.kinds = three;
    auto exhaustive = plan_split(r, o);
    REQUIRE(exhaustive.ok());
    CHECK(exhaustive->method == "exhaustive");
    CHECK(kind_pure(exhaustive->groups, three));
    CHECK(exhaustive->score == Approx(best_pure_score(weigh_harm(r, o.harm_weight), three, 3)));
    o.exhaustive_limit = 1;
    auto heuristic = plan_split(r, o);
    REQUIRE(heuristic.ok());
    CHECK(heuristic->method == "heuristic");
    CHECK(kind_pure(heuristic->groups, three));
    CHECK(heuristic->score <= exhaustive->score + 1e-12);
  }
}

TEST_CASE("split by kind: more kinds than max_groups give a group per kind, no_harm keeps kinds apart, a wrong count is refused") {
  const AffinityMatrix z = uniform(3, 0.5);
  SplitOptions options;
  options.max_groups = 1;
  options.kinds = {"label", "dense", "embedding"};
  auto p = plan_split(z, options);
  REQUIRE(p.ok());
  CHECK(p->groups == Groups{{0}, {1}, {2}});

  SplitOptions no_harm;
  no_harm.rule = SplitRule::kNoHarm;
  const AffinityMatrix helpful = uniform(4, 0.5);  // everyone helps everyone alike
  CHECK(plan_split(helpful, no_harm)->groups == Groups{{0, 1, 2, 3}});
  no_harm.kinds = {"label", "label", "dense", "dense"};
  CHECK(plan_split(helpful, no_harm)->groups == Groups{{0, 1}, {2, 3}});

  SplitOptions wrong;
  wrong.kinds = {"label", "dense"};
  auto bad = plan_split(z, wrong);
  REQUIRE_FALSE(bad.ok());
  CHECK(bad.status().is_invalid_argument());
  REQUIRE(bad.status().field_errors().size() == 1);
  CHECK(bad.status().field_errors()[0].field == "kinds");
}
