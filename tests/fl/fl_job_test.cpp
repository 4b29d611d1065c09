#include <catch2/catch.hpp>

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

JobConfig small_job(const std::string& task = "class") {
  JobConfig c;
  c.dataset = "synthetic";
  c.tasks = {task};
  c.rounds = 3;
  c.clients = 8;
  c.clients_per_round = 2;
  c.batch_size = 32;
  c.learning_rate = 0.05;
  c.seed = 7;
  return c;
}

}  // namespace

TEST_CASE("fl job: rounds train, evaluate and report", "[fl_job]") {
  auto job = make(small_job());
  const double before = job->evaluate().value()[0].value;
  std::vector<RoundReport> reports;
  while (!job->finished()) {
    auto r = job->run_round();
    REQUIRE(r.ok());
    reports.push_back(*r);
  }
  REQUIRE(reports.size() == 3);
  CHECK(reports[0].round == 1);
  CHECK(reports[2].round == 3);
  CHECK(reports[0].clients_reported == 2);
  CHECK(reports[0].samples == 1000);  // 4000 samples over 8 clients, 2 clients, 1 epoch
  CHECK(reports[1].learning_rate == Approx(0.05 * 0.99));
  REQUIRE(reports[2].eval.size() == 1);
  CHECK(reports[2].eval[0].metric == "accuracy");
  CHECK(reports[2].eval[0].value > before);
  CHECK(reports[2].eval[0].value > 0.5);  // ten classes: chance is 0.1
  CHECK(job->run_round().status().code() == Status::Code::kFailedPrecondition);
}

TEST_CASE("fl job: the same submission gives the same result, and a checkpoint resumes it exactly", "[fl_job]") {
  JobConfig c = small_job("segment");
  c.aggregator = "fedadam";
  c.partition = "dirichlet";
  c.dirichlet_alpha = 0.5;
  c.client_failure_rate = 0.3;
  auto straight = make(c);
  std::string after_one;
  RoundReport last;
  while (!straight->finished()) {
    auto r = straight->run_round();
    REQUIRE(r.ok());
    last = *r;
    if (straight->rounds_done() == 1) after_one = *straight->checkpoint();
  }

  auto resumed = make(c);
  REQUIRE(resumed->restore(after_one).is_ok());
  CHECK(resumed->rounds_done() == 1);
  RoundReport last2;
  while (!resumed->finished()) last2 = *resumed->run_round();
  CHECK(last2.eval[0].value == last.eval[0].value);
  CHECK(last2.eval[0].loss == last.eval[0].loss);
  CHECK(*resumed->export_model() == *straight->export_model());

  CHECK(resumed->restore("not a checkpoint").is_invalid_argument());
  auto other = make(small_job("class"));
  CHECK_FALSE(other->restore(after_one).is_ok());  // another model's shapes
}

TEST_CASE("fl job: too few clients fails the round after the attempts, stop undoes it", "[fl_job]") {
  JobConfig c = small_job();
  c.client_failure_rate = 0.95;
  c.min_clients = 2;
  c.max_round_attempts = 2;
  auto job = make(c);
  auto r = job->run_round();
  REQUIRE_FALSE(r.ok());
  CHECK(r.status().code() == Status::Code::kFailedPrecondition);
  CHECK(r.status().message().find("2 attempts") != std::string::npos);
  CHECK(job->rounds_done() == 0);

  auto ok = make(small_job());
  int batches = 0;
  auto stopped = ok->run_round([&] { return ++batches > 3; });
  REQUIRE(stopped.ok());
  CHECK(stopped->stopped);
  CHECK(ok->rounds_done() == 0);
}

TEST_CASE("fl job: the exported model loads back with LibTorch and scores the same", "[fl_job]") {
  auto job = make(small_job());
  REQUIRE(job->run_round().ok());
  const double accuracy = job->evaluate().value()[0].value;
  auto bytes = job->export_model();
  REQUIRE(bytes.ok());

  MultiTaskNet loaded(std::vector<TaskDef>{*find_task("class")});
  std::istringstream in(*bytes);
  torch::load(loaded, in);
  auto data = load_dataset("var", "synthetic");
  REQUIRE(data.ok());
  auto test = make_task_data(data->test, loaded->tasks());
  CHECK(evaluate(loaded, test)[0].metric == accuracy);
}

