// Task affinity (TAG lookahead) and the operations merging needs: derive, per-head export,
// lineage rounds.
#include <catch2/catch.hpp>

#include <numeric>
#include <sstream>

#include "fl/fl_job.h"
#include "fl/model.h"
#include "fl/training.h"
#include "tests/support/fl_job_support.h"
// Last: after the torch headers (Catch's CHECK, not glog's).
#include "tests/support/catch_over_torch.h"

using namespace mufl;
using namespace mufl::fl;

using mufl::fl::job_support::make;
using mufl::fl::job_support::names_field;

namespace {

std::vector<TaskDef> three_parity() { return {*find_task("parity"), *find_task("parity"), *find_task("parity")}; }

JobConfig job_config(std::vector<std::string> tasks, std::vector<std::string> heads) {
  JobConfig c;
  c.dataset = "synthetic";
  c.tasks = std::move(tasks);
  c.heads = std::move(heads);
  c.rounds = 2;
  c.clients = 8;
  c.clients_per_round = 2;
  c.seed = 11;
  return c;
}

}  // namespace

TEST_CASE("affinity: a copied head helps, a negated head conflicts (pinned sign pattern)", "[affinity]") {
  // Heads a and b are the same function; head c is a's negation (c's logits = −a's). For the
  // shared encoder, b's gradient equals a's and c's points the other way, so a step for a
  // lowers b's loss and raises c's: Z = [[·,+,−],[+,·,−],[−,−,·]].
  torch::manual_seed(5);
  MultiTaskNet net(three_parity(), std::vector<std::string>{"a", "b", "c"});
  {
    torch::NoGradGuard no_grad;
    auto params = net->named_parameters();
    for (const char* p : {"weight", "bias"}) {
      params[std::string("head_b.1.") + p].copy_(params[std::string("head_a.1.") + p]);
      params[std::string("head_c.1.") + p].copy_(-params[std::string("head_a.1.") + p]);
    }
  }
  auto splits = load_dataset("var", "synthetic");
  REQUIRE(splits.ok());
  const TaskData data = make_task_data(splits->train, three_parity());
  const auto batch = torch::arange(64, torch::kInt64);
  const auto x = data.images.index_select(0, batch);
  std::vector<torch::Tensor> targets, losses;
  const auto features = net->encode(x);
  for (size_t t = 0; t < 3; ++t) {
    targets.push_back(data.targets[t].index_select(0, batch));
    losses.push_back(task_loss(net->tasks()[t], net->head(t, features), targets.back()));
  }
  std::vector<std::vector<torch::Tensor>> grads;
  std::vector<double> base;
  for (size_t t = 0; t < 3; ++t) {
    grads.push_back(torch::autograd::grad({losses[t]}, net->encoder_parameters(), {}, true, false, true));
    base.push_back(losses[t].item<double>());
  }
  const Weights before = get_weights(net);
  std::vector<std::vector<double>> z(3, std::vector<double>(3, 0.0));
  affinity_lookahead(net, x, targets, grads, base, 0.05, z);
  CHECK(z[0][1] > 0);
  CHECK(z[1][0] > 0);
  CHECK(z[0][2] < 0);
  CHECK(z[2][0] < 0);
  CHECK(z[1][2] < 0);
  CHECK(z[2][1] < 0);
  CHECK(z[0][0] > 0);  // a step on a task's own loss lowers it
  // The lookahead restores the encoder bit for bit.
  const Weights after = get_weights(net);
  for (size_t i = 0; i < before.size(); ++i) CHECK(torch::equal(before[i], after[i]));
}

TEST_CASE("affinity: the lookahead does not change training, and is off with one head", "[affinity]") {
  auto splits = load_dataset("var", "synthetic");
  REQUIRE(splits.ok());
  const std::vector<TaskDef> tasks{*find_task("class"), *find_task("segment")};
  const TaskData data = make_task_data(splits->train, tasks);
  std::vector<int64_t> idx(256);
  std::iota(idx.begin(), idx.end(), 0);
  torch::manual_seed(3);
  MultiTaskNet plain(tasks), measured(tasks);
  set_weights(measured, get_weights(plain));
  LocalTrainOptions o;
  o.epochs = 2;
  auto r0 = train_local(plain, data, idx, o, 9);
  o.affinity_every = 3;
  auto r1 = train_local(measured, data, idx, o, 9);
  CHECK(r0.affinity.empty());
  REQUIRE(r1.affinity.size() == 2);
  CHECK(r1.lookaheads == 2 * 3);  // 8 batches per epoch: batches 0, 3 and 6
  CHECK(r1.affinity_seconds > 0);
  CHECK(r0.mean_loss == r1.mean_loss);
  const Weights w0 = get_weights(plain), w1 = get_weights(measured);
  for (size_t i = 0; i < w0.size(); ++i) CHECK(torch::equal(w0[i], w1[i]));

  MultiTaskNet single(std::vector<TaskDef>{tasks[0]});
  auto r2 = train_local(single, data, idx, o, 9);
  CHECK(r2.affinity.empty());
  CHECK(r2.lookaheads == 0);
}

