#include "scheduler/grouping/split.h"

// Source of the scoring rules: EasyFL, applications/mas/network_selection.py (MAS, merge and
// split), read in the weimingwill/EasyFL repository:
//   - gen_task_combinations() gives each member of a group of two or more the sum over the other
//     members o of affinity[task][o], and task_grouping() divides it by |G| - 1: a mean.
//     applications/mas/trainer.py builds affinity[a][b] as "the effect of task b's lookahead
//     step on task a's loss" (rev_transference[source][grad_task]), so that mean is the mean of
//     Z[o→j] over the other members o: the incoming affinity, as in DESIGN.md.
//   - With task_overlap off (split.py's default; DESIGN.md's "no overlapping groups"), a
//     singleton scores average_of_self_to_others_and_others_to_self():
//     (sum of its row + sum of its column, diagonal excluded) / (2 (K-1)).
//     With task_overlap on, singletons score -1e6 instead; mufl has no overlap mode.
//   - select_groups() scores a partition by the mean over tasks of their scores and keeps the
//     first best partition (strict '>') among all unions of at most `split` subsets.
// Differences: K = 1 scores 0 here (the reference divides by zero); the reference enumerates
// all 2^K - 1 subsets and their combinations, this enumerates set partitions directly
// (restricted growth strings) and breaks ties by the rule in split.h; and it falls back to a
// heuristic when the partitions are too many.
#include <algorithm>
#include <cmath>
#include <functional>
#include <limits>
#include <numeric>
#include <stdexcept>
#include <utility>

namespace mufl::scheduler {
namespace {

// Scores closer than this times the largest |Z[i][j]| (per task) are equal: rounding in sums
// of up to K terms stays orders of magnitude below it.
constexpr double kTieRelative = 1e-12;

Status check_affinity(const AffinityMatrix& z) {
  const size_t k = z.size();
  if (k == 0)
    return Status::invalid_argument("the affinity matrix is empty", {{"affinity", "needs at least one task"}});
  for (size_t i = 0; i < k; ++i) {
    if (z[i].size() != k)
      return Status::invalid_argument("the affinity matrix is not square",
                                      {{"affinity", "row " + std::to_string(i) + " has " + std::to_string(z[i].size()) +
                                                        " values, expected " + std::to_string(k)}});
    for (size_t j = 0; j < k; ++j)
      if (i != j && !std::isfinite(z[i][j]))
        return Status::invalid_argument("the affinity matrix has a value that is not finite",
                                        {{"affinity", "Z[" + std::to_string(i) + "][" + std::to_string(j) +
                                                          "] is not finite"}});
  }
  return Status::ok();
}

// Each task's kind as a small integer (equal strings, equal ids); all 0 when `kinds` is empty.
std::vector<int> kind_ids(const std::vector<std::string>& kinds, size_t k) {
  std::vector<int> ids(k, 0);
  for (size_t t = 0; t < kinds.size(); ++t)
    ids[t] = static_cast<int>(std::find(kinds.begin(), kinds.end(), kinds[t]) - kinds.begin());
  return ids;
}

int count_kinds(const std::vector<int>& ids) {
  std::vector<int> sorted = ids;
  std::sort(sorted.begin(), sorted.end());
  return static_cast<int>(std::unique(sorted.begin(), sorted.end()) - sorted.begin());
}

// Whether every group holds one kind.
bool kind_pure(const std::vector<std::vector<int>>& groups, const std::vector<int>& kind) {
  for (const auto& g : groups)
    for (int t : g)
      if (kind[t] != kind[g.front()]) return false;
  return true;
}

// A task's score alone: the mean of its off-diagonal row and column; 0 when it is the only task.
std::vector<double> alone_scores(const AffinityMatrix& z) {
  const int k = static_cast<int>(z.size());
  std::vector<double> out(k, 0.0);
  if (k < 2) return out;
  for (int j = 0; j < k; ++j) {
    double sum = 0;
    for (int o = 0; o < k; ++o)
      if (o != j) sum += z[j][o] + z[o][j];
    out[j] = sum / (2.0 * (k - 1));
  }
  return out;
}

// Each task's score in `groups`: the mean of its mates' Z[i][j] in a group of two or more,
// alone[j] alone (MAS: alone_scores; kNoHarm: 0).
std::vector<double> member_scores(const AffinityMatrix& z, const std::vector<std::vector<int>>& groups,
                                  const std::vector<double>& alone) {
  std::vector<double> out(z.size(), 0.0);
  for (const auto& g : groups)
    for (int j : g) {
      if (g.size() == 1) {
        out[j] = alone[j];
        continue;
      }
      double sum = 0;
      for (int i : g)
        if (i != j) sum += z[i][j];
      out[j] = sum / static_cast<double>(g.size() - 1);
    }
  return out;
}

// The groups of a restricted growth string (task t is in group rgs[t]), ordered by number.
std::vector<std::vector<int>> groups_of(const std::vector<int>& rgs) {
  std::vector<std::vector<int>> groups;
  for (int t = 0; t < static_cast<int>(rgs.size()); ++t) {
    if (rgs[t] >= static_cast<int>(groups.size())) groups.resize(rgs[t] + 1);
    groups[rgs[t]].push_back(t);
  }
  return groups;
}

double largest_magnitude(const AffinityMatrix& z) {
  double m = 0;
  for (size_t i = 0; i < z.size(); ++i)
    for (size_t j = 0; j < z.size(); ++j)
      if (i != j) m = std::max(m, std::abs(z[i][j]));
  return m;
}

// Sum over the members i of `group` (other than `task`) of Z[i][task] + Z[task][i].
double link(const AffinityMatrix& z, const std::vector<int>& group, int task) {
  double sum = 0;
  for (int i : group)
    if (i != task) sum += z[i][task] + z[task][i];
  return sum;
}

// Sum of Z[i][j] over ordered pairs of distinct members.
double inner_sum(const AffinityMatrix& z, const std::vector<int>& group) {
  double sum = 0;
  for (int i : group)
    for (int j : group)
      if (i != j) sum += z[i][j];
  return sum;
}

// The sum of the members' scores of a group of `size` members with inner sum `inner`
// (`only` is the member when size == 1).
double group_total(size_t size, double inner, int only, const std::vector<double>& alone) {
  if (size == 0) return 0;
  if (size == 1) return alone[only];
  return inner / static_cast<double>(size - 1);
}

// Depth-first walk over restricted growth strings in lexicographic order: task t joins one of
// the groups opened so far or opens the next one (while fewer than max_groups are open). Each
// group keeps its members and inner sum, so a step costs O(group size) and a leaf O(groups).
class ExhaustiveSearch {
 public:
  ExhaustiveSearch(const AffinityMatrix& z, int max_groups, const std::vector<double>& alone, double tolerance,
                   const std::vector<int>& kind)
      : z_(z), k_(static_cast<int>(z.size())), m_(max_groups), alone_(alone), tol_(tolerance), kind_(kind),
        rgs_(k_, 0), members_(m_), inner_(m_, 0.0) {
    for (auto& g : members_) g.reserve(k_);
  }