TEST_CASE("fl job: bad configurations and missing data sets are refused", "[fl_job]") {
  JobConfig c = small_job();
  c.clients_per_round = 9;
  CHECK(FlJob::create(c, {}).status().is_invalid_argument());
  c = small_job();
  c.aggregator = "fedmagic";
  CHECK(FlJob::create(c, {}).status().is_invalid_argument());
  c = small_job();
  c.dataset = "mnist";
  CHECK(FlJob::create(c, RuntimeOptions{"/nonexistent", "cpu", {}}).status().is_not_found());
}

TEST_CASE("fl job: anything thrown inside a round comes back as a kInternal Status, without a backtrace",
          "[fl_job]") {
  auto job = make(small_job());
  // should_stop runs inside the round, between batches: a throw there stands for one from LibTorch.
  auto torch_error = job->run_round([]() -> bool {
    TORCH_CHECK(false, "CUDA out of memory (injected)");
    return false;
  });
  REQUIRE_FALSE(torch_error.ok());
  CHECK(torch_error.status().code() == Status::Code::kInternal);
  CHECK_THAT(torch_error.status().message(), Catch::StartsWith("round 1: "));
  CHECK_THAT(torch_error.status().message(), Catch::Contains("CUDA out of memory (injected)"));
  CHECK_THAT(torch_error.status().message(), !Catch::Contains("frame #"));  // c10's C++ backtrace

  auto bad_alloc = job->run_round([]() -> bool { throw std::bad_alloc(); });
  CHECK(bad_alloc.status().code() == Status::Code::kInternal);
  auto odd = job->run_round([]() -> bool { throw 42; });
  CHECK_THAT(odd.status().message(), Catch::Contains("an unknown exception"));

  // The job still restores from a checkpoint and trains on.
  auto fresh = make(small_job());
  auto ckpt = fresh->checkpoint();
  REQUIRE(ckpt.ok());
  REQUIRE(job->restore(*ckpt).is_ok());
  CHECK(job->run_round().ok());
}

TEST_CASE("fl job: a round whose loss is not finite fails as a failed precondition that says so", "[fl_job]") {
  JobConfig c = small_job();
  c.learning_rate = 1e30;  // diverges at once
  auto job = make(c);
  auto r = job->run_round();
  REQUIRE_FALSE(r.ok());
  CHECK(r.status().code() == Status::Code::kFailedPrecondition);
  CHECK_THAT(r.status().message(), Catch::Contains("training diverged in round 1"));
  CHECK_THAT(r.status().message(), Catch::Contains("learning_rate"));
}

TEST_CASE("personalized epochs: ceil(E · n / n_max), at least 1, E for the largest client", "[fl_job]") {
  CHECK(personalized_epochs(5, 1000, 1000) == 5);
  CHECK(personalized_epochs(5, 500, 1000) == 3);  // 2.5 rounds up
  CHECK(personalized_epochs(5, 400, 1000) == 2);
  CHECK(personalized_epochs(5, 100, 1000) == 1);
  CHECK(personalized_epochs(5, 1, 1000) == 1);
  CHECK(personalized_epochs(5, 0, 1000) == 1);
  CHECK(personalized_epochs(1, 10, 1000) == 1);
  CHECK(personalized_epochs(4, 10, 0) == 4);  // no largest client known: E
}

