#include "fl/fedema.h"

#include <algorithm>
#include <cmath>

namespace mufl::fl {

double weight_distance(const Weights& a, const Weights& b) {
  torch::NoGradGuard no_grad;
  double sum = 0;
  for (size_t i = 0; i < a.size(); ++i)
    sum += (a[i].to(torch::kFloat64) - b[i].to(torch::kFloat64)).pow(2).sum().item<double>();
  return std::sqrt(sum);
}

double fedema_mu(double lambda, double divergence) { return std::min(lambda * divergence, 1.0); }

double fedema_lambda(double given, double kept, double divergence, double tau) {
  if (given > 0) return given;
  if (kept > 0) return kept;
  return divergence > 0 ? tau / divergence : 0.0;
}

Weights ema_mix(const Weights& global, const Weights& local, double mu) {
  torch::NoGradGuard no_grad;
  Weights out;
  out.reserve(global.size());
  for (size_t i = 0; i < global.size(); ++i)
    out.push_back(local[i].is_same(global[i]) ? global[i].clone() : global[i].mul(1.0 - mu).add_(local[i], mu));
  return out;
}

FedEmaStart fedema_start(const Weights& global, const Weights* local, double given_lambda, double kept_lambda,
                         double tau) {
  FedEmaStart start;
  if (!local) {
    start.lambda = given_lambda > 0 ? given_lambda : kept_lambda;
    start.weights = clone(global);
    return start;
  }
  start.divergence = weight_distance(global, *local);
  start.lambda = fedema_lambda(given_lambda, kept_lambda, start.divergence, tau);
  start.mu = fedema_mu(start.lambda, start.divergence);
  start.weights = ema_mix(global, *local, start.mu);
  return start;
}

}  // namespace mufl::fl
