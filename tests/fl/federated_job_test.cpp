// A job on a federation in one process: its ClientPool's clients are train_assignment calls on
// generated data directories, so the job's side (assignments, weights on the wire, decoding,
// aggregation, federated evaluation) runs without processes. The schema is 3×32×32: the model
// adapts its first convolution and its heads to it.
#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <fstream>
#include <random>

#include "fl/assignment.h"
#include "fl/assignment_options.h"
#include "fl/client_pool.h"
#include "fl/datasets.h"
#include "fl/fl_job.h"
#include "fl/model.h"
#include "tests/support/temp_dir.h"
// Last: after the torch headers.
#include "tests/support/catch_over_torch.h"

using namespace mufl;
using namespace mufl::fl;

namespace {

// `n` colour images of side `side` whose label is written in their red channel's brightness
// (learnable; `inverted`: label 9 is the darkest), as DIR/<part>.safetensors.
void write_colour_part(const std::string& path, int64_t n, int64_t side, uint32_t seed, bool inverted = false) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> noise(0.0f, 0.3f);
  protocol::NamedTensor images{"images", {n, 3, side, side}, {}}, labels{"labels", {n}, {}};
  for (int64_t i = 0; i < n; ++i) {
    const int label = static_cast<int>(rng() % 10);
    labels.values.push_back(static_cast<float>(label));
    for (int64_t c = 0; c < 3; ++c)
      for (int64_t p = 0; p < side * side; ++p)
        images.values.push_back(c == 0 ? 0.07f * static_cast<float>(inverted ? 9 - label : label) + noise(rng)
                                       : noise(rng));
  }
  auto bytes = protocol::encode_safetensors({{images, labels}, {}});
  REQUIRE(bytes.ok());
  std::ofstream(path, std::ios::binary) << *bytes;
}

// One data directory per entry of `train_sizes` under `root` (c0, c1, …): a training part of that
// many images from seed `seed` + i and, when `test_size` > 0, a held-out part from `seed` + 10 + i.
std::vector<std::string> client_dirs(const std::string& root, const std::vector<int64_t>& train_sizes, uint32_t seed,
                                     int64_t test_size = 0) {
  std::vector<std::string> dirs;
  for (size_t i = 0; i < train_sizes.size(); ++i) {
    const auto n = static_cast<uint32_t>(i);
    dirs.push_back(root + "/c" + std::to_string(i));
    std::filesystem::create_directories(dirs.back());
    write_colour_part(dirs.back() + "/train.safetensors", train_sizes[i], 32, seed + n);
    if (test_size > 0) write_colour_part(dirs.back() + "/test.safetensors", test_size, 32, seed + 10 + n);
  }
  return dirs;
}

// Clients that train in this process, one data directory each.
class InProcessPool final : public ClientPool {
 public:
  explicit InProcessPool(std::vector<std::string> dirs) : dirs_(std::move(dirs)) {}

  Result<std::vector<int64_t>> candidates(size_t, int64_t, const std::function<bool()>&) override {
    std::vector<int64_t> all;
    for (size_t i = 0; i < dirs_.size(); ++i) all.push_back(static_cast<int64_t>(i));
    return all;
  }
  Result<int64_t> largest_train_samples() override { return largest; }
  Result<std::vector<RemoteUpdate>> run(const RemoteDraw& draw, const std::function<bool()>&, bool& stopped) override {
    stopped = false;
    draws.push_back(draw);
    std::vector<RemoteUpdate> out;
    for (const auto& task : draw.tasks) {
      auto a = assignment_from_json(task.assignment);
      if (!a.ok()) return a.status();
      const std::string& dir = dirs_.at(static_cast<size_t>(task.client));
      auto update = train_assignment(*a, draw.global_weights, dir, "cpu", {}, {}, dir + "/.mufl-state");
      if (!update.ok()) return update.status();
      out.push_back({task.client, std::move(*update), {}});
    }
    return out;
  }

  std::vector<RemoteDraw> draws;
  int64_t largest = 0;  // what the clients "declared" at enrollment

 private:
  std::vector<std::string> dirs_;
};

