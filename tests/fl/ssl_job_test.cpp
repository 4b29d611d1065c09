// The self-supervised task `ssl` through FlJob: SimSiam training, the linear probe as its
// metric, merged ssl heads, exact resume, and the configurations it refuses.
#include <catch2/catch.hpp>

#include "fl/fl_job.h"
#include "tests/support/fl_job_support.h"
// Last: after the torch headers (Catch's CHECK, not glog's).
#include "tests/support/catch_over_torch.h"

using namespace mufl;
using namespace mufl::fl;

using mufl::fl::job_support::make;
using mufl::fl::job_support::names_field;

namespace {

JobConfig ssl_job() {
  JobConfig c;
  c.dataset = "synthetic";
  c.tasks = {"ssl"};
  c.rounds = 3;
  c.clients = 8;
  c.clients_per_round = 2;
  c.batch_size = 32;
  c.learning_rate = 0.05;
  c.seed = 11;
  return c;
}

}  // namespace

TEST_CASE("ssl job: SimSiam training lowers the test loss, the metric is the linear probe", "[ssl]") {
  auto job = make(ssl_job());
  const auto before = job->evaluate();
  REQUIRE(before.ok());
  REQUIRE(before->size() == 1);
  CHECK((*before)[0].metric == "linear_probe_accuracy");
  RoundReport last;
  while (!job->finished()) {
    auto r = job->run_round();
    REQUIRE(r.ok());
    last = *r;
  }
  REQUIRE(last.eval.size() == 1);
  CHECK(last.eval[0].task == "ssl");
  CHECK(last.eval[0].metric == "linear_probe_accuracy");
  CHECK(last.eval[0].loss < (*before)[0].loss - 0.05);  // SimSiam's loss lies in [-1, 1]
  CHECK(last.eval[0].loss >= -1.0);
  CHECK(last.eval[0].value > 0.3);  // ten classes: chance is 0.1
  CHECK(last.eval[0].value <= 1.0);
  CHECK(last.samples == 1000);  // images, not views: 4000 over 8 clients, 2 clients, 1 epoch
}

TEST_CASE("ssl job: a checkpoint resumes it exactly, views and probe included", "[ssl]") {
  JobConfig c = ssl_job();
  c.rounds = 2;
  c.partition = "dirichlet";
  c.dirichlet_alpha = 0.1;
  auto straight = make(c);
  std::string after_one;
  RoundReport last;
  while (!straight->finished()) {
    last = *straight->run_round();
    if (straight->rounds_done() == 1) after_one = *straight->checkpoint();
  }
  auto resumed = make(c);
  REQUIRE(resumed->restore(after_one).is_ok());
  RoundReport again;
  while (!resumed->finished()) again = *resumed->run_round();
  CHECK(again.eval[0].loss == last.eval[0].loss);
  CHECK(again.eval[0].value == last.eval[0].value);
  CHECK(*resumed->export_model() == *straight->export_model());
}

TEST_CASE("ssl job: two merged ssl heads train one encoder, with the affinity lookahead", "[ssl]") {
  JobConfig c = ssl_job();
  c.rounds = 2;
  c.tasks = {"ssl", "ssl"};
  c.heads = {"act_a", "act_b"};
  c.affinity_every = 4;
  auto job = make(c);
  const auto before = job->evaluate();
  REQUIRE(before.ok());
  RoundReport last;
  while (!job->finished()) {
    auto r = job->run_round();
    REQUIRE(r.ok());
    last = *r;
  }
  REQUIRE(last.eval.size() == 2);
  for (size_t i = 0; i < 2; ++i) {
    CHECK(last.eval[i].loss < (*before)[i].loss);
    CHECK(last.eval[i].metric == "linear_probe_accuracy");
  }
  CHECK(last.eval[0].value == last.eval[1].value);  // one encoder, one probe
  CHECK(last.eval[0].loss != last.eval[1].loss);    // two heads
  REQUIRE(last.affinity.size() == 2);
  CHECK(last.lookaheads > 0);
  CHECK(std::isfinite(last.affinity[0][1]));
  // Each member's model exports alone, as an ssl model.
  CHECK(job->export_model("act_b").ok());
}

TEST_CASE("ssl job: ssl with another task is refused naming tasks", "[ssl]") {
  JobConfig mixed = ssl_job();
  mixed.tasks = {"ssl", "class"};
  CHECK(names_field(FlJob::create(mixed, RuntimeOptions{}), "tasks"));
}