TEST_CASE("affinity: two activities with the same task help each other on synthetic", "[affinity]") {
  JobConfig c = job_config({"class", "class"}, {"act_a", "act_b"});
  c.affinity_every = 4;
  auto job = make(c);
  double ab = 0, ba = 0;
  while (!job->finished()) {
    auto r = job->run_round();
    REQUIRE(r.ok());
    REQUIRE(r->affinity.size() == 2);
    CHECK(r->lookaheads > 0);
    REQUIRE(r->eval.size() == 2);
    CHECK(r->eval[0].head == "act_a");
    CHECK(r->eval[1].head == "act_b");
    ab += r->affinity[0][1];
    ba += r->affinity[1][0];
  }
  CHECK(ab > 0);
  CHECK(ba > 0);
}

TEST_CASE("fl job: head keys are checked", "[fl_job]") {
  CHECK(FlJob::create(job_config({"class", "class"}, {}), RuntimeOptions{}).status().code() ==
        Status::Code::kInvalidArgument);  // two heads named "class"
  CHECK(FlJob::create(job_config({"class"}, {"a.b"}), RuntimeOptions{}).status().code() ==
        Status::Code::kInvalidArgument);
  CHECK(FlJob::create(job_config({"class", "parity"}, {"x"}), RuntimeOptions{}).status().code() ==
        Status::Code::kInvalidArgument);
}

TEST_CASE("fl job: derive keeps the encoder and kept heads, seeds new heads by key", "[fl_job]") {
  auto group = make(job_config({"class", "parity", "segment"}, {"act_a", "act_b", "act_c"}));
  REQUIRE(group->run_round().ok());

  // Split off {act_a, act_c}, and take in a new head act_d.
  JobConfig child = job_config({"class", "segment", "magnitude"}, {"act_a", "act_c", "act_d"});
  child.round_offset = group->rounds_done();
  auto derived = FlJob::derive(*group, child, RuntimeOptions{});
  REQUIRE(derived.ok());
  auto& d = **derived;
  CHECK(d.rounds_done() == 0);
  CHECK(d.heads() == std::vector<std::string>{"act_a", "act_c", "act_d"});
  // The kept heads score as they did in the group: same encoder, same heads.
  const auto g = group->evaluate().value(), e = d.evaluate().value();
  CHECK(e[0].value == g[0].value);
  CHECK(e[0].loss == g[0].loss);
  CHECK(e[1].value == g[2].value);
  // A new head starts as it would in any job with that key and seed.
  auto fresh = make(job_config({"magnitude"}, {"act_d"}));
  auto derived_model = d.export_model("act_d"), fresh_model = fresh->export_model("act_d");
  REQUIRE(derived_model.ok());
  REQUIRE(fresh_model.ok());
  MultiTaskNet m1(std::vector<TaskDef>{*find_task("magnitude")}), m2(std::vector<TaskDef>{*find_task("magnitude")});
  std::istringstream in1(*derived_model), in2(*fresh_model);
  torch::load(m1, in1);
  torch::load(m2, in2);
  auto n1 = m1->named_parameters(), n2 = m2->named_parameters();
  CHECK(torch::equal(n1["head_magnitude.1.weight"], n2["head_magnitude.1.weight"]));
  CHECK_FALSE(torch::equal(n1["encoder.0.weight"], n2["encoder.0.weight"]));  // trained vs fresh encoder

  // Lineage rounds: the child's first round is the group's round 2, at round 2's learning rate.
  auto r = d.run_round();
  REQUIRE(r.ok());
  CHECK(r->round == 2);
  CHECK(r->learning_rate == Approx(0.05 * 0.99));

  // A head may not change its task; another data set may not be derived from.
  CHECK(FlJob::derive(*group, job_config({"parity"}, {"act_a"}), RuntimeOptions{}).status().code() ==
        Status::Code::kInvalidArgument);
  CHECK(group->export_model("nope").status().code() == Status::Code::kNotFound);
}

TEST_CASE("fl job: a head's exported model scores what the group reports for it", "[fl_job]") {
  auto group = make(job_config({"parity", "class"}, {"act_a", "act_b"}));
  auto r = group->run_round();
  REQUIRE(r.ok());
  auto bytes = group->export_model("act_b");
  REQUIRE(bytes.ok());
  MultiTaskNet net(std::vector<TaskDef>{*find_task("class")});
  std::istringstream in(*bytes);
  torch::load(net, in);
  auto splits = load_dataset("var", "synthetic");
  REQUIRE(splits.ok());
  const auto scores = evaluate(net, make_task_data(splits->test, {*find_task("class")}));
  CHECK(scores[0].metric == Approx(r->eval[1].value).epsilon(1e-6));
  CHECK(scores[0].loss == Approx(r->eval[1].loss).epsilon(1e-5));
}
