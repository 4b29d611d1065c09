#pragma once
// Split planning (the "split" of MuFL/MAS, merge and split): given the affinity matrix the merged
// activities measured during consolidation, choose how to cut them into groups of tasks that
// help each other. Pure C++ (no torch): the scheduler and the simulator call it directly.
//
// Scoring, as in MAS (EasyFL applications/mas/network_selection.py, no task overlap):
//   - Z[i][j] is the affinity i→j: how a step with task i's gradient changes task j's loss.
//     The diagonal is ignored; negative values count as they are.
//   - In a group G with |G| >= 2, task j scores the mean of Z[i][j] over the other members i.
//   - A task alone scores the mean of all its off-diagonal outgoing and incoming affinities:
//     (sum_k Z[j][k] + sum_k Z[k][j]) / (2 (K-1)), k over the other tasks (0 when K = 1).
//   - A partition scores the mean over tasks of their scores.
// The split is the partition of the K tasks into at most `max_groups` non-overlapping groups
// (every task in exactly one group) with the highest score.
//
// Consequence worth knowing: one group and all singletons both score exactly the mean
// off-diagonal affinity, which is also the average score of the partitions of any given shape.
// So the search keeps one group only when nothing beats that average (for instance a uniform
// matrix, where every partition ties); what decides a split is how unequal the affinities are,
// not their sign.
//
// Ties: scores within 1e-12 times the largest |Z[i][j]| are equal. Among equal scores the plan
// with fewer groups wins, then the lexicographically smallest restricted growth string (task
// t's group number, groups numbered by their smallest member: {0,2},{1} is "010").
//
// Thread safety: the functions are pure; call them from any thread.
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/result.h"

namespace mufl::scheduler {

// Row i, column j: Z[i][j], the affinity i→j.
using AffinityMatrix = std::vector<std::vector<double>>;

// kMas: MAS's scoring, above. kNoHarm (issue 14, a tenant's regret for staying merged): a task
// alone scores 0 (no mates: no help and no harm), and a partition is admissible only when every
// task in a group of two or more scores >= 0, that is, its mates' steps do not raise its loss on
// balance (harm-weighted). The split is the admissible partition with the highest mean score;
// ties go to fewer groups, then to the smallest restricted growth string. All singletons are
// always admissible, so a split always exists. max_groups does not bound it: a task is never
// kept with mates that harm it to save a group. Exhaustive up to kNoHarmExhaustiveTasks tasks;
// beyond, a greedy merge from singletons (the admissible union that raises the score most, or
// keeps it, until none does).
enum class SplitRule { kMas, kNoHarm };
const char* to_string(SplitRule r);
std::optional<SplitRule> parse_split_rule(std::string_view s);  // "mas" | "no_harm"
inline constexpr int kNoHarmExhaustiveTasks = 10;  // Bell(10) = 115,975 partitions

struct SplitOptions {
  // --- Behaviour ---
  SplitRule rule = SplitRule::kMas;

  // At most this many groups (>= 1). 1 means "never split"; values above K act as K.
  // Default 3, the number of splits MAS reports.
  int max_groups = 3;

  // The weight of harm (issue 14: a task's regret for staying merged). Every negative Z[i][j]
  // (a step for task i raises task j's loss) counts harm_weight times before scoring; positive
  // ones count once. 1 is MAS's rule. With 2 (the default) a partition that puts a task with
  // mates that hurt it must gain twice as much elsewhere to win: a tenant's loss from merging is
  // a broken promise, another's gain only a bonus. REQUIRES: >= 1.
  double harm_weight = 2.0;

  // Per task (in the matrix's order), its kind: the catalog's loss kind ("label", "dense", ...).
  // Non-empty: no group holds tasks of two kinds, and max_groups is raised to the number of
  // kinds where it is below it. A split group's encoder rule follows its tasks' kind
  // (fl/task_balance.h, by_kind); a group that mixes a label task with a dense one gets neither
  // kind's rule. Empty: any grouping. A size other than K: kInvalidArgument (field "kinds").
  std::vector<std::string> kinds;

