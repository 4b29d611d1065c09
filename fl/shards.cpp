#include "fl/shards.h"

#include <filesystem>

#include "core/file_io.h"
#include "fl/seeds.h"
#include "protocol/safetensors.h"

namespace mufl::fl {

Result<std::string> encode_client_part(const ImageSet& set, const std::vector<int64_t>& rows) {
  const auto index = torch::tensor(rows, torch::kInt64);
  const auto images = set.images.index_select(0, index).to(torch::kFloat32).contiguous().cpu();
  const auto labels = set.labels.index_select(0, index).to(torch::kFloat32).contiguous().cpu();
  protocol::TensorFile f;
  f.tensors.push_back({"images", images.sizes().vec(),
                       std::vector<float>(images.data_ptr<float>(), images.data_ptr<float>() + images.numel())});
  f.tensors.push_back({"labels", labels.sizes().vec(),
                       std::vector<float>(labels.data_ptr<float>(), labels.data_ptr<float>() + labels.numel())});
  return protocol::encode_safetensors(f);
}

// The samples each simulated client holds (indices into `train`), drawn from the job's seed.
Result<Partition> make_partition(const JobConfig& config, const ImageSet& train) {
  const uint64_t part_seed = seed_for(config.seed, Purpose::kPartition);
  const int clients = static_cast<int>(config.clients);
  Partition partition;
  if (config.partition == "iid") {
    partition = partition_iid(train.size(), clients, part_seed);
  } else if (config.partition == "dirichlet") {
    const auto labels_t = train.labels.contiguous();
    std::vector<int64_t> labels(labels_t.data_ptr<int64_t>(), labels_t.data_ptr<int64_t>() + labels_t.numel());
    auto p = partition_dirichlet(labels, 10, clients, config.dirichlet_alpha, part_seed);
    if (!p.ok()) return p.status();
    partition = std::move(*p);
  } else {
    return Status::invalid_argument("unknown partition '" + config.partition + "'");
  }
  for (const auto& c : partition)
    if (c.empty())
      return Status::invalid_argument("a client holds no samples: " + std::to_string(config.clients) +
                                      " clients are too many for " + config.dataset);
  return partition;
}

Status write_client_shards(const JobConfig& config, const RuntimeOptions& options, const std::string& out_dir) {
  try {
    auto data = load_dataset(options.data_dir, config.dataset);
    if (!data.ok()) return data.status();
    auto partition = make_partition(config, data->train);
    if (!partition.ok()) return partition.status();
    // The held-out parts: the test set dealt out evenly, seeded apart from the training partition.
    const Partition tests = partition_iid(data->test.size(), static_cast<int>(config.clients),
                                          seed_for(config.seed, Purpose::kPartition, 1));
    for (size_t i = 0; i < partition->size(); ++i) {
      const std::string dir = out_dir + "/client-" + std::to_string(i);
      std::error_code ec;
      std::filesystem::create_directories(dir, ec);
      if (ec) return Status::internal("cannot create " + dir + ": " + ec.message());
      auto train = encode_client_part(data->train, (*partition)[i]);
      if (!train.ok()) return train.status();
      if (Status s = write_file_durably(dir + "/train.safetensors", *train); !s.is_ok()) return s;
      if (tests[i].empty()) continue;
      auto test = encode_client_part(data->test, tests[i]);
      if (!test.ok()) return test.status();
      if (Status s = write_file_durably(dir + "/test.safetensors", *test); !s.is_ok()) return s;
    }
    return Status::ok();
  } catch (const std::exception& e) {
    return Status::internal(std::string("cannot cut the shards: ") + e.what());
  }
}

}  // namespace mufl::fl