// Jobs on any federation train through `pool`.
RuntimeOptions runtime_with(const std::shared_ptr<ClientPool>& pool) {
  RuntimeOptions runtime;
  runtime.client_pools = [pool](const std::string&) { return pool; };
  return runtime;
}

JobConfig colour_job() {
  JobConfig c;
  c.federation = "fed_test";
  c.name = "grp_test";
  c.schema = {3, 32, 32, 10};
  c.tasks = {"class", "segment"};
  c.heads = {"a", "b"};
  c.rounds = 3;
  c.clients = 3;
  c.clients_per_round = 3;
  c.batch_size = 16;
  c.seed = 4;
  return c;
}

}  // namespace

TEST_CASE("federated job: 3x32x32 clients train a merged model through the pool, evaluated by the clients") {
  mufl::testing::TempDir dir;
  const auto dirs = client_dirs(dir.path(), {96, 96, 96}, 10, 32);
  auto pool = std::make_shared<InProcessPool>(dirs);
  RuntimeOptions runtime;
  runtime.client_pools = [&](const std::string& federation) -> std::shared_ptr<ClientPool> {
    return federation == "fed_test" ? pool : nullptr;
  };
  auto job = FlJob::create(colour_job(), runtime);
  REQUIRE(job.ok());

  std::vector<RoundReport> reports;
  for (int r = 0; r < 3; ++r) {
    auto report = (*job)->run_round();
    REQUIRE(report.ok());
    reports.push_back(*report);
  }
  for (const auto& r : reports) {
    CHECK(r.clients_reported == 3);
    REQUIRE(r.eval.size() == 2);  // both heads, from the clients' held-out parts
    CHECK(r.eval[0].metric == "accuracy");
    CHECK(r.eval[1].metric == "iou");
  }
  CHECK(reports[2].train_loss < reports[0].train_loss);
  // The clients' own test loss of the class head falls too (the label is in the red channel).
  CHECK(reports[2].eval[0].loss < reports[0].eval[0].loss);

  // One assignment per client and round, carrying both heads and the schema.
  REQUIRE(pool->draws.size() == 3);
  for (size_t r = 0; r < pool->draws.size(); ++r) {
    CHECK(pool->draws[r].job == "grp_test");
    CHECK(pool->draws[r].round == static_cast<int64_t>(r + 1));
    REQUIRE(pool->draws[r].tasks.size() == 3);
    const auto a = assignment_from_json(pool->draws[r].tasks[0].assignment);
    REQUIRE(a.ok());
    CHECK(a->heads == std::vector<std::string>{"a", "b"});
    CHECK((a->channels == 3 && a->height == 32 && a->width == 32 && a->labels == 10));
  }
  // The first convolution takes three channels; the exported head loads as a 3x32x32 model.
  auto model = (*job)->export_model("a");
  REQUIRE(model.ok());
  MultiTaskNet net(std::vector<TaskDef>{*find_task("class")}, std::vector<std::string>{}, InputShape{3, 32, 32});
  std::istringstream in(*model);
  torch::load(net, in);
  CHECK(net->parameters()[0].size(1) == 3);
  CHECK(net->forward(torch::zeros({2, 3, 32, 32}))[0].sizes() == torch::IntArrayRef{2, 10});
  // A federation job has no test set of its own.
  CHECK_FALSE((*job)->evaluate().ok());
}

TEST_CASE("federated job: a dense task on sides that are not multiples of 4, or no pool, is refused with the reason") {
  RuntimeOptions runtime;
  auto pool = std::make_shared<InProcessPool>(std::vector<std::string>{});
  runtime.client_pools = [&](const std::string&) -> std::shared_ptr<ClientPool> { return pool; };
  JobConfig c = colour_job();
  c.schema = {3, 30, 30, 10};
  auto odd = FlJob::create(c, runtime);
  REQUIRE_FALSE(odd.ok());
  CHECK_THAT(odd.status().to_string(), Catch::Contains("multiples of 4"));
  c.tasks = {"class", "parity"};  // label tasks take any side
  CHECK(FlJob::create(c, runtime).ok());

  auto none = FlJob::create(colour_job(), RuntimeOptions{});
  REQUIRE_FALSE(none.ok());
  CHECK_THAT(none.status().to_string(), Catch::Contains("no clients for federation fed_test"));
}

