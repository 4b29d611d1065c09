#include "fl/strategy.h"

#include <cmath>
#include <utility>

namespace mufl::fl {
namespace {

// All server arithmetic is float64: sums over many clients and second moments that fall
// towards τ² (1e-6) keep their precision, and the result is rounded once, at the end.
constexpr auto kAcc = torch::kFloat64;

// A float64 copy that never shares storage with `t` (to() alone returns `t` when it is float64).
torch::Tensor acc_copy(const torch::Tensor& t) { return t.detach().to(kAcc, /*non_blocking=*/false, /*copy=*/true); }

std::string shape_str(const torch::Tensor& t) {
  std::string s = "[";
  for (int64_t i = 0; i < t.dim(); ++i) s += (i ? "," : "") + std::to_string(t.size(i));
  return s + "]";
}

void check_global(const Weights& global, const Weights& avg) {
  TORCH_CHECK(global.size() == avg.size(), "aggregate: global has ", global.size(), " tensors, updates have ",
              avg.size());
  for (size_t i = 0; i < global.size(); ++i) {
    TORCH_CHECK(global[i].defined() && global[i].is_floating_point(), "aggregate: global tensor ", i,
                " is not a floating-point tensor");
    TORCH_CHECK(global[i].sizes() == avg[i].sizes(), "aggregate: global tensor ", i, " has shape ",
                shape_str(global[i]), ", updates have ", shape_str(avg[i]));
  }
}

// A (loaded) server state must fit the model it is applied to.
void check_state_fits(const Weights& state, const Weights& avg, const char* what) {
  TORCH_CHECK(state.size() == avg.size(), "aggregate: ", what, " has ", state.size(), " tensors, the model ",
              avg.size());
  for (size_t i = 0; i < state.size(); ++i)
    TORCH_CHECK(state[i].sizes() == avg[i].sizes(), "aggregate: ", what, " tensor ", i, " has shape ",
                shape_str(state[i]), ", the model ", shape_str(avg[i]));
}

// load_state's checks on one tensor: defined, floating point, and (when held) the held shape.
Status check_state_tensor(const std::vector<torch::Tensor>& state, size_t i, const torch::Tensor* held) {
  const auto& t = state[i];
  const std::string where = "load_state: tensor " + std::to_string(i);
  if (!t.defined() || !t.is_floating_point()) return Status::invalid_argument(where + " is not a floating-point tensor");
  if (held && t.sizes() != held->sizes())
    return Status::invalid_argument(where + " has shape " + shape_str(t) + ", the strategy holds " + shape_str(*held));
  return Status::ok();
}

Weights clone_all(const Weights& w) {
  Weights out;
  out.reserve(w.size());
  for (const auto& t : w) out.push_back(acc_copy(t));
  return out;
}

class FedAvg final : public Strategy {
 public:
  std::string name() const override { return "fedavg"; }

  Weights aggregate_sum(const Weights& global, const UpdateSum& sum) override {
    torch::NoGradGuard no_grad;
    auto avg = sum.mean();
    check_global(global, avg);
    for (size_t i = 0; i < avg.size(); ++i) avg[i] = avg[i].to(global[i].scalar_type());
    return avg;
  }

  std::vector<torch::Tensor> state() const override { return {}; }

  Status load_state(const std::vector<torch::Tensor>& state) override {
    if (!state.empty()) return Status::invalid_argument("load_state: fedavg has no state, got " +
                                                        std::to_string(state.size()) + " tensors");
    return Status::ok();
  }
};

// Hsu et al. 2019: server SGD with momentum on the pseudo-gradient −Δ.
class FedAvgM final : public Strategy {
 public:
  explicit FedAvgM(const StrategyOptions& o) : lr_(o.server_learning_rate), beta_(o.server_momentum) {}

  std::string name() const override { return "fedavgm"; }

