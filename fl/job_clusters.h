#pragma once
// JobClusters: the clusters of one job's clients (JobConfig::client_clusters) once they are
// formed: who is in which cluster, each cluster's model and aggregator state, and what the
// evaluation weighs each cluster by (its members' training samples and label mix). FlJob owns
// one; the rule that forms the clusters is fl/client_clustering.h.
//
// On a federation there is no partition: the population is the clients that trained in the
// clustering round (numbered as the pool numbers them), each weighs the training samples its
// update reported, no label mix is known (its clients evaluate), and a client that enrolled
// later trains in the largest cluster.
// Internal to fl/ (torch types). Thread safety: one thread at a time, as its job.
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "core/result.h"
#include "fl/partition.h"
#include "fl/strategy.h"
#include "fl/weights.h"

namespace mufl::fl {

class JobClusters {
 public:
  // `partition` (client → its training samples) must outlive it; `train_labels` (int64, one per
  // training sample) is shared. An empty partition (and undefined labels): a federation's.
  JobClusters(const Partition& partition, torch::Tensor train_labels);

  bool federated() const { return partition_.empty(); }

  bool formed() const { return !cluster_of_.empty(); }
  size_t count() const { return models_.size(); }
  // REQUIRES: formed(). A client the clusters were not formed with (a federation's newcomer)
  // is in the largest cluster.
  size_t of(int64_t client) const {
    if (client < 0 || static_cast<size_t>(client) >= cluster_of_.size() || cluster_of_[static_cast<size_t>(client)] < 0)
      return largest();
    return static_cast<size_t>(cluster_of_[static_cast<size_t>(client)]);
  }
  const std::vector<Weights>& models() const { return models_; }
  // Each cluster's members' training samples, and each label's share of them (empty on a
  // federation).
  const std::vector<int64_t>& samples() const { return samples_; }
  const std::vector<double>& label_mix(size_t cluster) const { return label_mix_.at(cluster); }
  std::vector<std::vector<int64_t>> members() const;
  // The cluster with the most training samples (a tie: the one with the smallest client).
  size_t largest() const;

  // Forms k clusters (fewer with fewer clients) from the clustering round: `updates` are
  // `clients`' (ascending), each trained from `start`. Each cluster's model is
  // `strategy`'s copy (its state included) aggregating its members' updates, in client order,
  // weighted by `weight_of`. Throws c10::Error on updates that do not fit `start`.
  void form(int k, const std::vector<int64_t>& clients, const std::vector<ClientUpdate>& updates, const Weights& start,
            const std::function<double(const ClientUpdate&)>& weight_of, const Strategy& strategy,
            const std::string& aggregator);
  // Cluster `cluster`'s next model from its members' updates of a round, which started from
  // its current model. REQUIRES as Strategy::aggregate_sum.
  void aggregate(size_t cluster, const UpdateSum& sum);
  // The clusters of `from` in a job derived from its job (a merged group that takes in an
  // activity, lets one go, or splits; FlJob::derive): the same clients in the same clusters,
  // cluster c starting from `models[c]` (from's model c with this job's heads), each with a fresh
  // `aggregator` state, as a derived job's global model has. REQUIRES: from.formed(), one model
  // per cluster. Throws c10::Error when `from` was formed over another population.
  void carry(const JobClusters& from, std::vector<Weights> models, const std::string& aggregator);

  // Into a checkpoint: "clusters.count" k, "clusters.assignment" (int64, one per client; -1 on
  // a federation for a client that did not train in the clustering round),
  // "clusters.client_samples" (int64, one per client), and
  // per cluster c "clusters.<c>.weights.<i>" and "clusters.<c>.strategy.<i>" with their counts.
  // Writes nothing before the clusters are formed, so checkpoints without clustering are as
  // they were.
  void write(torch::serialize::OutputArchive& archive) const;
  // The clusters in `archive` (none: not formed), checked against this job: at most
  // `max_clusters` clusters, one entry per client of the partition (on a federation, any
  // number up to kMaxFederationClientNumber), models shaped as `params`,
  // strategy state `aggregator` accepts. kInvalidArgument otherwise, leaving *this as it was.
  Status read(torch::serialize::InputArchive& archive, const std::vector<torch::Tensor>& params, int max_clusters,
              const std::string& aggregator, torch::Device device);

 private:
  void assign(std::vector<int> cluster_of, std::vector<int64_t> client_samples, std::vector<Weights> models,
              std::vector<std::unique_ptr<Strategy>> strategies);

  const Partition& partition_;
  torch::Tensor train_labels_;
  std::vector<int> cluster_of_;  // client → cluster (-1: none); empty until formed
  std::vector<int64_t> client_samples_;  // client → its training samples
  std::vector<Weights> models_;
  std::vector<std::unique_ptr<Strategy>> strategies_;
  std::vector<int64_t> samples_;
  std::vector<std::vector<double>> label_mix_;
};

// The most clients a federation's clusters are formed with (the clustering round compares every
// pair of their updates).
inline constexpr int64_t kMaxFederatedClusterClients = 1000;
// The most entries a federation's assignment may have in a checkpoint (client numbers count
// every client ever enrolled): a bound against a corrupt file, 8 MB of int64.
inline constexpr int64_t kMaxFederationClientNumber = 1'000'000;

// The share of each label (0 … the largest in `train_labels`) among the samples of `clients`.
std::vector<double> label_shares(const torch::Tensor& train_labels, const Partition& partition,
                                 const std::vector<int64_t>& clients);

}  // namespace mufl::fl