TEST_CASE("federated job: with fedema each client keeps its model and starts from its EMA with the global one") {
  mufl::testing::TempDir dir;
  const auto dirs = client_dirs(dir.path(), {64, 64, 64}, 30);
  auto pool = std::make_shared<InProcessPool>(dirs);
  const RuntimeOptions runtime = runtime_with(pool);
  JobConfig avg = colour_job();
  avg.tasks = {"class"};
  avg.heads = {"a"};
  avg.rounds = 4;
  JobConfig ema = avg;
  ema.local_update = "fedema";
  ema.ema_lambda = 0.5;
  auto a = FlJob::create(avg, runtime), b = FlJob::create(ema, runtime);
  REQUIRE(a.ok());
  REQUIRE(b.ok());
  std::vector<std::string> models_a, models_b;
  for (int r = 0; r < 4; ++r) {
    REQUIRE((*a)->run_round().ok());
    REQUIRE((*b)->run_round().ok());
    models_a.push_back(*(*a)->export_model());
    models_b.push_back(*(*b)->export_model());
  }
  CHECK(models_a[0] == models_b[0]);  // no kept models in round 1: FedAvg's round
  CHECK(models_a[3] != models_b[3]);
  // The assignment says so, and each client keeps its files under its own folder, per job.
  const auto last = assignment_from_json(pool->draws.back().tasks[0].assignment);
  REQUIRE(last.ok());
  CHECK(last->local_update == "fedema");
  CHECK(last->ema_lambda == 0.5);
  CHECK(last->job == "grp_test");
  CHECK(last->round == 4);
  for (const auto& d : dirs) {
    // Round 4 released what mufld's trusted checkpoints (rounds 2 and 3) cannot need.
    CHECK(!std::filesystem::exists(d + "/.mufl-state/grp_test/c0.r1.state"));
    for (int r = 2; r <= 4; ++r)
      CHECK(std::filesystem::exists(d + "/.mufl-state/grp_test/c0.r" + std::to_string(r) + ".state"));
  }
}

TEST_CASE("federated job: a fedema assignment names a plain job and a round, and needs a folder to keep models in") {
  Assignment a;
  a.tasks = {"class"};
  a.heads = {"a"};
  a.local_update = "fedema";
  a.job = "grp_1";
  a.round = 2;
  auto back = assignment_from_json(assignment_to_json(a));
  REQUIRE(back.ok());
  CHECK(back->job == "grp_1");
  CHECK(back->round == 2);
  CHECK(!assignment_to_json(Assignment{}).contains("fedema"));  // FedAvg's as before
  for (const char* job : {"..", ".hidden", "a/b", ""}) {
    a.job = job;
    CHECK(!assignment_from_json(assignment_to_json(a)).ok());
  }
  a.job = "grp_1";
  a.round = 0;
  CHECK(!assignment_from_json(assignment_to_json(a)).ok());
  a.round = 2;
  auto refused = train_assignment(a, "", "/nonexistent", "cpu");
  REQUIRE(!refused.ok());
  const Status why = refused.status();
  REQUIRE(!why.field_errors().empty());
  CHECK(why.field_errors()[0].field == "local_update");
}