  Weights aggregate_sum(const Weights& global, const UpdateSum& sum) override {
    torch::NoGradGuard no_grad;
    const auto avg = sum.mean();
    check_global(global, avg);
    if (!v_.empty()) check_state_fits(v_, avg, "momentum");
    // Build the new state aside and commit it last, so a throw leaves the old one.
    Weights v, out;
    for (size_t i = 0; i < avg.size(); ++i) {
      const auto g = global[i].detach().to(kAcc);
      auto delta = avg[i] - g;
      v.push_back(v_.empty() ? delta : v_[i].to(delta.device()).mul(beta_).add_(delta));  // v_0 = 0: v_1 = Δ
      out.push_back(g.add(v.back(), lr_).to(global[i].scalar_type()));
    }
    v_ = std::move(v);
    return out;
  }

  std::vector<torch::Tensor> state() const override { return clone_all(v_); }

  Status load_state(const std::vector<torch::Tensor>& state) override {
    if (!state.empty() && !v_.empty() && state.size() != v_.size())
      return Status::invalid_argument("load_state: fedavgm holds " + std::to_string(v_.size()) + " tensors, got " +
                                      std::to_string(state.size()));
    for (size_t i = 0; i < state.size(); ++i)
      if (auto s = check_state_tensor(state, i, v_.empty() ? nullptr : &v_[i]); !s.is_ok()) return s;
    v_ = clone_all(state);
    return Status::ok();
  }

 private:
  double lr_;
  double beta_;
  Weights v_;  // momentum, float64; empty before the first round
};

enum class Adaptive { kAdagrad, kAdam, kYogi };

// Reddi et al. 2021, Algorithm 2, the server half.
class FedOpt final : public Strategy {
 public:
  FedOpt(Adaptive kind, const StrategyOptions& o)
      : kind_(kind), eta_(o.adaptive_learning_rate), beta1_(o.beta1), beta2_(o.beta2), tau_(o.tau) {}

  std::string name() const override {
    switch (kind_) {
      case Adaptive::kAdagrad: return "fedadagrad";
      case Adaptive::kAdam: return "fedadam";
      case Adaptive::kYogi: return "fedyogi";
    }
    return "";
  }

  Weights aggregate_sum(const Weights& global, const UpdateSum& sum) override {
    torch::NoGradGuard no_grad;
    const auto avg = sum.mean();
    check_global(global, avg);
    if (!m_.empty()) {
      check_state_fits(m_, avg, "first moment");
      check_state_fits(v_, avg, "second moment");
    }
    Weights m, v, out;
    for (size_t i = 0; i < avg.size(); ++i) {
      const auto g = global[i].detach().to(kAcc);
      const auto delta = avg[i] - g;  // = Σ n_k (w_k − x) / Σ n_k, the paper's Δ_t
      const auto delta2 = delta * delta;
      const auto m_prev = m_.empty() ? torch::zeros_like(delta) : m_[i].to(delta.device());
      const auto v_prev = v_.empty() ? torch::full_like(delta, tau_ * tau_) : v_[i].to(delta.device());  // v_{-1} = τ²
      m.push_back(m_prev.mul(beta1_).add_(delta, 1.0 - beta1_));
      switch (kind_) {
        case Adaptive::kAdagrad: v.push_back(v_prev + delta2); break;
        case Adaptive::kAdam: v.push_back(v_prev.mul(beta2_).add_(delta2, 1.0 - beta2_)); break;
        case Adaptive::kYogi:
          // v grows by at most (1−β2)Δ² and shrinks by (1−β2)Δ², never by a fraction of itself.
          v.push_back(v_prev - (1.0 - beta2_) * delta2 * torch::sign(v_prev - delta2));
          break;
      }
      out.push_back(g.add(m.back() / (v.back().sqrt() + tau_), eta_).to(global[i].scalar_type()));
    }
    m_ = std::move(m);
    v_ = std::move(v);
    return out;
  }

  std::vector<torch::Tensor> state() const override {
    auto s = clone_all(m_);
    for (const auto& t : v_) s.push_back(acc_copy(t));
    return s;
  }