  std::vector<int> run() {
    visit(0, 0);
    return best_rgs_;
  }
  uint64_t scored() const { return scored_; }

 private:
  void visit(int t, int used) {
    if (t == k_) {
      leaf(used);
      return;
    }
    const int open = std::min(used + 1, m_);
    for (int g = 0; g < open; ++g) {
      if (!members_[g].empty() && kind_[members_[g].front()] != kind_[t]) continue;  // kinds stay apart
      const double saved = inner_[g];  // restored exactly, so no drift over millions of leaves
      inner_[g] = saved + link(z_, members_[g], t);
      members_[g].push_back(t);
      rgs_[t] = g;
      visit(t + 1, std::max(used, g + 1));
      members_[g].pop_back();
      inner_[g] = saved;
    }
  }

  void leaf(int used) {
    ++scored_;
    double total = 0;
    for (int g = 0; g < used; ++g)
      total += group_total(members_[g].size(), inner_[g], members_[g].front(), alone_);
    // Lexicographic order: an equal score found later never has a smaller string, so it wins
    // only with fewer groups.
    if (best_rgs_.empty() || total > best_total_ + tol_ || (total >= best_total_ - tol_ && used < best_used_)) {
      best_total_ = total;
      best_used_ = used;
      best_rgs_ = rgs_;
    }
  }

