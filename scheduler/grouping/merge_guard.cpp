#include "scheduler/grouping/merge_guard.h"

#include <algorithm>
#include <cmath>
#include <cstdio>

namespace mufl::scheduler {
namespace {

// Relative progress of one history over the window; nullopt when it cannot be judged.
std::optional<double> progress_of(const std::vector<double>& l, int window) {
  if (window < 1 || l.size() < static_cast<size_t>(window) + 1) return std::nullopt;
  const double before = l[l.size() - 1 - static_cast<size_t>(window)], now = l.back();
  if (!(std::isfinite(before) && std::isfinite(now) && before > 0 && now >= 0)) return std::nullopt;
  return (before - now) / before;
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  const size_t n = v.size();
  return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

}  // namespace

std::optional<GuardVerdict> lagging_head(const std::vector<std::vector<double>>& losses,
                                         const MergeGuardOptions& options,
                                         const std::vector<std::optional<double>>& alignment) {
  if (options.window < 1 || losses.size() < 2) return std::nullopt;
  std::vector<std::optional<double>> progress;
  for (const auto& l : losses) progress.push_back(progress_of(l, options.window));
  std::optional<GuardVerdict> worst;
  double worst_share = 0;
  for (size_t h = 0; h < losses.size(); ++h) {
    if (!progress[h]) continue;
    std::vector<double> mates;
    for (size_t o = 0; o < losses.size(); ++o)
      if (o != h && progress[o]) mates.push_back(*progress[o]);
    if (mates.empty()) continue;
    const double others = median(mates);
    if (others < options.min_progress || *progress[h] >= options.lag_ratio * others) continue;
    const std::optional<double> aligned = h < alignment.size() ? alignment[h] : std::nullopt;
    if (aligned && *aligned > options.max_alignment) continue;  // its mates help it: the stall is its own
    const double share = *progress[h] / others;
    if (worst && share >= worst_share) continue;
    char text[260];
    int n = std::snprintf(text, sizeof text,
                          "its test loss changed by %+.1f %% over %d rounds while its group mates' fell by %.1f %% (median)",
                          0.0 - 100.0 * *progress[h], options.window, 100.0 * others);
    if (aligned && n > 0 && static_cast<size_t>(n) < sizeof text)
      std::snprintf(text + n, sizeof text - static_cast<size_t>(n),
                    ", and its gradient pulls against theirs (alignment %+.3f)", *aligned);
    worst = GuardVerdict{h, *progress[h], others, aligned, text};
    worst_share = share;
  }
  return worst;
}

}  // namespace mufl::scheduler
