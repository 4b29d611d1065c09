// The head calibration pass (fl/head_calibration.h): head-only local training leaves the encoder
// and the other heads bit for bit, the pass averages the chosen heads over the round's clients,
// and FlJob runs it only where a member ends in a job of two or more heads.
#include <catch2/catch.hpp>

#include <numeric>

#include "fl/head_calibration.h"
#include "fl/datasets.h"
#include "fl/fl_job.h"
#include "fl/model.h"
#include "fl/training.h"
#include "tests/support/fl_job_support.h"
// Last: after the torch headers (Catch's CHECK, not glog's).
#include "tests/support/catch_over_torch.h"

using namespace mufl;
using namespace mufl::fl;
using mufl::fl::job_support::make;

namespace {

std::vector<TaskDef> defs(std::vector<std::string> names) {
  std::vector<TaskDef> out;
  for (const auto& n : names) out.push_back(*find_task(n));
  return out;
}

// Which parameters differ between two weight lists, by name prefix ("encoder", "head_segment", …).
std::set<std::string> changed_parts(const Weights& a, const Weights& b, const std::vector<std::string>& names) {
  std::set<std::string> out;
  for (size_t i = 0; i < names.size(); ++i)
    if (!torch::equal(a[i], b[i])) out.insert(names[i].substr(0, names[i].find('.')));
  return out;
}

const TaskData& synthetic_train(const std::vector<TaskDef>& tasks) {
  static auto splits = load_dataset("var", "synthetic");
  REQUIRE(splits.ok());
  static std::map<size_t, TaskData> cache;
  auto it = cache.find(tasks.size());
  if (it == cache.end()) it = cache.emplace(tasks.size(), make_task_data(splits->train, tasks)).first;
  return it->second;
}

JobConfig two_heads(int64_t rounds) {
  JobConfig c;
  c.dataset = "synthetic";
  c.tasks = {"parity", "segment"};
  c.heads = {"act_p", "act_s"};
  c.rounds = rounds;
  c.clients = 6;
  c.clients_per_round = 3;
  c.seed = 5;
  c.balance = TaskBalance::kCap;
  return c;
}

}  // namespace

TEST_CASE("head calibration: head-only training moves the chosen head and nothing else", "[calibration]") {
  const auto tasks = defs({"parity", "segment", "reconstruct"});
  const TaskData& data = synthetic_train(tasks);
  std::vector<int64_t> idx(256);
  std::iota(idx.begin(), idx.end(), 0);
  torch::manual_seed(3);
  MultiTaskNet net(tasks);
  const Weights start = get_weights(net);
  const auto names = weight_names(net);
  const double before = evaluate(net, data)[1].loss;

  LocalTrainOptions o;
  o.epochs = 3;
  o.head_only = {1};
  const LocalResult r = train_local(net, data, idx, o, /*seed=*/9);
  CHECK(r.samples == 3 * 256);
  CHECK(changed_parts(start, get_weights(net), names) == std::set<std::string>{"head_segment"});
  CHECK(evaluate(net, data)[1].loss < before);  // fitted to the encoder it reads

  // The same start and seed give the same head.
  MultiTaskNet again(tasks);
  set_weights(again, start);
  train_local(again, data, idx, o, 9);
  CHECK(changed_parts(get_weights(net), get_weights(again), names).empty());

  // ssl heads are never calibrated: their metric reads the encoder alone.
  MultiTaskNet ssl(defs({"ssl"}));
  LocalTrainOptions s;
  s.head_only = {0};
  CHECK_THROWS(train_local(ssl, make_task_data(load_dataset("var", "synthetic")->train, defs({"ssl"})), idx, s, 1));
}