  const AffinityMatrix& z_;
  const int k_;
  const int m_;
  const std::vector<double>& alone_;
  const double tol_;
  const std::vector<int>& kind_;
  std::vector<int> rgs_;
  std::vector<std::vector<int>> members_;
  std::vector<double> inner_;
  std::vector<int> best_rgs_;
  double best_total_ = 0;
  int best_used_ = 0;
  uint64_t scored_ = 0;
};

// Greedy agglomeration, then local search (moves and swaps) from several points of its path;
// see SplitPlan::method.
class HeuristicSearch {
 public:
  HeuristicSearch(const AffinityMatrix& z, int max_groups, const std::vector<double>& alone, double tolerance,
                  const std::vector<int>& kind)
      : z_(z), k_(static_cast<int>(z.size())), m_(max_groups), alone_(alone), tol_(tolerance), kind_(kind) {}

  std::vector<std::vector<int>> run() {
    // The agglomeration path from K singletons down to one group, kept from max_groups groups
    // down; each of these is a start for the local search.
    std::vector<std::vector<std::vector<int>>> starts;
    for (int t = 0; t < k_; ++t) groups_.push_back({t});
    inner_.assign(k_, 0.0);
    scored_ = 1;
    while (true) {
      if (static_cast<int>(groups_.size()) <= m_) starts.push_back(groups_);
      if (groups_.size() == 1 || !merge_best_pair()) break;
    }
    std::vector<std::vector<int>> best;
    double best_total = 0;
    for (const auto& start : starts) {
      groups_ = start;
      inner_.clear();
      for (const auto& g : groups_) inner_.push_back(inner_sum(z_, g));
      improve();
      double sum = 0;
      for (size_t g = 0; g < groups_.size(); ++g) sum += total(g);
      if (best.empty() || sum > best_total + tol_ ||
          (sum >= best_total - tol_ &&
           (groups_.size() < best.size() || (groups_.size() == best.size() && rgs() < rgs_of(best))))) {
        best = groups_;
        best_total = sum;
      }
    }
    return best;
  }
  uint64_t scored() const { return scored_; }

 private:
  double total(size_t g) const { return group_total(groups_[g].size(), inner_[g], groups_[g].front(), alone_); }

  std::vector<int> rgs_of(const std::vector<std::vector<int>>& groups) const {
    std::vector<int> out(k_);
    for (size_t g = 0; g < groups.size(); ++g)
      for (int t : groups[g]) out[t] = static_cast<int>(g);
    return out;
  }
  std::vector<int> rgs() const { return rgs_of(groups_); }

  // Merges the two groups of one kind whose union raises the score most (or lowers it least);
  // false when no two groups share a kind.
  bool merge_best_pair() {
    size_t best_a = 0, best_b = 0;
    double best_gain = -std::numeric_limits<double>::infinity();
    for (size_t a = 0; a < groups_.size(); ++a) {
      for (size_t b = a + 1; b < groups_.size(); ++b) {
        if (kind_[groups_[a].front()] != kind_[groups_[b].front()]) continue;
        ++scored_;
        double cross = 0;
        for (int t : groups_[b]) cross += link(z_, groups_[a], t);
        const double merged =
            (inner_[a] + inner_[b] + cross) / static_cast<double>(groups_[a].size() + groups_[b].size() - 1);
        const double gain = merged - total(a) - total(b);
        if (best_b == 0 || gain > best_gain + tol_) {
          best_gain = gain;
          best_a = a;
          best_b = b;
        }
      }
    }
    if (best_b == 0) return false;
    auto& into = groups_[best_a];
    into.insert(into.end(), groups_[best_b].begin(), groups_[best_b].end());
    std::sort(into.begin(), into.end());
    inner_[best_a] = inner_sum(z_, into);
    groups_.erase(groups_.begin() + static_cast<std::ptrdiff_t>(best_b));
    inner_.erase(inner_.begin() + static_cast<std::ptrdiff_t>(best_b));
    return true;
  }

