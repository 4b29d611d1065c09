#include "fl/job_clusters.h"

#include <algorithm>

#include "fl/client_clustering.h"

namespace mufl::fl {
namespace {

void write_tensors(torch::serialize::OutputArchive& archive, const std::string& prefix,
                   const std::vector<torch::Tensor>& tensors) {
  archive.write(prefix + "count", torch::tensor(static_cast<int64_t>(tensors.size()), torch::kInt64));
  for (size_t i = 0; i < tensors.size(); ++i) archive.write(prefix + std::to_string(i), tensors[i].cpu());
}

std::vector<torch::Tensor> read_tensors(torch::serialize::InputArchive& archive, const std::string& prefix,
                                        torch::Device device) {
  torch::Tensor t;
  archive.read(prefix + "count", t);
  std::vector<torch::Tensor> out(static_cast<size_t>(t.item<int64_t>()));
  for (size_t i = 0; i < out.size(); ++i) {
    archive.read(prefix + std::to_string(i), out[i]);
    out[i] = out[i].to(device);
  }
  return out;
}

// A fresh strategy named `aggregator` holding `state`; throws c10::Error when it refuses.
std::unique_ptr<Strategy> strategy_with(const std::string& aggregator, const std::vector<torch::Tensor>& state) {
  auto made = make_strategy(aggregator);
  TORCH_CHECK(made.ok(), "client clustering: ", made.status().message());
  const Status loaded = (*made)->load_state(state);
  TORCH_CHECK(loaded.is_ok(), "client clustering: ", loaded.message());
  return std::move(*made);
}

// Each of `population` clients' training samples as `partition` holds them (0 past its end).
std::vector<int64_t> partition_samples(const Partition& partition, size_t population) {
  std::vector<int64_t> out(population, 0);
  for (size_t c = 0; c < partition.size() && c < population; ++c) out[c] = static_cast<int64_t>(partition[c].size());
  return out;
}

}  // namespace

std::vector<double> label_shares(const torch::Tensor& train_labels, const Partition& partition,
                                 const std::vector<int64_t>& clients) {
  const auto labels = train_labels.to(torch::kInt64).contiguous();
  const int64_t* label = labels.data_ptr<int64_t>();
  const int64_t count = labels.numel() ? labels.max().item<int64_t>() + 1 : 0;
  std::vector<double> shares(static_cast<size_t>(std::max<int64_t>(count, 0)), 0.0);
  double samples = 0;
  for (int64_t client : clients)
    for (int64_t i : partition.at(static_cast<size_t>(client))) {
      shares[static_cast<size_t>(label[i])] += 1;
      samples += 1;
    }
  for (double& s : shares) s /= std::max(samples, 1.0);
  return shares;
}

JobClusters::JobClusters(const Partition& partition, torch::Tensor train_labels)
    : partition_(partition), train_labels_(std::move(train_labels)) {}

std::vector<std::vector<int64_t>> JobClusters::members() const { return cluster_members(cluster_of_); }

size_t JobClusters::largest() const {
  size_t best = 0;
  for (size_t c = 1; c < samples_.size(); ++c)
    if (samples_[c] > samples_[best]) best = c;  // a tie keeps the smaller client
  return best;
}

void JobClusters::assign(std::vector<int> cluster_of, std::vector<int64_t> client_samples, std::vector<Weights> models,
                         std::vector<std::unique_ptr<Strategy>> strategies) {
  cluster_of_ = std::move(cluster_of);
  client_samples_ = std::move(client_samples);
  models_ = std::move(models);
  strategies_ = std::move(strategies);
  samples_.clear();
  label_mix_.clear();
  for (const auto& clients : members()) {
    int64_t n = 0;
    for (int64_t client : clients) n += client_samples_.at(static_cast<size_t>(client));
    samples_.push_back(n);
    if (!federated()) label_mix_.push_back(label_shares(train_labels_, partition_, clients));
  }
}

void JobClusters::form(int k, const std::vector<int64_t>& clients, const std::vector<ClientUpdate>& updates,
                       const Weights& start, const std::function<double(const ClientUpdate&)>& weight_of,
                       const Strategy& strategy, const std::string& aggregator) {
  std::vector<Weights> trained;
  for (const auto& u : updates) trained.push_back(u.weights);
  const auto by_update = cluster_by_similarity(update_similarities(start, trained), k);
  TORCH_CHECK(!by_update.empty(), "client clustering: no updates");
  // The population: the partition's clients, or on a federation every number up to the largest
  // that trained (one that did not is in no cluster, -1, and weighs nothing).
  const size_t population = federated() ? static_cast<size_t>(*std::max_element(clients.begin(), clients.end()) + 1)
                                        : partition_.size();
  std::vector<int> cluster_of(population, federated() ? -1 : 0);
  std::vector<int64_t> client_samples = partition_samples(partition_, population);
  for (size_t i = 0; i < clients.size(); ++i) {
    cluster_of.at(static_cast<size_t>(clients[i])) = by_update[i];
    if (federated()) client_samples[static_cast<size_t>(clients[i])] = updates[i].num_samples;
  }
  const auto count = static_cast<size_t>(*std::max_element(by_update.begin(), by_update.end()) + 1);
  std::vector<UpdateSum> sums(count);
  for (size_t i = 0; i < updates.size(); ++i)
    sums[static_cast<size_t>(by_update[i])].add(updates[i], weight_of(updates[i]));
  std::vector<Weights> models;
  std::vector<std::unique_ptr<Strategy>> strategies;
  for (size_t c = 0; c < count; ++c) {
    strategies.push_back(strategy_with(aggregator, strategy.state()));
    models.push_back(strategies.back()->aggregate_sum(start, sums[c]));
  }
  assign(std::move(cluster_of), std::move(client_samples), std::move(models), std::move(strategies));
}

void JobClusters::aggregate(size_t cluster, const UpdateSum& sum) {
  models_.at(cluster) = strategies_.at(cluster)->aggregate_sum(models_[cluster], sum);
}

void JobClusters::carry(const JobClusters& from, std::vector<Weights> models, const std::string& aggregator) {
  TORCH_CHECK(from.formed() && models.size() == from.count(), "client clustering: nothing to carry");
  TORCH_CHECK(from.federated() == federated() && (federated() || from.cluster_of_.size() == partition_.size()),
              "client clustering: the derived job has other clients");
  std::vector<std::unique_ptr<Strategy>> strategies;
  for (size_t c = 0; c < models.size(); ++c) strategies.push_back(strategy_with(aggregator, {}));
  assign(from.cluster_of_, from.client_samples_, std::move(models), std::move(strategies));
}

void JobClusters::write(torch::serialize::OutputArchive& archive) const {
  if (!formed()) return;
  archive.write("clusters.count", torch::tensor(static_cast<int64_t>(count()), torch::kInt64));
  const std::vector<int64_t> assignment(cluster_of_.begin(), cluster_of_.end());
  archive.write("clusters.assignment", torch::tensor(assignment, torch::kInt64));
  archive.write("clusters.client_samples", torch::tensor(client_samples_, torch::kInt64));
  for (size_t c = 0; c < count(); ++c) {
    const auto prefix = "clusters." + std::to_string(c);
    write_tensors(archive, prefix + ".weights.", models_[c]);
    write_tensors(archive, prefix + ".strategy.", strategies_[c]->state());
  }
}

Status JobClusters::read(torch::serialize::InputArchive& archive, const std::vector<torch::Tensor>& params,
                         int max_clusters, const std::string& aggregator, torch::Device device) {
  auto bad = [](const std::string& why) { return Status::invalid_argument("checkpoint clusters: " + why); };
  torch::Tensor t;
  if (!archive.try_read("clusters.count", t)) {
    assign({}, {}, {}, {});
    return Status::ok();
  }
  const int64_t k = t.item<int64_t>();
  if (k < 1 || k > max_clusters)
    return bad(std::to_string(k) + " clusters for a job of at most " + std::to_string(max_clusters));
  archive.read("clusters.assignment", t);
  // A federation's clients are numbered in enrollment order, revoked ones included, so the
  // numbers of the 1,000 clustered may run past 1,000.
  const bool fits = federated() ? t.numel() >= 1 && t.numel() <= kMaxFederationClientNumber
                                : t.numel() == static_cast<int64_t>(partition_.size());
  if (!fits) return bad("the assignment is for another population");
  const auto a = t.to(torch::kInt64).contiguous();
  std::vector<int> cluster_of;
  for (int64_t i = 0; i < a.numel(); ++i) {
    const int64_t c = a.data_ptr<int64_t>()[i];
    // On a federation a client that did not train in the clustering round is in none (-1).
    if (c < (federated() ? -1 : 0) || c >= k) return bad("client " + std::to_string(i) + " is in no cluster");
    cluster_of.push_back(static_cast<int>(c));
  }
  std::vector<int64_t> client_samples = partition_samples(partition_, cluster_of.size());
  if (archive.try_read("clusters.client_samples", t)) {
    if (t.numel() != a.numel()) return bad("the clients' samples are for another population");
    const auto s = t.to(torch::kInt64).contiguous();
    for (int64_t i = 0; i < s.numel(); ++i)
      if ((client_samples[static_cast<size_t>(i)] = s.data_ptr<int64_t>()[i]) < 0) return bad("negative samples");
  } else if (federated()) {
    return bad("a federation's clusters need their clients' samples");
  }  // else a checkpoint from before client_samples: the partition says
  std::vector<Weights> models;
  std::vector<std::unique_ptr<Strategy>> strategies;
  for (int64_t c = 0; c < k; ++c) {
    const auto prefix = "clusters." + std::to_string(c);
    auto w = read_tensors(archive, prefix + ".weights.", device);
    if (w.size() != params.size()) return bad("a cluster model is for another model");
    for (size_t i = 0; i < w.size(); ++i)
      if (!w[i].sizes().equals(params[i].sizes())) return bad("a cluster model is for another model");
    auto strategy = make_strategy(aggregator);
    if (!strategy.ok()) return strategy.status();
    if (Status s = (*strategy)->load_state(read_tensors(archive, prefix + ".strategy.", device)); !s.is_ok()) return s;
    models.push_back(std::move(w));
    strategies.push_back(std::move(*strategy));
  }
  assign(std::move(cluster_of), std::move(client_samples), std::move(models), std::move(strategies));
  return Status::ok();
}

}  // namespace mufl::fl