  // --- Performance ---
  // Search every partition while count_partitions(K, max_groups) is at most this; beyond it
  // use the heuristic. Default 2,000,000: with max_groups = 3 that is exhaustive up to
  // K = 14 (797,162 partitions, about 20 ms in a Release build; see bench/split_bench.cpp)
  // and heuristic from K = 15 (2,391,485).
  uint64_t exhaustive_limit = 2'000'000;
};

struct SplitPlan {
  // Task indices; each group sorted, groups ordered by their smallest member. Never empty.
  std::vector<std::vector<int>> groups;
  // Mean over tasks of their score in their group (as partition_score computes it, on the
  // harm-weighted matrix).
  double score = 0;
  // Per task, in index order.
  std::vector<double> task_scores;
  // "exhaustive": `groups` is the best partition (ties broken as above).
  // "heuristic": `groups` is a local optimum, never better than the exhaustive answer:
  //   1. greedy agglomeration from K singletons, merging each time the two groups whose union
  //      raises the score most (or lowers it least), down to one group; the partitions on this
  //      path with max_groups, max_groups - 1, ..., 1 groups are the starts;
  //   2. from each start, local search: take the best change that raises the score, moving
  //      one task to another group (or alone while fewer than max_groups groups are open) or
  //      swapping two tasks of different groups, until no change raises it;
  //   3. keep the best result, ties broken as for the exhaustive search.
  //   Deterministic: among equal candidates the first in task/group order wins. On random
  //   matrices (uniform in [-1, 1), max_groups 3) it found the optimum for 99% of 6-task,
  //   96% of 8-task and 86% of 10-task ones; over the 10-task ones its score averaged 0.5%
  //   below the optimum.
  // Both methods return at most max_groups groups.
  std::string method;
  // How many partitions were scored: every partition for "exhaustive"; for "heuristic" the
  // K singletons plus every merge, move and swap candidate evaluated.
  uint64_t partitions_scored = 0;
  // count_partitions(K, max_groups): the size of the search space (saturating).
  uint64_t candidate_partitions = 0;
};

// Plans the split of the K tasks of `affinity` (K x K, row i is task i's outgoing affinity).
// Success: the plan above. Blocks the calling thread until done: exhaustive, about 25 ns per
// partition in a Release build (K = 14: 20 ms; K = 16, past the default limit: 160 ms); the
// heuristic is polynomial, well under 1 ms up to K = 50 and about 4 ms at K = 100 (max_groups 3,
// bench/split_bench.cpp).
// The search scores weigh_harm(affinity, options.harm_weight); the plan's score and task scores
// are of that matrix.
// kInvalidArgument (field "affinity", "max_groups" or "harm_weight") when the matrix is empty,
// not square, has a non-finite value off the diagonal, max_groups < 1 or harm_weight < 1.
Result<SplitPlan> plan_split(const AffinityMatrix& affinity, const SplitOptions& options = {});

// The score of a given partition (the mean over tasks of their score) by the rules above.
// Fills `task_scores` (if not null) with each task's score, in index order.
// REQUIRES: `affinity` square and non-empty, and `groups` a partition of 0..K-1 into non-empty
// groups (any order). Throws std::invalid_argument otherwise (a broken caller invariant).
// The matrix the split scores: `affinity` with every negative entry times harm_weight.
AffinityMatrix weigh_harm(const AffinityMatrix& affinity, double harm_weight);

double partition_score(const AffinityMatrix& affinity, const std::vector<std::vector<int>>& groups,
                       std::vector<double>* task_scores = nullptr);

// The number of partitions of `tasks` items into 1..max_groups non-empty groups: the sum of the
// Stirling numbers of the second kind S(tasks, 1..max_groups). Saturates at UINT64_MAX.
// 0 when tasks < 1 or max_groups < 1. Example: count_partitions(5, 3) = 1 + 15 + 25 = 41.
uint64_t count_partitions(int tasks, int max_groups);

}  // namespace mufl::scheduler