  // Repeats the best improving change while one raises the score by more than the tolerance:
  // moving one task to another group (or alone, while fewer than max_groups are open), or
  // swapping two tasks of different groups. Each accepted change raises the score, so no
  // partition repeats; the cap only guards against a broken invariant.
  void improve() {
    const long cap = 100L * k_ * k_ + 100;
    for (long step = 0; step < cap; ++step) {
      const size_t groups = groups_.size();
      std::vector<size_t> group_of(k_);
      for (size_t g = 0; g < groups; ++g)
        for (int t : groups_[g]) group_of[t] = g;
      // links[t][g] = link(z_, groups_[g], t); before[g] = the group's total now.
      std::vector<std::vector<double>> links(k_, std::vector<double>(groups, 0.0));
      for (int t = 0; t < k_; ++t)
        for (size_t g = 0; g < groups; ++g) links[t][g] = link(z_, groups_[g], t);
      std::vector<double> before(groups);
      for (size_t g = 0; g < groups; ++g) before[g] = total(g);
      // The total of group g without its member t.
      auto without = [&](size_t g, int t) {
        const std::vector<int>& members = groups_[g];
        if (members.size() == 1) return 0.0;
        if (members.size() == 2) return alone_[members[0] == t ? members[1] : members[0]];
        return (inner_[g] - links[t][g]) / static_cast<double>(members.size() - 2);
      };

      int best_t = -1, best_u = -1;  // best_u >= 0: swap t and u; otherwise move t to best_to
      size_t best_to = 0;            // == groups: alone, in a new group
      double best_gain = tol_;
      for (int t = 0; t < k_; ++t) {
        const size_t from = group_of[t];
        const double base = without(from, t) - before[from];
        const bool may_open = groups_[from].size() > 1 && static_cast<int>(groups) < m_;
        for (size_t to = 0; to <= groups; ++to) {
          if (to == from || (to == groups && !may_open)) continue;
          if (to < groups && kind_[groups_[to].front()] != kind_[t]) continue;
          ++scored_;
          const double joined = to == groups ? alone_[t]
                                             : (inner_[to] + links[t][to]) / static_cast<double>(groups_[to].size());
          const double gain = base + joined - (to == groups ? 0.0 : before[to]);
          if (gain > best_gain) {
            best_gain = gain;
            best_t = t;
            best_u = -1;
            best_to = to;
          }
        }
        for (int u = t + 1; u < k_; ++u) {
          const size_t a = from, b = group_of[u];
          if (a == b || (groups_[a].size() == 1 && groups_[b].size() == 1) || kind_[t] != kind_[u]) continue;
          ++scored_;
          const double pair = z_[t][u] + z_[u][t];
          auto swapped = [&](size_t g, int out, int in) {
            const size_t n = groups_[g].size();
            if (n == 1) return alone_[in];
            return (inner_[g] - links[out][g] + links[in][g] - pair) / static_cast<double>(n - 1);
          };
          const double gain = swapped(a, t, u) + swapped(b, u, t) - before[a] - before[b];
          if (gain > best_gain) {
            best_gain = gain;
            best_t = t;
            best_u = u;
          }
        }
      }
      if (best_t < 0) return;
      if (best_u >= 0) {
        std::swap(group_of[best_t], group_of[best_u]);
      } else {
        group_of[best_t] = best_to;
      }
      rebuild(group_of);
    }
  }

  // Rebuilds groups_ and inner_ from each task's group label (labels need not be dense).
  void rebuild(const std::vector<size_t>& group_of) {
    std::vector<std::vector<int>> by_label(k_ + 1);
    for (int t = 0; t < k_; ++t) by_label[group_of[t]].push_back(t);
    groups_.clear();
    for (auto& g : by_label)
      if (!g.empty()) groups_.push_back(std::move(g));
    // Ordered by smallest member, so candidate order stays canonical.
    std::sort(groups_.begin(), groups_.end());
    inner_.clear();
    for (const auto& g : groups_) inner_.push_back(inner_sum(z_, g));
  }

