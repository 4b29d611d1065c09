// The client's side of a lease: train_assignment on a shard gives the weights the simulation
// gives for the same partition, seed and settings (one training code path), with its report;
// assignments and reports go through JSON and come back the same.
#include "fl/assignment.h"

#include <catch2/catch.hpp>

#include <fstream>

#include "fl/datasets.h"
#include "fl/partition.h"
#include "fl/shards.h"
#include "fl/training.h"
#include "fl/wire.h"
#include "tests/support/temp_dir.h"
// Last: after the torch headers (Catch's CHECK, not glog's).
#include "tests/support/catch_over_torch.h"

using namespace mufl;
using namespace mufl::fl;

namespace {

// Writes `set`'s samples `idx` as a client data part (mufl-shards' encoding).
void write_part(const std::string& path, const ImageSet& set, const std::vector<int64_t>& idx) {
  auto bytes = encode_client_part(set, idx);
  REQUIRE(bytes.ok());
  std::ofstream(path, std::ios::binary) << *bytes;
}

}  // namespace

TEST_CASE("assignment: a client's training of its shard equals the simulation's training of that partition") {
  mufl::testing::TempDir dir;
  const ImageSet set = make_synthetic(240, 7);
  const fl::Partition partition = partition_iid(set.size(), 4, 11);
  const std::vector<int64_t>& mine = partition[2];
  write_part(dir.file("train.safetensors"), set, mine);
  const ImageSet test = make_synthetic(40, 8);
  std::vector<int64_t> all_test(40);
  std::iota(all_test.begin(), all_test.end(), 0);
  write_part(dir.file("test.safetensors"), test, all_test);

  Assignment a;
  a.tasks = {"class", "segment"};
  a.heads = {"act_a", "act_b"};
  a.epochs = 2;
  a.batch_size = 16;
  a.learning_rate = 0.04;
  a.affinity_every = 3;
  a.seed = 0xfeedface12345ULL;
  std::vector<TaskDef> tasks = {*find_task("class"), *find_task("segment")};
  torch::manual_seed(5);
  MultiTaskNet global(tasks, a.heads);
  auto global_bytes = protocol::encode_safetensors(to_tensor_file(global));
  REQUIRE(global_bytes.ok());

  // The simulation: the partition of the whole set, trained in this process.
  MultiTaskNet worker(tasks, a.heads);
  const Weights start = get_weights(global);
  set_weights(worker, start);
  LocalTrainOptions o;
  o.epochs = 2;
  o.batch_size = 16;
  o.learning_rate = 0.04;
  o.affinity_every = 3;
  const LocalResult sim = train_local(worker, make_task_data(set, tasks), mine, o, a.seed, &start);

  // The client: its shard alone, through the wire format.
  // A meter that counts 1 J per reading, busy only inside the lease.
  double counter = 0;
  std::vector<bool> busy;
  EnergyProbe probe{"model", [&] { return counter += 1; }, [&](bool b) { busy.push_back(b); }};
  auto update = train_assignment(a, *global_bytes, dir.path(), "cpu", {}, probe);
  REQUIRE(update.ok());
  CHECK(busy == std::vector<bool>{true, false});
  auto file = protocol::decode_safetensors(*update);
  REQUIRE(file.ok());
  auto weights = weights_from(*file, worker);
  REQUIRE(weights.ok());
  const Weights expected = get_weights(worker);
  double worst = 0;
  for (size_t i = 0; i < expected.size(); ++i)
    worst = std::max(worst, ((*weights)[i] - expected[i]).abs().max().item<double>());
  CHECK(worst <= 1e-6);

  auto report = local_report_from_json(nlohmann::json::parse(file->metadata.at(kReportMetadataKey)));
  REQUIRE(report.ok());
  CHECK(report->num_samples == static_cast<int64_t>(mine.size()));
  CHECK(report->samples == sim.samples);
  CHECK(report->mean_loss == Approx(sim.mean_loss).epsilon(1e-9));
  CHECK(report->lookaheads == sim.lookaheads);
  REQUIRE(report->affinity.size() == 2);
  REQUIRE(report->alignment.size() == 2);  // a real client measures it as the simulation does
  CHECK(report->alignment[0] == Approx(sim.alignment[0]).margin(1e-9));
  CHECK(report->alignment[1] == Approx(sim.alignment[1]).margin(1e-9));
  CHECK(report->test_samples == 40);
  REQUIRE(report->eval.size() == 2);
  CHECK(report->eval[0].head == "act_a");
  CHECK(report->eval[1].metric == "iou");
  CHECK(report->energy_meter == "model");
  CHECK(report->energy_joules == 1);  // two readings: the start and the end of the lease
}