TEST_CASE("fl job: personalized epochs train the small clients less, and resume exactly", "[fl_job]") {
  JobConfig fixed = small_job();
  fixed.partition = "dirichlet";
  fixed.dirichlet_alpha = 0.3;  // unequal clients
  fixed.local_epochs = 3;
  fixed.clients_per_round = 4;
  JobConfig personal = fixed;
  personal.personalized_epochs = true;
  auto a = make(fixed), b = make(personal);
  int64_t fixed_samples = 0, personal_samples = 0;
  std::string after_one;
  RoundReport last;
  while (!b->finished()) {
    auto ra = a->run_round(), rb = b->run_round();
    REQUIRE(ra.ok());
    REQUIRE(rb.ok());
    fixed_samples += ra->samples;
    personal_samples += rb->samples;
    last = *rb;
    if (b->rounds_done() == 1) after_one = *b->checkpoint();
  }
  // Same clients drawn (same seed): only the small ones' epochs differ.
  CHECK(personal_samples < fixed_samples);
  CHECK(personal_samples >= fixed_samples / 3);
  auto resumed = make(personal);
  REQUIRE(resumed->restore(after_one).is_ok());
  RoundReport again;
  while (!resumed->finished()) again = *resumed->run_round();
  CHECK(again.eval[0].loss == last.eval[0].loss);
  CHECK(*resumed->export_model() == *b->export_model());
  // A federation's job needs its client pool (tests/fl/federated_job_test.cpp).
  JobConfig fed = personal;
  fed.dataset.clear();
  fed.federation = "fed_1";
  CHECK(!FlJob::create(fed, RuntimeOptions{}).ok());
}

TEST_CASE("fl job: cosine weighting aggregates differently from sample weighting, and resumes exactly", "[fl_job]") {
  JobConfig samples = small_job();
  samples.partition = "dirichlet";
  samples.dirichlet_alpha = 0.3;
  JobConfig cosine = samples;
  cosine.weighting = "cosine";
  auto a = make(samples), b = make(cosine);
  std::string after_one;
  RoundReport ra, rb;
  while (!b->finished()) {
    ra = *a->run_round();
    rb = *b->run_round();
    if (b->rounds_done() == 1) after_one = *b->checkpoint();
  }
  CHECK(ra.samples == rb.samples);  // the same clients trained the same samples
  CHECK(ra.eval[0].loss != rb.eval[0].loss);
  auto resumed = make(cosine);
  REQUIRE(resumed->restore(after_one).is_ok());
  RoundReport again;
  while (!resumed->finished()) again = *resumed->run_round();
  CHECK(again.eval[0].loss == rb.eval[0].loss);
  JobConfig bad = samples;
  bad.weighting = "volume";
  auto refused = FlJob::create(bad, RuntimeOptions{});
  REQUIRE(!refused.ok());
  CHECK(names_field(refused, "weighting"));
}

TEST_CASE("fl job: cosine weights and personalised epochs train a merged model, its split child, and resume exactly",
          "[fl_job]") {
  JobConfig plain = small_job();
  plain.tasks = {"class", "parity"};
  plain.heads = {"act_a", "act_b"};
  plain.partition = "dirichlet";
  plain.dirichlet_alpha = 0.3;  // unequal clients
  plain.local_epochs = 3;
  for (const std::string option : {"cosine", "personalized"}) {
    INFO(option);
    JobConfig merged = plain;
    if (option == "cosine") merged.weighting = "cosine";
    else merged.personalized_epochs = true;
    auto reference = make(plain), job = make(merged);
    std::string after_one;
    RoundReport ref, last;
    while (!job->finished()) {
      ref = *reference->run_round();
      last = *job->run_round();
      if (job->rounds_done() == 1) after_one = *job->checkpoint();
    }
    REQUIRE(last.eval.size() == 2);
    CHECK(last.eval[1].loss != ref.eval[1].loss);  // the option changed both heads' training
    if (option == "personalized") CHECK(last.samples < ref.samples);
    else CHECK(last.samples == ref.samples);
    auto resumed = make(merged);
    REQUIRE(resumed->restore(after_one).is_ok());
    while (!resumed->finished()) REQUIRE(resumed->run_round().ok());
    for (const char* head : {"act_a", "act_b"}) CHECK(*resumed->export_model(head) == *job->export_model(head));
    // A split child keeps the option: its round differs from a plain child's from the same model.
    JobConfig child = merged, plain_child = plain;
    for (JobConfig* c : {&child, &plain_child}) {
      c->tasks = {"class"};
      c->heads = {"act_a"};
      c->rounds = 1;
      c->round_offset = job->rounds_done();
    }
    auto a = FlJob::derive(*job, child, RuntimeOptions{}), b = FlJob::derive(*job, plain_child, RuntimeOptions{});
    REQUIRE(a.ok());
    REQUIRE(b.ok());
    CHECK((*a)->run_round()->eval[0].loss != (*b)->run_round()->eval[0].loss);
  }
}