  const AffinityMatrix& z_;
  const int k_;
  const int m_;
  const std::vector<double>& alone_;
  const double tol_;
  const std::vector<int>& kind_;
  std::vector<std::vector<int>> groups_;  // sorted members, ordered by smallest member
  std::vector<double> inner_;             // inner_sum of each group
  uint64_t scored_ = 0;
};

uint64_t saturating_add(uint64_t a, uint64_t b) {
  return a > std::numeric_limits<uint64_t>::max() - b ? std::numeric_limits<uint64_t>::max() : a + b;
}

uint64_t saturating_mul(uint64_t a, uint64_t b) {
  if (a == 0 || b == 0) return 0;
  return a > std::numeric_limits<uint64_t>::max() / b ? std::numeric_limits<uint64_t>::max() : a * b;
}

}  // namespace

uint64_t count_partitions(int tasks, int max_groups) {
  if (tasks < 1 || max_groups < 1) return 0;
  // S(n, 2) = 2^(n-1) - 1 alone passes 2^64 from n = 66.
  if (max_groups >= 2 && tasks > 65) return std::numeric_limits<uint64_t>::max();
  const int m = std::min(max_groups, tasks);
  // s[k] = S(n, k) for the current n, built row by row: S(n, k) = k S(n-1, k) + S(n-1, k-1).
  std::vector<uint64_t> s(m + 1, 0);
  s[0] = 1;  // S(0, 0)
  for (int n = 1; n <= tasks; ++n) {
    for (int k = std::min(n, m); k >= 1; --k) s[k] = saturating_add(saturating_mul(k, s[k]), s[k - 1]);
    s[0] = 0;
  }
  uint64_t sum = 0;
  for (int k = 1; k <= m; ++k) sum = saturating_add(sum, s[k]);
  return sum;
}

double partition_score(const AffinityMatrix& affinity, const std::vector<std::vector<int>>& groups,
                       std::vector<double>* task_scores) {
  const int k = static_cast<int>(affinity.size());
  if (k == 0) throw std::invalid_argument("partition_score: empty affinity matrix");
  for (const auto& row : affinity)
    if (static_cast<int>(row.size()) != k) throw std::invalid_argument("partition_score: affinity matrix not square");
  std::vector<int> seen(k, 0);
  for (const auto& g : groups) {
    if (g.empty()) throw std::invalid_argument("partition_score: empty group");
    for (int t : g) {
      if (t < 0 || t >= k || seen[t]++) throw std::invalid_argument("partition_score: groups are not a partition");
    }
  }
  if (std::count(seen.begin(), seen.end(), 1) != k) throw std::invalid_argument("partition_score: a task has no group");

  std::vector<double> scores = member_scores(affinity, groups, alone_scores(affinity));
  double total = 0;
  for (double s : scores) total += s;
  if (task_scores) *task_scores = std::move(scores);
  return total / k;
}

AffinityMatrix weigh_harm(const AffinityMatrix& affinity, double harm_weight) {
  AffinityMatrix z = affinity;
  for (auto& row : z)
    for (double& v : row)
      if (v < 0) v *= harm_weight;
  return z;
}

const char* to_string(SplitRule r) { return r == SplitRule::kNoHarm ? "no_harm" : "mas"; }

std::optional<SplitRule> parse_split_rule(std::string_view s) {
  if (s == "mas") return SplitRule::kMas;
  if (s == "no_harm") return SplitRule::kNoHarm;
  return std::nullopt;
}

namespace {

// kNoHarm's score of each task in `groups`: the mean of its mates' Z[i][j], 0 alone.
std::vector<double> no_harm_scores(const AffinityMatrix& z, const std::vector<std::vector<int>>& groups) {
  return member_scores(z, groups, std::vector<double>(z.size(), 0.0));
}

// The sum of the task scores, or nullopt when a task in a group scores below 0.
std::optional<double> no_harm_total(const AffinityMatrix& z, const std::vector<std::vector<int>>& groups,
                                    double tolerance) {
  double total = 0;
  for (double s : no_harm_scores(z, groups)) {
    if (s < -tolerance) return std::nullopt;
    total += s;
  }
  return total;
}

// Every partition, in lexicographic order of restricted growth strings: the best admissible
// (kinds apart, and no task harmed on balance).
std::vector<std::vector<int>> no_harm_exhaustive(const AffinityMatrix& z, const std::vector<int>& kind,
                                                 double tolerance, uint64_t& scored) {
  const int k = static_cast<int>(z.size());
  std::vector<int> rgs(k, 0), best(k);
  std::iota(best.begin(), best.end(), 0);  // all singletons: always admissible, score 0
  double best_total = 0;
  size_t best_groups = static_cast<size_t>(k);
  std::function<void(int, int)> walk = [&](int t, int open) {
    if (t == k) {
      ++scored;
      const auto groups = groups_of(rgs);
      if (!kind_pure(groups, kind)) return;
      const auto total = no_harm_total(z, groups, tolerance);
      if (!total) return;
      const bool better = *total > best_total + tolerance ||
                          (*total >= best_total - tolerance && groups.size() < best_groups);
      if (better) {
        best = rgs;
        best_total = *total;
        best_groups = groups.size();
      }
      return;
    }
    for (int g = 0; g <= open && g < k; ++g) {
      rgs[t] = g;
      walk(t + 1, std::max(open, g + 1));
    }
  };
  walk(0, 0);
  return groups_of(best);
}

// Greedy: from singletons, merge the two groups whose admissible union raises the total most;
// a union that keeps it (within the tolerance) is taken too, as the exhaustive search prefers
// fewer groups among equal scores. Each merge removes a group, so it ends.
std::vector<std::vector<int>> no_harm_greedy(const AffinityMatrix& z, const std::vector<int>& kind, double tolerance,
                                             uint64_t& scored) {
  std::vector<std::vector<int>> groups;
  for (int t = 0; t < static_cast<int>(z.size()); ++t) groups.push_back({t});
  double total = 0;
  for (;;) {
    std::optional<std::pair<size_t, size_t>> pick;
    double pick_total = total - tolerance;
    for (size_t a = 0; a < groups.size(); ++a)
      for (size_t b = a + 1; b < groups.size(); ++b) {
        if (kind[groups[a].front()] != kind[groups[b].front()]) continue;
        auto merged = groups;
        merged[a].insert(merged[a].end(), merged[b].begin(), merged[b].end());
        std::sort(merged[a].begin(), merged[a].end());
        merged.erase(merged.begin() + static_cast<std::ptrdiff_t>(b));
        ++scored;
        const auto t = no_harm_total(z, merged, tolerance);
        if (t && (*t > pick_total || (!pick && *t >= pick_total))) {
          pick = {a, b};
          pick_total = *t;
        }
      }
    if (!pick) break;
    auto& into = groups[pick->first];
    into.insert(into.end(), groups[pick->second].begin(), groups[pick->second].end());
    std::sort(into.begin(), into.end());
    groups.erase(groups.begin() + static_cast<std::ptrdiff_t>(pick->second));
    total = pick_total;
  }
  std::sort(groups.begin(), groups.end());  // ordered by their smallest member
  return groups;
}

SplitPlan plan_no_harm(const AffinityMatrix& affinity, const std::vector<int>& kind, double tolerance) {
  SplitPlan plan;
  const int k = static_cast<int>(affinity.size());
  plan.candidate_partitions = count_partitions(k, k);
  if (k <= kNoHarmExhaustiveTasks) {
    plan.groups = no_harm_exhaustive(affinity, kind, tolerance, plan.partitions_scored);
    plan.method = "exhaustive";
  } else {
    plan.groups = no_harm_greedy(affinity, kind, tolerance, plan.partitions_scored);
    plan.method = "heuristic";
  }
  plan.task_scores = no_harm_scores(affinity, plan.groups);
  for (double s : plan.task_scores) plan.score += s / static_cast<double>(k);
  return plan;
}

}  // namespace

Result<SplitPlan> plan_split(const AffinityMatrix& measured, const SplitOptions& options) {
  if (Status s = check_affinity(measured); !s.is_ok()) return s;
  if (options.max_groups < 1)
    return Status::invalid_argument("max_groups must be at least 1", {{"max_groups", "must be at least 1"}});
  if (!(options.harm_weight >= 1))
    return Status::invalid_argument("harm_weight must be at least 1", {{"harm_weight", "must be at least 1"}});
  if (!options.kinds.empty() && options.kinds.size() != measured.size())
    return Status::invalid_argument("kinds must name one kind per task",
                                    {{"kinds", std::to_string(options.kinds.size()) + " kinds for " +
                                                   std::to_string(measured.size()) + " tasks"}});
  const AffinityMatrix affinity = weigh_harm(measured, options.harm_weight);
  const std::vector<int> kind = kind_ids(options.kinds, affinity.size());
  if (options.rule == SplitRule::kNoHarm)
    return plan_no_harm(affinity, kind,
                        kTieRelative * largest_magnitude(affinity) * static_cast<double>(affinity.size()));

  const int k = static_cast<int>(affinity.size());
  const int m = std::min(std::max(options.max_groups, count_kinds(kind)), k);
  const std::vector<double> alone = alone_scores(affinity);
  // Tolerance on a sum of K task scores.
  const double tolerance = kTieRelative * largest_magnitude(affinity) * k;

  SplitPlan plan;
  plan.candidate_partitions = count_partitions(k, m);
  if (plan.candidate_partitions <= options.exhaustive_limit) {
    ExhaustiveSearch search(affinity, m, alone, tolerance, kind);
    plan.groups = groups_of(search.run());
    plan.method = "exhaustive";
    plan.partitions_scored = search.scored();
  } else {
    HeuristicSearch search(affinity, m, alone, tolerance, kind);
    plan.groups = search.run();
    plan.method = "heuristic";
    plan.partitions_scored = search.scored();
  }
  plan.score = partition_score(affinity, plan.groups, &plan.task_scores);
  return plan;
}

}  // namespace mufl::scheduler