TEST_CASE("assignment: JSON round trips, and bad assignments are refused by field") {
  Assignment a;
  a.tasks = {"class"};
  a.heads = {"act_x"};
  a.seed = 18446744073709551615ULL;  // beyond 2^53: carried as a string
  a.balance = "cap";
  auto back = assignment_from_json(nlohmann::json::parse(assignment_to_json(a).dump()));
  REQUIRE(back.ok());
  CHECK(back->seed == a.seed);
  CHECK(back->heads == a.heads);
  CHECK(back->balance == "cap");

  nlohmann::json j = assignment_to_json(a);
  j["seed"] = 12;
  CHECK(assignment_from_json(j).status().is_invalid_argument());
  j = assignment_to_json(a);
  j["heads"] = nlohmann::json::array();
  CHECK(assignment_from_json(j).status().is_invalid_argument());
  j = assignment_to_json(a);
  j["local"]["epochs"] = 0;
  CHECK(assignment_from_json(j).status().is_invalid_argument());

  LocalReport r;
  r.num_samples = 10;
  r.mean_loss = 0.5;
  r.eval.push_back({"act_x", "class", "accuracy", 0.3, 0.9});
  auto rb = local_report_from_json(nlohmann::json::parse(local_report_to_json(r).dump()));
  REQUIRE(rb.ok());
  CHECK(rb->eval[0].value == 0.9);
  CHECK(rb->energy_meter.empty());
  CHECK_FALSE(local_report_to_json(r).contains("energy"));  // a client that does not meter itself
  CHECK(rb->alignment.empty());
  CHECK_FALSE(local_report_to_json(r).contains("alignment"));  // one head, or a client of an older build
  nlohmann::json bad = local_report_to_json(r);
  bad["num_samples"] = 0;
  CHECK(local_report_from_json(bad).status().is_invalid_argument());

  r.energy_meter = "rapl";
  r.energy_joules = 12.5;
  auto metered = local_report_from_json(nlohmann::json::parse(local_report_to_json(r).dump()));
  REQUIRE(metered.ok());
  CHECK(metered->energy_meter == "rapl");
  CHECK(metered->energy_joules == 12.5);
  r.alignment = {0.25, -0.5};
  auto aligned = local_report_from_json(nlohmann::json::parse(local_report_to_json(r).dump()));
  REQUIRE(aligned.ok());
  CHECK(aligned->alignment == r.alignment);
  for (const auto& alignment : {nlohmann::json{0.5, 1.5}, nlohmann::json{-2}, nlohmann::json{"high"},
                                nlohmann::json(0.5), nlohmann::json{{"a", 0.1}}}) {
    bad = local_report_to_json(r);
    bad["alignment"] = alignment;
    INFO(alignment.dump());
    const auto refused = local_report_from_json(bad);
    REQUIRE(refused.status().is_invalid_argument());
    REQUIRE(refused.status().field_errors().size() == 1);
    CHECK(refused.status().field_errors()[0].field == "alignment");
  }
  for (const auto& energy : {nlohmann::json{{"meter", "rapl"}, {"joules", -1}},
                             nlohmann::json{{"meter", "rapl"}, {"joules", 2e9}},
                             nlohmann::json{{"meter", "guess"}, {"joules", 1}},
                             nlohmann::json{{"meter", "rapl"}, {"joules", "many"}},
                             nlohmann::json{{"joules", 1}}, nlohmann::json(5)}) {
    bad = local_report_to_json(r);
    bad["energy"] = energy;
    INFO(energy.dump());
    CHECK(local_report_from_json(bad).status().is_invalid_argument());
  }
}
