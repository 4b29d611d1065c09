// FedEMA in a simulated FlJob: the clients' kept models on the disk, an exact resume from any
// round's checkpoint, and a group split (fl/fedema_clients.h, fl/client_states.h).
#include <catch2/catch.hpp>

#include <filesystem>
#include <map>

#include "core/file_io.h"
#include "fl/client_states.h"
#include "fl/fl_job.h"
#include "tests/support/temp_dir.h"
#include "tests/support/fl_job_support.h"
// Last: after the torch headers (Catch's CHECK, not glog's).
#include "tests/support/catch_over_torch.h"

using namespace mufl;
using namespace mufl::fl;

using mufl::fl::job_support::make;
using mufl::fl::job_support::names_field;

namespace {

// Two heads (a merged group's model), few clients so that each trains in several rounds.
JobConfig ema_job(const std::string& dir) {
  JobConfig c;
  c.dataset = "synthetic";
  c.tasks = {"class", "parity"};
  c.heads = {"act_a", "act_b"};
  c.rounds = 4;
  c.clients = 4;
  c.clients_per_round = 3;
  c.partition = "dirichlet";
  c.dirichlet_alpha = 0.3;
  c.seed = 11;
  c.local_update = "fedema";
  c.client_state_dir = dir;
  return c;
}

// Runs `job` to its end; checkpoints[r] is the one after round r.
std::map<int64_t, std::string> run_all(FlJob& job) {
  std::map<int64_t, std::string> checkpoints;
  while (!job.finished()) {
    auto r = job.run_round();
    REQUIRE(r.ok());
    checkpoints[job.rounds_done()] = *job.checkpoint();
  }
  return checkpoints;
}

}  // namespace

TEST_CASE("fedema job: round 1 is FedAvg's, later rounds differ, and every client keeps its model", "[fedema]") {
  testing::TempDir dir;
  JobConfig ema = ema_job(dir.file("clients"));
  JobConfig avg = ema;
  avg.local_update = "fedavg";
  avg.client_state_dir.clear();
  auto a = make(avg), b = make(ema);
  REQUIRE(a->run_round().ok());
  REQUIRE(b->run_round().ok());
  CHECK(*a->export_model() == *b->export_model());  // no kept models yet: every start is w_g
  RoundReport ra, rb;
  while (!b->finished()) {
    ra = *a->run_round();
    rb = *b->run_round();
  }
  CHECK(ra.samples == rb.samples);  // the same clients trained
  CHECK(ra.eval[0].loss != rb.eval[0].loss);
  ClientStates states(dir.file("clients"));
  REQUIRE(states.open().is_ok());
  CHECK(states.files() == 12);  // 3 clients in each of 4 rounds, nothing released
}

TEST_CASE("fedema job: a restore ignores the state files of rounds after its checkpoint and resumes exactly",
          "[fedema]") {
  namespace fs = std::filesystem;
  testing::TempDir dir;
  auto straight = make(ema_job(dir.file("run")));
  const auto checkpoints = run_all(*straight);
  // mufld died in round 3 after its clients wrote their states: copy the files and make every
  // state of round 3 or later unreadable. A resume from round 2 must neither read nor need them.
  fs::copy(dir.file("run"), dir.file("crashed"), fs::copy_options::recursive);
  int spoiled = 0;
  for (const auto& e : fs::directory_iterator(dir.file("crashed"))) {
    int64_t client = 0, round = 0;
    if (parse_state_name(e.path().filename().string(), client, round) && round >= 3) {
      REQUIRE(write_file_durably(e.path().string(), "half a state").is_ok());
      ++spoiled;
    }
  }
  CHECK(spoiled == 6);
  auto resumed = make(ema_job(dir.file("crashed")));
  REQUIRE(resumed->restore(checkpoints.at(2)).is_ok());
  RoundReport last;
  while (!resumed->finished()) last = *resumed->run_round();
  CHECK(*resumed->export_model() == *straight->export_model());
  CHECK(read_file(dir.file("crashed/c0.r4.state")).value() == read_file(dir.file("run/c0.r4.state")).value());
}

TEST_CASE("fedema job: release keeps what the trusted checkpoints need, and a fallback redoes a round exactly",
          "[fedema]") {
  testing::TempDir dir;
  auto job = make(ema_job(dir.file("clients")));
  const auto checkpoints = run_all(*job);
  // The executor trusts the checkpoints of rounds 3 and 4.
  REQUIRE(job->release_client_states(3).is_ok());
  ClientStates states(dir.file("clients"));
  REQUIRE(states.open().is_ok());
  CHECK(states.files() <= 8);  // at most two per client
  CHECK(states.files() < 12);
  auto again = make(ema_job(dir.file("clients")));
  REQUIRE(again->restore(checkpoints.at(3)).is_ok());
  REQUIRE(again->run_round().ok());
  CHECK(*again->export_model() == *job->export_model());
  // A job that has not trained yet (just restored) releases what is on the disk.
  REQUIRE(make(ema_job(dir.file("clients")))->release_client_states(4).is_ok());
  ClientStates left(dir.file("clients"));
  REQUIRE(left.open().is_ok());
  CHECK(left.files() <= 4);  // one per client
  CHECK(left.files() > 0);
}

TEST_CASE("fedema job: a split child starts without kept models, as FedAvg would", "[fedema]") {
  testing::TempDir dir;
  auto parent = make(ema_job(dir.file("parent")));
  run_all(*parent);
  JobConfig child = ema_job(dir.file("child"));
  child.tasks = {"class"};
  child.heads = {"act_a"};
  child.rounds = 1;
  child.round_offset = 4;
  JobConfig child_avg = child;
  child_avg.local_update = "fedavg";
  child_avg.client_state_dir.clear();
  auto ema = FlJob::derive(*parent, child, RuntimeOptions{});
  auto avg = FlJob::derive(*parent, child_avg, RuntimeOptions{});
  REQUIRE(ema.ok());
  REQUIRE(avg.ok());
  REQUIRE((*ema)->run_round().ok());
  REQUIRE((*avg)->run_round().ok());
  CHECK(*(*ema)->export_model() == *(*avg)->export_model());
  ClientStates kept(dir.file("child"));
  REQUIRE(kept.open().is_ok());
  CHECK(kept.files() == 3);  // and from now on its clients keep their models there
}

TEST_CASE("fedema job: a bad configuration names its field", "[fedema]") {
  JobConfig no_dir = ema_job("");
  CHECK(names_field(FlJob::create(no_dir, RuntimeOptions{}), "client_state_dir"));
  JobConfig bad = ema_job("/tmp/unused");
  bad.local_update = "fedprox";
  CHECK(names_field(FlJob::create(bad, RuntimeOptions{}), "local_update"));
  JobConfig negative = ema_job("/tmp/unused");
  negative.ema_lambda = -1;
  CHECK(names_field(FlJob::create(negative, RuntimeOptions{}), "ema_lambda"));
}
