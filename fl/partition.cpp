#include "fl/partition.h"

#include <algorithm>
#include <cmath>
#include <numeric>
#include <queue>
#include <random>
#include <string>
#include <utility>

namespace mufl::fl {

namespace {

// Enough for any sensible setting to succeed by drawing alone; beyond it (many clients, tiny
// alpha) redrawing rarely helps and topping up is the cheaper fix.
constexpr int kMaxDirichletDraws = 100;

void sort_each(Partition& p) {
  for (auto& client : p) std::sort(client.begin(), client.end());
}

// One draw from Dir(alpha, …, alpha) over `n` clients. For tiny alpha every gamma sample can
// underflow to 0; the limit of Dir(alpha→0) is one client taking all, so draw that instead.
std::vector<double> draw_dirichlet(std::mt19937_64& rng, int n, double alpha) {
  std::gamma_distribution<double> gamma(alpha, 1.0);
  std::vector<double> p(static_cast<size_t>(n));
  double sum = 0.0;
  for (double& x : p) {
    x = gamma(rng);
    sum += x;
  }
  if (!(sum > 0.0) || !std::isfinite(sum)) {
    std::fill(p.begin(), p.end(), 0.0);
    p[std::uniform_int_distribution<int>(0, n - 1)(rng)] = 1.0;
    return p;
  }
  for (double& x : p) x /= sum;
  return p;
}

// Splits `n` samples by proportions `p`, rounding the cumulative sums so the counts add up to n.
void split_counts(const std::vector<double>& p, int64_t n, std::vector<int64_t>& counts) {
  double cum = 0.0;
  int64_t prev = 0;
  for (size_t j = 0; j < p.size(); ++j) {
    cum += p[j];
    int64_t b = j + 1 == p.size() ? n : std::clamp<int64_t>(std::llround(cum * static_cast<double>(n)), prev, n);
    counts[j] = b - prev;
    prev = b;
  }
}

}  // namespace

Partition partition_iid(int64_t num_samples, int clients, uint64_t seed) {
  if (clients < 1) return {};
  num_samples = std::max<int64_t>(num_samples, 0);
  std::vector<int64_t> order(static_cast<size_t>(num_samples));
  std::iota(order.begin(), order.end(), int64_t{0});
  std::mt19937_64 rng(seed);
  std::shuffle(order.begin(), order.end(), rng);

  Partition out(static_cast<size_t>(clients));
  const int64_t base = num_samples / clients;
  const int64_t extra = num_samples % clients;  // the first `extra` clients get one more
  int64_t pos = 0;
  for (int64_t c = 0; c < clients; ++c) {
    const int64_t n = base + (c < extra ? 1 : 0);
    out[c].assign(order.begin() + pos, order.begin() + pos + n);
    pos += n;
  }
  sort_each(out);
  return out;
}

Result<Partition> partition_dirichlet(const std::vector<int64_t>& labels, int num_classes, int clients, double alpha,
                                      uint64_t seed, int64_t min_per_client) {
  const int64_t n = static_cast<int64_t>(labels.size());
  std::vector<FieldError> errors;
  if (clients < 1) errors.push_back({"clients", "must be at least 1"});
  if (num_classes < 1) errors.push_back({"num_classes", "must be at least 1"});
  if (!(alpha > 0.0) || !std::isfinite(alpha)) errors.push_back({"partition.alpha", "must be a positive number"});
  if (min_per_client < 0) errors.push_back({"min_per_client", "must not be negative"});
  // Compared by division so that a huge min_per_client cannot overflow.
  if (clients >= 1 && min_per_client > n / clients)
    errors.push_back({"clients", std::to_string(clients) + " clients with at least " + std::to_string(min_per_client) +
                                     " samples each need more than the " + std::to_string(n) + " samples there are"});
  if (num_classes >= 1) {
    for (int64_t i = 0; i < n; ++i) {
      if (labels[i] < 0 || labels[i] >= num_classes) {
        errors.push_back({"labels", "label " + std::to_string(labels[i]) + " at index " + std::to_string(i) +
                                        " is outside 0.." + std::to_string(num_classes - 1)});
        break;
      }
    }
  }
  if (!errors.empty()) return Status::invalid_argument("cannot partition by Dirichlet label skew", std::move(errors));

  std::mt19937_64 rng(seed);
  std::vector<std::vector<int64_t>> by_class(static_cast<size_t>(num_classes));
  for (int64_t i = 0; i < n; ++i) by_class[labels[i]].push_back(i);
  // Shuffled so that which samples of a class a client gets is random too, not the first ones.
  for (auto& idx : by_class) std::shuffle(idx.begin(), idx.end(), rng);

  // counts[k][j]: samples of class k for client j. Only counts are redrawn; indices are dealt once.
  std::vector<std::vector<int64_t>> counts(static_cast<size_t>(num_classes),
                                           std::vector<int64_t>(static_cast<size_t>(clients), 0));
  std::vector<int64_t> sizes(static_cast<size_t>(clients));
  for (int attempt = 0; attempt < kMaxDirichletDraws; ++attempt) {
    std::fill(sizes.begin(), sizes.end(), 0);
    for (int k = 0; k < num_classes; ++k) {
      const int64_t nk = static_cast<int64_t>(by_class[k].size());
      if (nk == 0) {
        std::fill(counts[k].begin(), counts[k].end(), 0);
        continue;
      }
      split_counts(draw_dirichlet(rng, clients, alpha), nk, counts[k]);
      for (int j = 0; j < clients; ++j) sizes[j] += counts[k][j];
    }
    if (*std::min_element(sizes.begin(), sizes.end()) >= min_per_client) break;
  }

  Partition out(static_cast<size_t>(clients));
  for (int j = 0; j < clients; ++j) out[j].reserve(static_cast<size_t>(sizes[j]));
  for (int k = 0; k < num_classes; ++k) {
    auto it = by_class[k].begin();
    for (int j = 0; j < clients; ++j) {
      out[j].insert(out[j].end(), it, it + counts[k][j]);
      it += counts[k][j];
    }
  }

  // Top up short clients from the largest one (lowest index on ties). Some client always has
  // more than min_per_client while another has less, since clients * min_per_client <= n.
  auto smaller = [&](int a, int b) {
    return out[a].size() != out[b].size() ? out[a].size() < out[b].size() : a > b;
  };
  std::priority_queue<int, std::vector<int>, decltype(smaller)> donors(smaller);
  for (int j = 0; j < clients; ++j)
    if (static_cast<int64_t>(out[j].size()) > min_per_client) donors.push(j);
  for (int j = 0; j < clients; ++j) {
    while (static_cast<int64_t>(out[j].size()) < min_per_client && !donors.empty()) {
      const int d = donors.top();
      donors.pop();
      out[j].push_back(out[d].back());
      out[d].pop_back();
      if (static_cast<int64_t>(out[d].size()) > min_per_client) donors.push(d);
    }
  }

  sort_each(out);
  return out;
}

}  // namespace mufl::fl