TEST_CASE("head calibration: the pass averages the chosen head over the clients and is deterministic", "[calibration]") {
  const auto tasks = defs({"parity", "segment"});
  const TaskData& data = synthetic_train(tasks);
  fl::Partition partition = {{0, 1, 2, 3, 4, 5, 6, 7}, {}, {8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19}};
  std::vector<ClientTask> clients = {{0, 11}, {1, 12}, {2, 13}};  // client 1 holds nothing: skipped
  torch::manual_seed(4);
  MultiTaskNet global(tasks), worker(tasks);
  const Weights start = get_weights(global);
  const auto names = weight_names(global);
  LocalTrainOptions o;
  o.batch_size = 4;
  bool stopped = false;
  auto trained = calibrate_heads(global, worker, data, partition, clients, {0}, o, {}, stopped);
  REQUIRE(trained.ok());
  CHECK_FALSE(stopped);
  CHECK(*trained == 20);  // one epoch of clients 0 and 2
  CHECK(changed_parts(start, get_weights(global), names) == std::set<std::string>{"head_parity"});

  // The head is the sample-weighted mean of the two clients' (8 and 12 samples).
  const Weights after = get_weights(global);
  MultiTaskNet again(tasks);
  set_weights(again, start);
  REQUIRE(calibrate_heads(again, worker, data, partition, clients, {0}, o, {}, stopped).ok());
  CHECK(changed_parts(after, get_weights(again), names).empty());
  set_weights(again, start);
  REQUIRE(calibrate_heads(again, worker, data, partition, {{0, 11}}, {0}, o, {}, stopped).ok());
  const Weights only0 = get_weights(again);
  set_weights(again, start);
  REQUIRE(calibrate_heads(again, worker, data, partition, {{2, 13}}, {0}, o, {}, stopped).ok());
  const Weights only2 = get_weights(again);
  for (size_t i = 0; i < names.size(); ++i)
    if (names[i].rfind("head_parity", 0) == 0)
      CHECK(torch::allclose(after[i], (8 * only0[i] + 12 * only2[i]) / 20, 1e-5, 1e-6));

  // A stop changes nothing.
  set_weights(again, start);
  bool stop_seen = false;
  REQUIRE(calibrate_heads(again, worker, data, partition, clients, {0}, o, [] { return true; }, stop_seen).ok());
  CHECK(stop_seen);
  CHECK(changed_parts(start, get_weights(again), names).empty());
}

TEST_CASE("head calibration: a job calibrates the finishing member's head after the round, only with two or more heads", "[calibration]") {
  JobConfig off = two_heads(3), on = two_heads(3);
  on.head_calibration = true;
  auto plain = make(off);
  auto calibrated = make(on);
  REQUIRE(plain->run_round({}).ok());
  REQUIRE(calibrated->run_round({}).ok());
  CHECK(calibrated->rounds_done() == 1);
  calibrated->set_final_heads({"act_s", "act_nope"});  // an unknown key is ignored
  auto a = plain->run_round({});
  auto b = calibrated->run_round({});
  REQUIRE(a.ok());
  REQUIRE(b.ok());
  CHECK(a->calibration_samples == 0);
  CHECK(a->calibrated.empty());
  CHECK(b->calibration_samples > 0);
  CHECK(b->calibrated == std::vector<std::string>{"act_s"});
  // Before the pass the two jobs are the same: the encoder and the other head are left bit for
  // bit, so act_p's test loss is the same to the last bit; act_s's head was refitted.
  CHECK(a->train_loss == b->train_loss);
  CHECK(a->eval[0].loss == b->eval[0].loss);
  CHECK(a->eval[1].loss != b->eval[1].loss);

  // The job's own last round is every head's last.
  JobConfig short_job = two_heads(1);
  short_job.head_calibration = true;
  auto r1 = make(short_job)->run_round({});
  REQUIRE(r1.ok());
  CHECK(r1->calibrated == std::vector<std::string>{"act_p", "act_s"});

  // One head: what "alone" means, never calibrated.
  JobConfig one = two_heads(1);
  one.head_calibration = true;
  one.tasks = {"segment"};
  one.heads = {"act_s"};
  auto single = make(one);
  single->set_final_heads({"act_s"});
  auto r = single->run_round({});
  REQUIRE(r.ok());
  CHECK(r->calibration_samples == 0);
  CHECK(r->calibrated.empty());
}

TEST_CASE("head calibration: on every client, the pass trains each client's samples once, not only the round's", "[calibration]") {
  JobConfig round_clients = two_heads(1);
  round_clients.head_calibration = true;
  JobConfig every = round_clients;
  every.calibrate_every_client = true;
  auto a = make(round_clients)->run_round({});
  auto b = make(every)->run_round({});
  REQUIRE(a.ok());
  REQUIRE(b.ok());
  CHECK(a->train_loss == b->train_loss);  // the same round before the pass
  CHECK(b->calibrated == std::vector<std::string>{"act_p", "act_s"});
  // One local epoch of all six clients is what the pass trained.
  JobConfig all_train = two_heads(1);
  all_train.clients_per_round = 6;
  auto full = make(all_train)->run_round({});
  REQUIRE(full.ok());
  CHECK(b->calibration_samples == full->samples);
  CHECK(a->calibration_samples == a->samples);  // the round's three clients, one epoch each
  CHECK(a->calibration_samples < b->calibration_samples);
  CHECK(a->eval[1].loss != b->eval[1].loss);
}
