#pragma once
// Strategy: how the server turns the clients' updates of one round into the next global model,
// in the spirit of Flower's `Strategy`. FedAvg (McMahan et al.) averages weighted by samples;
// FedAvgM adds server momentum (Hsu et al.); FedAdam, FedYogi and FedAdagrad apply an adaptive
// server optimiser to the averaged update (Reddi et al., "Adaptive Federated Optimization", 2021).
//
// A strategy may keep server state (momentum, second moments); state()/load_state() let a
// checkpoint carry it so that a resumed job continues exactly.
//
// Where Flower (flwr/server/strategy/fedopt.py and subclasses) departs from Algorithm 2 we follow
// the paper: v starts at τ² (Flower: 0), FedAdagrad keeps the β1 momentum (Flower: β1 = 0), and
// there is no bias correction.
// Thread safety: one strategy belongs to one job; not shared between threads.
#include <memory>
#include <string>
#include <vector>

#include "core/result.h"
#include "fl/weights.h"

namespace mufl::fl {

struct StrategyOptions {
  // FedAvgM (Hsu et al.): x ← x + server_learning_rate · v with v ← server_momentum · v + Δ.
  // β = 0.9 with η_s = 1 is within Hsu et al.'s sweep; the effective step is ≈ η_s / (1 − β)
  // times Δ. (Flower's FedAvgM defaults to β = 0, which is FedAvg.)
  double server_learning_rate = 1.0;
  double server_momentum = 0.9;
  // FedAdam, FedYogi, FedAdagrad (Reddi et al. 2021, Algorithm 2): the server step η. Kept apart
  // from server_learning_rate because the scales differ: with v ≈ Δ² the adaptive step moves
  // every coordinate by about η per round, whatever |Δ| is, so η must be of the order of one
  // round's client change (≈1e-2 for small CNNs trained with client SGD at lr ≈ 0.05), whereas
  // FedAvgM's η_s multiplies Δ itself. 1e-2 is Flower's FedYogi default and inside Reddi's
  // tuned range for vision tasks (≈1e-2..1e-1 at τ = 1e-3). FedAdagrad, whose v only grows,
  // moves only (1 − β1)·η in round one and less later; it may want η ≈ 1e-1.
  double adaptive_learning_rate = 0.01;
  double beta1 = 0.9;   // adaptive: first moment decay (all three, as Algorithm 2)
  double beta2 = 0.99;  // FedAdam/FedYogi: second moment decay (FedAdagrad ignores it)
  double tau = 1e-3;    // adaptive: degree of adaptivity, added to √v; v starts at τ²
};

// The sample-weighted sum of a round's updates, built one update at a time: Σ n_k w_k per
// tensor in float64, in the order added. It holds one float64 copy of the model however many
// updates it took, so a round of a thousand clients never holds their weights at once, and its
// mean is bit-identical to weighted_average() of the same updates in the same order.
// Thread safety: none (one round's aggregation).
class UpdateSum {
 public:
  // REQUIRES: num_samples > 0, floating-point tensors, and the shapes of the first update
  // added. A broken REQUIRES throws (c10::Error) and leaves the sum as it was.
  void add(const ClientUpdate& update) { add(update, static_cast<double>(update.num_samples)); }
  // The same with an aggregation weight of its own instead of num_samples (FedReID's cosine
  // weighting). REQUIRES also: `weight` finite and > 0.
  void add(const ClientUpdate& update, double weight);
  size_t count() const { return count_; }
  int64_t samples() const { return samples_; }
  // Σ a_k w_k / Σ a_k in float64, a_k the weights added (num_samples by default). REQUIRES:
  // count() > 0 (throws c10::Error otherwise).
  Weights mean() const;
  // The dtypes of the first update, which weighted_average() returns its mean in.
  const std::vector<c10::ScalarType>& dtypes() const { return dtypes_; }

