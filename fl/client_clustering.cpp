#include "fl/client_clustering.h"

#include <algorithm>

namespace mufl::fl {

std::vector<int> cluster_by_similarity(const std::vector<std::vector<double>>& similarity, int k) {
  const size_t n = similarity.size();
  // Cluster a lives at index a = its smallest member (a merge keeps the smaller index), so
  // scanning pairs in index order breaks ties towards the smallest members.
  std::vector<std::vector<double>> link = similarity;  // average linkage between live clusters
  std::vector<size_t> size(n, 1);
  std::vector<size_t> root(n);
  for (size_t i = 0; i < n; ++i) root[i] = i;
  std::vector<bool> live(n, true);
  size_t clusters = n;
  const size_t target = static_cast<size_t>(std::max(1, k));
  while (clusters > target) {
    size_t best_a = 0, best_b = 0;
    bool found = false;
    for (size_t a = 0; a < n; ++a) {
      if (!live[a]) continue;
      for (size_t b = a + 1; b < n; ++b)
        if (live[b] && (!found || link[a][b] > link[best_a][best_b])) {
          best_a = a, best_b = b;
          found = true;
        }
    }
    // Lance-Williams for average linkage: the merged cluster's mean similarity to any other is
    // the size-weighted mean of its parts'.
    const double wa = static_cast<double>(size[best_a]), wb = static_cast<double>(size[best_b]);
    for (size_t c = 0; c < n; ++c) {
      if (!live[c] || c == best_a || c == best_b) continue;
      const double merged = (wa * link[best_a][c] + wb * link[best_b][c]) / (wa + wb);
      link[best_a][c] = link[c][best_a] = merged;
    }
    size[best_a] += size[best_b];
    live[best_b] = false;
    for (size_t i = 0; i < n; ++i)
      if (root[i] == best_b) root[i] = best_a;
    --clusters;
  }
  // Number the clusters by their smallest member: the live roots in ascending order.
  std::vector<int> number(n, -1);
  int next = 0;
  for (size_t i = 0; i < n; ++i)
    if (live[i]) number[i] = next++;
  std::vector<int> out(n);
  for (size_t i = 0; i < n; ++i) out[i] = number[root[i]];
  return out;
}

std::vector<std::vector<int64_t>> cluster_members(const std::vector<int>& assignment) {
  int clusters = 0;
  for (int c : assignment) clusters = std::max(clusters, c + 1);
  std::vector<std::vector<int64_t>> out(static_cast<size_t>(clusters));
  for (size_t i = 0; i < assignment.size(); ++i)
    if (assignment[i] >= 0) out[static_cast<size_t>(assignment[i])].push_back(static_cast<int64_t>(i));
  return out;
}

}  // namespace mufl::fl