  Status load_state(const std::vector<torch::Tensor>& state) override {
    if (state.size() % 2 != 0)
      return Status::invalid_argument("load_state: " + name() + " expects m and v tensors (an even count), got " +
                                      std::to_string(state.size()));
    const size_t n = state.size() / 2;
    if (n > 0 && !m_.empty() && n != m_.size())
      return Status::invalid_argument("load_state: " + name() + " holds " + std::to_string(2 * m_.size()) +
                                      " tensors, got " + std::to_string(state.size()));
    for (size_t i = 0; i < state.size(); ++i) {
      const Weights& held = i < n ? m_ : v_;
      if (auto s = check_state_tensor(state, i, held.empty() ? nullptr : &held[i % n]); !s.is_ok()) return s;
    }
    for (size_t i = 0; i < n; ++i) {
      if (state[i].sizes() != state[n + i].sizes())
        return Status::invalid_argument("load_state: m_" + std::to_string(i) + " has shape " + shape_str(state[i]) +
                                        ", v_" + std::to_string(i) + " " + shape_str(state[n + i]));
      // √v of a negative (or NaN) v would poison every later round.
      if (!state[n + i].ge(0).all().item<bool>())
        return Status::invalid_argument("load_state: v_" + std::to_string(i) + " has negative or NaN entries");
    }
    m_ = clone_all(Weights(state.begin(), state.begin() + static_cast<std::ptrdiff_t>(n)));
    v_ = clone_all(Weights(state.begin() + static_cast<std::ptrdiff_t>(n), state.end()));
    return Status::ok();
  }