TEST_CASE("federated job: personalised epochs scale each client's epochs by its samples against the largest client's") {
  mufl::testing::TempDir dir;
  const auto dirs = client_dirs(dir.path(), {96, 48, 24}, 40);
  auto pool = std::make_shared<InProcessPool>(dirs);
  const RuntimeOptions runtime = runtime_with(pool);
  JobConfig c = colour_job();
  c.tasks = {"class"};
  c.heads = {"a"};
  c.rounds = 2;
  c.local_epochs = 4;
  c.personalized_epochs = true;
  auto job = FlJob::create(c, runtime);
  REQUIRE(job.ok());

  pool->largest = 96;  // the largest client trains 4 epochs, the others ceil(4 * samples / 96)
  auto personal = (*job)->run_round();
  REQUIRE(personal.ok());
  CHECK(personal->samples == 96 * 4 + 48 * 2 + 24 * 1);
  const auto a = assignment_from_json(pool->draws.back().tasks[0].assignment);
  REQUIRE(a.ok());
  CHECK(a->epochs == 4);
  CHECK(a->personalize_max_samples == 96);

  pool->largest = 0;  // no client declared its samples: every client trains every epoch
  auto full = (*job)->run_round();
  REQUIRE(full.ok());
  CHECK(full->samples == (96 + 48 + 24) * 4);
  CHECK(!assignment_to_json(*assignment_from_json(pool->draws.back().tasks[0].assignment))["local"].contains(
      "personalize_max_samples"));
}

TEST_CASE("federated job: an assignment's personalize_max_samples round-trips and a negative one is refused") {
  Assignment a;
  a.tasks = {"class"};
  a.heads = {"a"};
  a.personalize_max_samples = 600;
  auto back = assignment_from_json(assignment_to_json(a));
  REQUIRE(back.ok());
  CHECK(back->personalize_max_samples == 600);
  CHECK(local_options(*back).personalize_max_samples == 600);
  auto j = assignment_to_json(a);
  j["local"]["personalize_max_samples"] = -1;
  auto refused = assignment_from_json(j);
  REQUIRE(!refused.ok());
  CHECK(refused.status().field_errors()[0].field == "personalize_max_samples");
  j["local"]["personalize_max_samples"] = "many";
  CHECK(!assignment_from_json(j).ok());
}

TEST_CASE("federated job: an assignment's encoder_step round-trips, is left out at 1, and one out of range is refused") {
  Assignment a;
  a.tasks = {"class"};
  a.heads = {"a"};
  CHECK(!assignment_to_json(a)["local"].contains("encoder_step"));  // full steps: as before
  a.encoder_step = 0.1;
  auto back = assignment_from_json(assignment_to_json(a));
  REQUIRE(back.ok());
  CHECK(back->encoder_step == 0.1);
  CHECK(local_options(*back).encoder_step == 0.1);
  LocalTrainOptions o;
  o.encoder_step = 0.25;
  CHECK(make_assignment({"class"}, {"a"}, o, 1).encoder_step == 0.25);
  for (const nlohmann::json& bad : {nlohmann::json(0.0), nlohmann::json(1.5), nlohmann::json(-0.1), nlohmann::json("half")}) {
    auto j = assignment_to_json(a);
    j["local"]["encoder_step"] = bad;
    auto refused = assignment_from_json(j);
    REQUIRE(!refused.ok());
    CHECK(refused.status().field_errors()[0].field == "encoder_step");
  }
}

TEST_CASE("federated job: ssl trains on the clients, with fedema, and each client scores a linear probe on its own data") {
  mufl::testing::TempDir dir;
  const auto dirs = client_dirs(dir.path(), {64, 64, 64}, 50, 32);
  auto pool = std::make_shared<InProcessPool>(dirs);
  const RuntimeOptions runtime = runtime_with(pool);
  JobConfig c = colour_job();
  c.tasks = {"ssl"};
  c.heads = {"a"};
  c.rounds = 2;
  c.local_update = "fedema";
  auto job = FlJob::create(c, runtime);
  REQUIRE(job.ok());
  std::vector<RoundReport> reports;
  for (int r = 0; r < 2; ++r) {
    auto report = (*job)->run_round();
    REQUIRE(report.ok());
    reports.push_back(*report);
  }
  for (const auto& r : reports) {
    CHECK(r.clients_reported == 3);
    REQUIRE(r.eval.size() == 1);
    CHECK(r.eval[0].task == "ssl");
    CHECK(r.eval[0].metric == "linear_probe_accuracy");
    // The label is in the red channel's brightness: a probe on any encoder beats chance (0.1).
    CHECK(r.eval[0].value > 0.2);
    CHECK(r.eval[0].value <= 1.0);
    CHECK(std::isfinite(r.eval[0].loss));
  }
  const auto a = assignment_from_json(pool->draws.back().tasks[0].assignment);
  REQUIRE(a.ok());
  CHECK(a->tasks == std::vector<std::string>{"ssl"});
  CHECK(a->local_update == "fedema");
  for (const auto& d : dirs) CHECK(std::filesystem::exists(d + "/.mufl-state/grp_test/c0.r2.state"));
}

