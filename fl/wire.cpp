#include "fl/wire.h"

#include <map>

namespace mufl::fl {

protocol::TensorFile to_tensor_file(MultiTaskNet& model, const std::map<std::string, std::string>& metadata) {
  torch::NoGradGuard no_grad;
  protocol::TensorFile file;
  file.metadata = metadata;
  for (const auto& item : model->named_parameters()) {
    const auto t = item.value().detach().to(torch::kCPU, torch::kFloat32).contiguous();
    const float* data = t.data_ptr<float>();
    file.tensors.push_back({item.key(), t.sizes().vec(), std::vector<float>(data, data + t.numel())});
  }
  return file;
}

std::vector<protocol::TensorSpec> tensor_specs(MultiTaskNet& model) {
  std::vector<protocol::TensorSpec> specs;
  for (const auto& item : model->named_parameters()) specs.push_back({item.key(), item.value().sizes().vec()});
  return specs;
}

Result<Weights> weights_from(const protocol::TensorFile& file, MultiTaskNet& model) {
  if (Status s = protocol::check_tensors(file, tensor_specs(model)); !s.is_ok()) return s;
  std::map<std::string, const protocol::NamedTensor*> by_name;
  for (const auto& t : file.tensors) by_name[t.name] = &t;
  Weights w;
  for (const auto& item : model->named_parameters()) {
    const auto* t = by_name.at(item.key());
    auto cpu = torch::from_blob(const_cast<float*>(t->values.data()), t->shape, torch::kFloat32);
    w.push_back(cpu.clone().to(item.value().device(), item.value().scalar_type()));
  }
  return w;
}

}  // namespace mufl::fl
