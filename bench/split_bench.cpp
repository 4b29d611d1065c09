// bench/split: how long the split search takes (scheduler/grouping/split.h), to state
// SplitOptions::exhaustive_limit in time.
//
// For each task count K, one random affinity matrix (std::mt19937 seeded with K, values uniform
// in [-1, 1) from the raw generator output) is planned with max_groups = 3:
//   baseline:  the exhaustive search (exhaustive_limit = UINT64_MAX), for K up to 16;
//   candidate: the heuristic (exhaustive_limit = 0), for every K.
// One warm-up call of each, then --reps timed calls each (default 5); the figures are medians.
// Also printed: the partitions scored, ns per partition (exhaustive), and how far the
// heuristic's score is below the exhaustive one on the same matrix.
// Prints a table and ends with ONE line of JSON; baseline_ms / candidate_ms / ratio are for
// K = 14, the largest K the default limit (2,000,000 partitions) searches exhaustively.
// Usage: split [--reps N]
#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <limits>
#include <map>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "scheduler/grouping/split.h"

namespace {

using mufl::scheduler::AffinityMatrix;
using mufl::scheduler::SplitOptions;
using mufl::scheduler::SplitPlan;

AffinityMatrix random_matrix(int k) {
  std::mt19937 gen(static_cast<uint32_t>(k));
  AffinityMatrix z(k, std::vector<double>(k, 0.0));
  for (int i = 0; i < k; ++i)
    for (int j = 0; j < k; ++j)
      if (i != j) z[i][j] = -1.0 + 2.0 * (gen() / 4294967296.0);
  return z;
}

struct Timed {
  double median_ms = 0;
  SplitPlan plan;
};

Timed time_plan(const AffinityMatrix& z, uint64_t limit, int reps) {
  SplitOptions options;
  options.max_groups = 3;
  options.exhaustive_limit = limit;
  Timed out;
  out.plan = *mufl::scheduler::plan_split(z, options);  // warm-up
  std::vector<double> ms;
  for (int r = 0; r < reps; ++r) {
    const auto start = std::chrono::steady_clock::now();
    out.plan = *mufl::scheduler::plan_split(z, options);
    ms.push_back(std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count());
  }
  std::sort(ms.begin(), ms.end());
  out.median_ms = ms[ms.size() / 2];
  return out;
}

std::string json_map(const std::map<int, double>& m) {
  std::ostringstream os;
  os << '{';
  bool first = true;
  for (const auto& [k, v] : m) {
    os << (first ? "" : ",") << '"' << k << "\":" << v;
    first = false;
  }
  os << '}';
  return os.str();
}

}  // namespace

int main(int argc, char** argv) {
  int reps = 5;
  for (int i = 1; i < argc; ++i) {
    if (std::strcmp(argv[i], "--reps") == 0 && i + 1 < argc) {
      reps = std::max(1, std::atoi(argv[++i]));
    } else {
      std::fprintf(stderr, "usage: %s [--reps N]\n", argv[0]);
      return 2;
    }
  }

  std::map<int, double> exhaustive_ms, heuristic_ms, heuristic_gap;
  std::printf("split search, max_groups 3, median of %d\n", reps);
  std::printf("%4s %14s %14s %10s %14s %10s %12s\n", "K", "partitions", "exhaustive_ms", "ns/part", "heuristic_ms",
              "h_scored", "h_gap");
  for (int k : {8, 10, 12, 13, 14, 15, 16, 20, 30, 50, 100}) {
    const AffinityMatrix z = random_matrix(k);
    const Timed h = time_plan(z, 0, reps);
    heuristic_ms[k] = h.median_ms;
    if (k <= 16) {
      const Timed e = time_plan(z, std::numeric_limits<uint64_t>::max(), reps);
      exhaustive_ms[k] = e.median_ms;
      heuristic_gap[k] = e.plan.score - h.plan.score;
      std::printf("%4d %14llu %14.3f %10.1f %14.3f %10llu %12.3g\n", k,
                  static_cast<unsigned long long>(e.plan.partitions_scored), e.median_ms,
                  e.median_ms * 1e6 / static_cast<double>(e.plan.partitions_scored), h.median_ms,
                  static_cast<unsigned long long>(h.plan.partitions_scored), heuristic_gap[k]);
    } else {
      std::printf("%4d %14s %14s %10s %14.3f %10llu %12s\n", k, "-", "-", "-", h.median_ms,
                  static_cast<unsigned long long>(h.plan.partitions_scored), "-");
    }
  }
  const double baseline = exhaustive_ms[14], candidate = heuristic_ms[14];
  std::printf("{\"bench\":\"split\",\"max_groups\":3,\"n\":14,\"baseline_ms\":%.4f,\"candidate_ms\":%.4f,\"ratio\":%.2f,"
              "\"exhaustive_ms\":%s,\"heuristic_ms\":%s,\"heuristic_gap\":%s}\n",
              baseline, candidate, candidate > 0 ? baseline / candidate : 0.0, json_map(exhaustive_ms).c_str(),
              json_map(heuristic_ms).c_str(), json_map(heuristic_gap).c_str());
  return 0;
}