TEST_CASE("federated job: client clustering on a federation trains a draw per cluster, evaluates by the clients, and resumes exactly") {
  mufl::testing::TempDir dir;
  // Two kinds of clients: the label written in the red channel's brightness (0 and 1), or in
  // its darkness (2 and 3): their updates pull the model apart.
  std::vector<std::string> dirs;
  for (int i = 0; i < 4; ++i) {
    dirs.push_back(dir.path() + "/c" + std::to_string(i));
    std::filesystem::create_directories(dirs.back());
    const bool inverted = i >= 2;
    write_colour_part(dirs.back() + "/train.safetensors", 64, 32, 70 + i, inverted);
    write_colour_part(dirs.back() + "/test.safetensors", 16, 32, 80 + i, inverted);
  }
  auto pool = std::make_shared<InProcessPool>(dirs);
  const RuntimeOptions runtime = runtime_with(pool);
  JobConfig c = colour_job();
  c.tasks = {"class"};
  c.heads = {"a"};
  c.rounds = 3;
  c.clients = 4;
  c.clients_per_round = 4;
  c.client_clusters = 2;
  c.cluster_round = 1;
  auto job = FlJob::create(c, runtime);
  REQUIRE(job.ok());

  auto first = (*job)->run_round();  // every client trains from the global model, then they cluster
  REQUIRE(first.ok());
  REQUIRE(pool->draws.size() == 1);
  CHECK(pool->draws[0].tasks.size() == 4);
  // Which clients go together is the clustering rule's (fl/client_clustering.h, its own tests);
  // here: two clusters that share the four clients out, weighed by what their updates reported.
  REQUIRE(first->clusters.size() == 2);
  std::vector<int64_t> everyone;
  for (const auto& cl : first->clusters) {
    REQUIRE(!cl.clients.empty());
    everyone.insert(everyone.end(), cl.clients.begin(), cl.clients.end());
    CHECK(cl.samples == 64 * static_cast<int64_t>(cl.clients.size()));
    CHECK(cl.clients_reported == static_cast<int64_t>(cl.clients.size()));
    REQUIRE(cl.eval.size() == 1);  // from its clients' own held-out parts
  }
  std::sort(everyone.begin(), everyone.end());
  CHECK(everyone == std::vector<int64_t>{0, 1, 2, 3});
  REQUIRE(first->eval.size() == 1);
  const std::string after_first = *(*job)->checkpoint();

  auto second = (*job)->run_round();
  REQUIRE(second.ok());
  // One draw per cluster, each handing its members its own model.
  REQUIRE(pool->draws.size() == 3);
  for (size_t d = 1; d < 3; ++d) {
    CHECK(pool->draws[d].round == 2);
    CHECK(pool->draws[d].part == static_cast<int>(d - 1));
    std::vector<int64_t> drawn;
    for (const auto& t : pool->draws[d].tasks) drawn.push_back(t.client);
    CHECK(drawn == first->clusters[d - 1].clients);
  }
  CHECK(pool->draws[1].global_weights != pool->draws[2].global_weights);
  for (const auto& cl : second->clusters) CHECK(cl.clients_reported == static_cast<int64_t>(cl.clients.size()));

  // A restart after round 1 hands out the same two models again, bit for bit.
  auto resumed = FlJob::create(c, runtime);
  REQUIRE(resumed.ok());
  REQUIRE((*resumed)->restore(after_first).is_ok());
  REQUIRE((*resumed)->run_round().ok());
  REQUIRE(pool->draws.size() == 5);
  CHECK(pool->draws[3].global_weights == pool->draws[1].global_weights);
  CHECK(pool->draws[4].global_weights == pool->draws[2].global_weights);
  CHECK(*(*resumed)->checkpoint() == *(*job)->checkpoint());
}
