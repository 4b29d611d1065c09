#include "fl/remote_clients.h"

#include "fl/assignment_options.h"
#include "fl/wire.h"

namespace mufl::fl {

Status RemoteClients::train(const Weights& global, const LocalTrainOptions& options, const RoundDraw& draw,
                            const std::vector<ClientTask>& tasks, const std::function<void(ClientResult)>& report,
                            const std::function<bool()>& should_stop, bool& stopped) {
  RemoteDraw remote;
  remote.job = job_;
  remote.timeout_ms = timeout_ms_;
  remote.round = draw.round;
  remote.attempt = draw.attempt;
  remote.part = draw.part;
  set_weights(shape_, global);
  auto encoded = protocol::encode_safetensors(to_tensor_file(shape_));
  if (!encoded.ok()) return encoded.status();
  remote.global_weights = std::move(*encoded);
  remote.tensors = tensor_specs(shape_);
  std::vector<std::string> task_names;
  for (const auto& t : shape_->tasks()) task_names.push_back(t.name);
  const int64_t labels = shape_->tasks().empty() ? 10 : shape_->tasks().front().labels;
  int64_t largest_client = 0;
  if (personalized_epochs_) {
    auto largest = pool_->largest_train_samples();
    if (!largest.ok()) return largest.status();
    largest_client = *largest;
  }
  for (const ClientTask& t : tasks) {
    Assignment a = make_assignment(task_names, shape_->keys(), options, t.seed);
    a.channels = shape_->input().channels;
    a.height = shape_->input().height;
    a.width = shape_->input().width;
    a.labels = labels;
    a.personalize_max_samples = largest_client;
    a.local_update = local_update_;
    a.ema_lambda = ema_lambda_;
    a.job = job_;
    a.round = draw.round;
    remote.tasks.push_back({t.client, assignment_to_json(a)});
  }

  auto updates = pool_->run(remote, should_stop, stopped);
  if (!updates.ok()) return updates.status();
  if (stopped) return Status::ok();
  for (auto& u : *updates) {
    // One update at a time: read, decoded, handed on (and summed there), freed before the next.
    std::string bytes = std::move(u.update);
    if (u.read) {
      auto read = u.read();
      if (!read.ok()) return read.status();
      bytes = std::move(*read);
    }
    auto r = decode(u.client, bytes);
    if (r.ok()) report(std::move(*r));
  }
  return Status::ok();
}

Result<ClientResult> RemoteClients::decode(int64_t client, std::string_view bytes) const {
  auto file = protocol::decode_safetensors(bytes);
  if (!file.ok()) return file.status();
  MultiTaskNet shape = shape_;  // a handle; weights_from only reads it
  auto weights = weights_from(*file, shape);
  if (!weights.ok()) return weights.status();
  const auto meta = file->metadata.find(kReportMetadataKey);
  if (meta == file->metadata.end()) return Status::invalid_argument("the update carries no report");
  auto report = local_report_from_json(nlohmann::json::parse(meta->second, nullptr, false));
  if (!report.ok()) return report.status();
  ClientResult r;
  r.client = client;
  r.update = {std::move(*weights), report->num_samples};
  r.local.samples = report->samples;
  r.local.steps = report->steps;
  r.local.mean_loss = report->mean_loss;
  r.local.affinity = report->affinity;
  r.local.alignment = report->alignment;
  r.local.lookaheads = report->lookaheads;
  r.test_samples = report->test_samples;
  r.eval = report->eval;
  r.energy_meter = report->energy_meter;
  r.energy_joules = report->energy_joules;
  return r;
}

}  // namespace mufl::fl
