#pragma once
// FedEMA's update rule (Zhuang et al., "Divergence-aware Federated Self-Supervised Learning",
// ICLR 2022, Eq. 3; EasyFL applications/fedssl/client.py, ema_online): a client that kept its
// model w_l from the last round it trained starts this round's training from
//
//   w = μ·w_l + (1 − μ)·w_g,   μ = min(λ·‖w_g − w_l‖, 1),
//
// so that the further the new global model w_g has moved from what the client learnt, the more
// the client keeps of its own. λ is given, or "auto": λ = τ / ‖w_g − w_l‖ at the client's first
// divergence (the first round it trains with a kept model), so that μ starts at τ (EasyFL's
// auto_scaler_target, 0.7). A client with no kept model starts from w_g.
//
// ‖·‖ is the L2 norm of all parameters as one vector, in float64 (EasyFL averages the L2 norms
// of its encoder's conv weights; with λ "auto" only the norm's ratios across rounds matter).
// Internal to fl/ (torch types). Pure functions: thread-safe.
#include <torch/torch.h>

#include "fl/weights.h"

namespace mufl::fl {

// FedEMA's τ: the μ that "auto" gives a client at its first divergence (the paper's default).
inline constexpr double kFedEmaTau = 0.7;

// ‖a − b‖₂ over every tensor as one vector, in float64. REQUIRES: same count and shapes.
double weight_distance(const Weights& a, const Weights& b);

// μ = min(λ·divergence, 1). REQUIRES: λ ≥ 0, divergence ≥ 0.
double fedema_mu(double lambda, double divergence);

// λ for one client at one round: `given` when > 0; else ("auto") the client's `kept` λ when it
// has one (> 0); else τ / divergence, or 0 when divergence is 0 (undecided: decided at the next
// divergence, and μ is 0 meanwhile).
double fedema_lambda(double given, double kept, double divergence, double tau = kFedEmaTau);

// μ·local + (1 − μ)·global, tensor by tensor (new tensors; μ = 0 gives global's values, μ = 1
// local's, and a local tensor that is the global one itself gives global's values exactly).
// REQUIRES: same count and shapes.
Weights ema_mix(const Weights& global, const Weights& local, double mu);

// One client's start, all of the above: the divergence, λ and μ it used, and its weights.
struct FedEmaStart {
  double divergence = 0;
  double lambda = 0;  // 0: not decided yet (see fedema_lambda)
  double mu = 0;
  Weights weights;
};
// From the global model and the client's kept model (nullptr: none, so w_g, λ `kept`).
FedEmaStart fedema_start(const Weights& global, const Weights* local, double given_lambda, double kept_lambda,
                         double tau = kFedEmaTau);

}  // namespace mufl::fl
