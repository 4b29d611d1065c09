#pragma once
// Weights: a model's parameters as plain tensors, in the fixed order of
// MultiTaskNet::parameters(). It is the currency of FL: clients send weights, strategies
// aggregate them, checkpoints store them. Internal to fl/ (it names torch types).
#include <torch/torch.h>

#include <cstdint>
#include <vector>

namespace mufl::fl {

using Weights = std::vector<torch::Tensor>;

// What one client sends back after local training.
struct ClientUpdate {
  Weights weights;          // the client's model after training, same shapes as the global
  int64_t num_samples = 0;  // training samples it used; FedAvg weights by this
};

// Deep copies (tensors share storage when copied as values).
inline Weights clone(const Weights& w) {
  Weights out;
  out.reserve(w.size());
  for (const auto& t : w) out.push_back(t.detach().clone());
  return out;
}

}  // namespace mufl::fl
