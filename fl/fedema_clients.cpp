#include "fl/fedema_clients.h"

#include <charconv>
#include <map>
#include <utility>

#include "fl/wire.h"
#include "protocol/safetensors.h"

namespace mufl::fl {
namespace {

std::string lambda_text(double lambda) {
  char buf[64];
  const auto [end, ec] = std::to_chars(buf, buf + sizeof buf, lambda);  // shortest exact form
  return ec == std::errc() ? std::string(buf, end) : std::string("0");
}

// The kept weights in `worker`'s parameter order: a parameter the state has (same name and
// shape) from the state, any other from `global`. `lambda` gets the state's λ.
Result<Weights> kept_weights(const std::string& bytes, const Weights& global, MultiTaskNet& worker, double& lambda) {
  auto file = protocol::decode_safetensors(bytes);
  if (!file.ok()) return file.status();
  const auto l = file->metadata.find("lambda");
  if (l == file->metadata.end()) return Status::invalid_argument("no \"lambda\" in its metadata");
  const auto [ptr, ec] = std::from_chars(l->second.data(), l->second.data() + l->second.size(), lambda);
  if (ec != std::errc() || ptr != l->second.data() + l->second.size() || !(lambda >= 0))
    return Status::invalid_argument("its \"lambda\" is not a number ≥ 0");
  std::map<std::string, const protocol::NamedTensor*> by_name;
  for (const auto& t : file->tensors) by_name[t.name] = &t;
  const auto names = weight_names(worker);
  Weights local;
  for (size_t i = 0; i < names.size(); ++i) {
    const auto it = by_name.find(names[i]);
    if (it == by_name.end() || it->second->shape != global[i].sizes().vec()) {
      local.push_back(global[i]);
      continue;
    }
    const auto& t = *it->second;
    auto cpu = torch::from_blob(const_cast<float*>(t.values.data()), t.shape, torch::kFloat32);
    local.push_back(cpu.clone().to(global[i].device(), global[i].scalar_type()));
  }
  return local;
}

}  // namespace

FedEmaClients::FedEmaClients(std::string dir, double lambda) : states_(std::move(dir)), lambda_(lambda) {}

Result<FedEmaStart> FedEmaClients::start(int64_t client, int64_t round, const Weights& global, MultiTaskNet& worker) {
  if (Status s = states_.open(); !s.is_ok()) return s;
  auto bytes = states_.load(client, round);
  if (!bytes.ok()) return bytes.status();
  double kept_lambda = 0;
  Weights local;
  if (*bytes) {
    auto kept = kept_weights(**bytes, global, worker, kept_lambda);
    if (!kept.ok())
      return Status::internal("the FedEMA state of client " + std::to_string(client) + " before round " +
                              std::to_string(round) + " is not readable: " + kept.status().message());
    local = std::move(*kept);
  }
  FedEmaStart start = fedema_start(global, *bytes ? &local : nullptr, lambda_, kept_lambda);
  set_weights(worker, start.weights);
  started_lambda_ = start.lambda;
  return start;
}

Status FedEmaClients::keep(int64_t client, int64_t round, MultiTaskNet& worker) {
  auto bytes = protocol::encode_safetensors(to_tensor_file(worker, {{"lambda", lambda_text(started_lambda_)}}));
  if (!bytes.ok()) return bytes.status();
  return states_.save(client, round, *bytes);
}

}  // namespace mufl::fl