 private:
  Weights sum_;  // float64, empty before the first add
  std::vector<c10::ScalarType> dtypes_;
  int64_t samples_ = 0;
  double weight_ = 0;  // Σ a_k
  size_t count_ = 0;
};

// FedReID's aggregation weight of one update (Zhuang et al., TOMM 2022; JobConfig::weighting
// "cosine"): the cosine distance 1 − cos(global, update) of the two models' parameters, all
// tensors as one vector, in float64. A client whose training moved the model further gets more
// weight, whatever its sample count. FedReID measures the distance on the features the two
// models extract from the client's data; the parameters' distance needs nothing from the
// client, so it works alike for simulated and real clients. A distance that is not > 0 (the
// model did not move) is floored at 1e-12. REQUIRES: the shapes match (throws c10::Error).
double cosine_weight(const Weights& global, const Weights& update);

// The pairwise cosine similarities of the clients' updates, cos(w_a − global, w_b − global),
// all tensors of a model as one vector, in float64 (FedReID's client clustering, fl/
// client_clustering.h). An update that did not move the model has similarity 0 with every other
// and 1 with itself. REQUIRES: every update has `global`'s shapes (throws c10::Error).
// Holds the n updates' differences as one n×P float64 matrix while it works.
std::vector<std::vector<double>> update_similarities(const Weights& global, const std::vector<Weights>& updates);

class Strategy {
 public:
  virtual ~Strategy() = default;
  virtual std::string name() const = 0;
  // The next global weights, as fresh tensors of `global`'s dtypes (never aliasing an input),
  // from the round's updates summed by `sum`.
  // REQUIRES: sum.count() > 0; its tensors have the shapes of `global`, which are floating
  // point; a state loaded before the first round has `global`'s shapes. A broken REQUIRES
  // throws (c10::Error) and leaves the server state as it was. Does not modify its inputs.
  // Arithmetic is float64, so the same sum and state give bit-identical outputs.
  virtual Weights aggregate_sum(const Weights& global, const UpdateSum& sum) = 0;
  // The same from the updates themselves, summed in the given order. REQUIRES as above, and
  // every update's as UpdateSum::add's.
  Weights aggregate(const Weights& global, const std::vector<ClientUpdate>& updates);

  // Server state for checkpoints, as float64 clones; empty before the first aggregate (and
  // always for FedAvg). Layout, with n = number of weight tensors:
  //   fedavgm:                        [v_0 … v_{n-1}]                  (momentum, starts at 0)
  //   fedadam, fedyogi, fedadagrad:   [m_0 … m_{n-1}, v_0 … v_{n-1}]   (m starts at 0, v at τ²)
  virtual std::vector<torch::Tensor> state() const = 0;
  // Restores state() (cloned, converted to float64). Empty: back to the initial state. Otherwise
  // kInvalidArgument, leaving the state unchanged, when a tensor is undefined or not floating
  // point, the count does not fit the layout, m_i and v_i differ in shape, some v is negative
  // or NaN, or — once the strategy holds state — the count or a shape differs from it. Shapes
  // of a state loaded before the first round are checked against `global` by aggregate().
  virtual Status load_state(const std::vector<torch::Tensor>& state) = 0;
};

// The sample-weighted mean of the updates' weights (FedAvg's aggregate, the base of the
// others): Σ n_k w_k / Σ n_k in float64, returned in the dtypes of the first update.
// REQUIRES as for Strategy::aggregate (without `global`).
Weights weighted_average(const std::vector<ClientUpdate>& updates);

// "fedavg" | "fedavgm" | "fedadam" | "fedyogi" | "fedadagrad" (exact, lower case); otherwise
// kInvalidArgument. Also kInvalidArgument, naming the field, for an option the strategy uses
// that is out of range: learning rates > 0, momenta and betas in [0, 1), tau > 0, all finite.
Result<std::unique_ptr<Strategy>> make_strategy(const std::string& name, const StrategyOptions& options = {});

}  // namespace mufl::fl