 private:
  Adaptive kind_;
  double eta_, beta1_, beta2_, tau_;
  Weights m_, v_;  // float64; both empty before the first round
};

// Range checks for the options a strategy uses; the field names are StrategyOptions'.
void check_positive(std::vector<FieldError>& errors, const char* field, double x) {
  if (!std::isfinite(x) || x <= 0) errors.push_back({field, "must be a finite number > 0"});
}
void check_decay(std::vector<FieldError>& errors, const char* field, double x) {
  if (!std::isfinite(x) || x < 0 || x >= 1) errors.push_back({field, "must be in [0, 1)"});
}

}  // namespace

void UpdateSum::add(const ClientUpdate& u, double weight) {
  torch::NoGradGuard no_grad;
  const size_t k = count_;
  TORCH_CHECK(u.num_samples > 0, "aggregate: update ", k, " has num_samples ", u.num_samples);
  TORCH_CHECK(std::isfinite(weight) && weight > 0, "aggregate: update ", k, " has weight ", weight);
  TORCH_CHECK(count_ == 0 || u.weights.size() == sum_.size(), "aggregate: update ", k, " has ", u.weights.size(),
              " tensors, update 0 has ", sum_.size());
  for (size_t i = 0; i < u.weights.size(); ++i) {
    TORCH_CHECK(u.weights[i].defined() && u.weights[i].is_floating_point(), "aggregate: update ", k, " tensor ", i,
                " is not a floating-point tensor");
    TORCH_CHECK(count_ == 0 || u.weights[i].sizes() == sum_[i].sizes(), "aggregate: update ", k, " tensor ", i,
                " has shape ", shape_str(u.weights[i]), ", update 0 has ", shape_str(sum_[i]));
  }
  if (count_ == 0) {
    for (const auto& w : u.weights) {
      sum_.push_back(torch::zeros(w.sizes(), w.options().dtype(kAcc)));
      dtypes_.push_back(w.scalar_type());
    }
  }
  // n_k · w_k is exact in float64 for float32 weights; one division at the end (mean()).
  for (size_t i = 0; i < sum_.size(); ++i) sum_[i].add_(u.weights[i].detach().to(kAcc), weight);
  samples_ += u.num_samples;
  weight_ += weight;
  ++count_;
}

Weights UpdateSum::mean() const {
  torch::NoGradGuard no_grad;
  TORCH_CHECK(count_ > 0, "aggregate: no client updates");
  Weights avg;
  avg.reserve(sum_.size());
  for (const auto& t : sum_) avg.push_back(t.div(weight_));
  return avg;
}

double cosine_weight(const Weights& global, const Weights& update) {
  torch::NoGradGuard no_grad;
  TORCH_CHECK(global.size() == update.size(), "cosine_weight: ", update.size(), " tensors for ", global.size());
  double dot = 0, gg = 0, uu = 0;
  for (size_t i = 0; i < global.size(); ++i) {
    TORCH_CHECK(global[i].sizes() == update[i].sizes(), "cosine_weight: tensor ", i, " has another shape");
    const auto g = global[i].detach().to(kAcc).flatten(), u = update[i].detach().to(kAcc).flatten();
    dot += g.dot(u).item<double>();
    gg += g.dot(g).item<double>();
    uu += u.dot(u).item<double>();
  }
  const double distance = gg > 0 && uu > 0 ? 1.0 - dot / std::sqrt(gg * uu) : 0.0;
  return std::isfinite(distance) && distance > 1e-12 ? distance : 1e-12;
}

std::vector<std::vector<double>> update_similarities(const Weights& global, const std::vector<Weights>& updates) {
  torch::NoGradGuard no_grad;
  const size_t n = updates.size();
  std::vector<torch::Tensor> rows;
  rows.reserve(n);
  for (const Weights& u : updates) {
    TORCH_CHECK(u.size() == global.size(), "update_similarities: ", u.size(), " tensors for ", global.size());
    std::vector<torch::Tensor> parts;
    for (size_t i = 0; i < global.size(); ++i) {
      TORCH_CHECK(u[i].sizes() == global[i].sizes(), "update_similarities: tensor ", i, " has another shape");
      parts.push_back((u[i].detach().to(kAcc) - global[i].detach().to(kAcc)).flatten().cpu());
    }
    rows.push_back(torch::cat(parts));
  }
  std::vector<std::vector<double>> out(n, std::vector<double>(n, 0.0));
  if (n == 0) return out;
  auto d = torch::stack(rows);
  const auto norms = d.norm(2, 1, /*keepdim=*/true);
  d = torch::where(norms > 0, d / norms, torch::zeros_like(d));  // a zero update: similarity 0
  const auto gram = d.matmul(d.t()).contiguous();
  const double* g = gram.data_ptr<double>();
  for (size_t a = 0; a < n; ++a) {
    out[a][a] = 1.0;
    for (size_t b = a + 1; b < n; ++b) out[a][b] = out[b][a] = g[a * n + b];  // exactly symmetric
  }
  return out;
}

namespace {
UpdateSum sum_of(const std::vector<ClientUpdate>& updates) {
  UpdateSum sum;
  for (const auto& u : updates) sum.add(u);
  return sum;
}
}  // namespace

Weights Strategy::aggregate(const Weights& global, const std::vector<ClientUpdate>& updates) {
  return aggregate_sum(global, sum_of(updates));
}

Weights weighted_average(const std::vector<ClientUpdate>& updates) {
  const UpdateSum sum = sum_of(updates);
  auto avg = sum.mean();
  const auto& dtypes = sum.dtypes();
  for (size_t i = 0; i < avg.size(); ++i) avg[i] = avg[i].to(dtypes[i]);
  return avg;
}

Result<std::unique_ptr<Strategy>> make_strategy(const std::string& name, const StrategyOptions& options) {
  std::vector<FieldError> errors;
  std::unique_ptr<Strategy> s;
  if (name == "fedavg") {
    s = std::make_unique<FedAvg>();
  } else if (name == "fedavgm") {
    check_positive(errors, "server_learning_rate", options.server_learning_rate);
    check_decay(errors, "server_momentum", options.server_momentum);
    s = std::make_unique<FedAvgM>(options);
  } else if (name == "fedadam" || name == "fedyogi" || name == "fedadagrad") {
    check_positive(errors, "adaptive_learning_rate", options.adaptive_learning_rate);
    check_decay(errors, "beta1", options.beta1);
    if (name != "fedadagrad") check_decay(errors, "beta2", options.beta2);
    check_positive(errors, "tau", options.tau);
    const auto kind = name == "fedadam" ? Adaptive::kAdam : name == "fedyogi" ? Adaptive::kYogi : Adaptive::kAdagrad;
    s = std::make_unique<FedOpt>(kind, options);
  } else {
    return Status::invalid_argument("unknown strategy '" + name + "': expected fedavg, fedavgm, fedadam, fedyogi or fedadagrad");
  }
  if (!errors.empty()) return Status::invalid_argument("invalid options for strategy " + name, std::move(errors));
  return s;
}

}  // namespace mufl::fl
