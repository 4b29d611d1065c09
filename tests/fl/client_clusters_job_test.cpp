// Client clustering in a simulated FlJob (JobConfig::client_clusters): the clustering round,
// the clusters' own models afterwards, their evaluation, the refusals, and an exact resume from
// the checkpoint of any round.
#include <catch2/catch.hpp>

#include <map>
#include <set>

#include "fl/fl_job.h"
#include "tests/support/fl_job_support.h"
// Last: after the torch headers (Catch's CHECK, not glog's).
#include "tests/support/catch_over_torch.h"

using namespace mufl;
using namespace mufl::fl;

using mufl::fl::job_support::make;
using mufl::fl::job_support::names_field;

namespace {

// Few clients on a skewed partition, clustered in round 2 of 4.
JobConfig clustered_job() {
  JobConfig c;
  c.dataset = "synthetic";
  c.tasks = {"class"};
  c.rounds = 4;
  c.clients = 6;
  c.clients_per_round = 3;
  c.partition = "dirichlet";
  c.dirichlet_alpha = 0.1;
  c.seed = 5;
  c.client_clusters = 2;
  c.cluster_round = 2;
  return c;
}

// Runs `job` to its end: the reports and checkpoints[r], the one after round r.
struct Run {
  std::vector<RoundReport> reports;
  std::map<int64_t, std::string> checkpoints;
};
Run run_all(FlJob& job) {
  Run run;
  while (!job.finished()) {
    auto r = job.run_round();
    REQUIRE(r.ok());
    run.reports.push_back(*r);
    run.checkpoints[job.rounds_done()] = *job.checkpoint();
  }
  return run;
}

}  // namespace

TEST_CASE("client clusters: every client trains in the clustering round, and each cluster has its own model") {
  auto job = make(clustered_job());
  const Run run = run_all(*job);
  CHECK(run.reports[0].clusters.empty());  // round 1 is FedAvg's
  CHECK(run.reports[0].clients_sampled == 3);
  const RoundReport& clustering = run.reports[1];
  CHECK(clustering.clients_sampled == 6);  // all of them
  CHECK(clustering.clients_reported == 6);
  REQUIRE(clustering.clusters.size() == 2);
  std::set<int64_t> everyone;
  int64_t samples = 0;
  for (const auto& c : clustering.clusters) {
    CHECK_FALSE(c.clients.empty());
    CHECK(c.clients_reported == static_cast<int64_t>(c.clients.size()));
    everyone.insert(c.clients.begin(), c.clients.end());
    samples += c.samples;
  }
  CHECK(everyone.size() == 6);  // each client in exactly one cluster
  CHECK(clustering.clusters[0].clients[0] == 0);  // numbered by their smallest client
  // The round's metric is the clusters', weighted by their samples.
  double accuracy = 0;
  for (const auto& c : clustering.clusters)
    accuracy += static_cast<double>(c.samples) / static_cast<double>(samples) * c.eval[0].value;
  CHECK(clustering.eval[0].value == Approx(accuracy).epsilon(1e-12));
  CHECK(clustering.clusters[0].eval[0].value != clustering.clusters[1].eval[0].value);  // two models
  // Later rounds sample as before, each client in its cluster, and keep the clusters.
  for (size_t r = 2; r < run.reports.size(); ++r) {
    const RoundReport& later = run.reports[r];
    CHECK(later.clients_sampled == 3);
    REQUIRE(later.clusters.size() == 2);
    CHECK(later.clusters[0].clients == clustering.clusters[0].clients);
    CHECK(later.clusters[0].clients_reported + later.clusters[1].clients_reported == later.clients_reported);
  }
  // evaluate() is what the last round reported.
  auto eval = job->evaluate();
  REQUIRE(eval.ok());
  CHECK((*eval)[0].value == run.reports.back().eval[0].value);
}

TEST_CASE("client clusters: a cluster none of whose clients trained keeps its model") {
  JobConfig c = clustered_job();
  c.cluster_round = 1;
  c.clients_per_round = 1;  // after round 1, one cluster trains per round and the other waits
  c.rounds = 5;
  auto job = make(c);
  const Run run = run_all(*job);
  int idle = 0;
  for (size_t r = 1; r < run.reports.size(); ++r) {
    REQUIRE(run.reports[r].clusters.size() == 2);
    for (size_t k = 0; k < 2; ++k) {
      const ClusterReport& now = run.reports[r].clusters[k];
      const ClusterReport& before = run.reports[r - 1].clusters[k];
      if (now.clients_reported > 0) {
        CHECK(now.eval[0].loss != before.eval[0].loss);
        continue;
      }
      ++idle;
      CHECK(now.eval[0].loss == before.eval[0].loss);  // the same model, evaluated again
    }
  }
  CHECK(idle == 4);  // one in each of rounds 2 to 5
}

TEST_CASE("client clusters: a resume from any round's checkpoint gives the unbroken run's reports exactly") {
  auto straight = make(clustered_job());
  const Run run = run_all(*straight);
  for (int64_t from = 1; from < 4; ++from) {
    INFO("resumed after round " << from);
    auto resumed = make(clustered_job());
    REQUIRE(resumed->restore(run.checkpoints.at(from)).is_ok());
    const Run rest = run_all(*resumed);
    REQUIRE(rest.reports.size() == static_cast<size_t>(4 - from));
    for (size_t i = 0; i < rest.reports.size(); ++i) {
      const RoundReport& want = run.reports[static_cast<size_t>(from) + i];
      const RoundReport& got = rest.reports[i];
      CHECK(got.eval[0].loss == want.eval[0].loss);
      CHECK(got.eval[0].value == want.eval[0].value);
      CHECK(got.train_loss == want.train_loss);
      REQUIRE(got.clusters.size() == want.clusters.size());
      for (size_t c = 0; c < got.clusters.size(); ++c) {
        CHECK(got.clusters[c].clients == want.clusters[c].clients);
        CHECK(got.clusters[c].eval[0].loss == want.clusters[c].eval[0].loss);
      }
    }
    CHECK(*resumed->export_model() == *straight->export_model());
    CHECK(*resumed->checkpoint() == run.checkpoints.at(4));
  }
}

TEST_CASE("client clusters: a checkpoint with clusters does not restore into a job for fewer clients") {
  auto job = make(clustered_job());
  run_all(*job);
  JobConfig fewer = clustered_job();
  fewer.clients = 5;
  auto other = make(fewer);
  const Status s = other->restore(*job->checkpoint());
  CHECK(s.code() == Status::Code::kInvalidArgument);
  CHECK(s.message().find("clusters") != std::string::npos);
}

TEST_CASE("client clusters: bad settings are refused naming the field") {
  JobConfig c = clustered_job();
  c.client_clusters = 0;
  CHECK(names_field(FlJob::create(c, RuntimeOptions{}), "client_clusters"));
  c.client_clusters = 17;
  CHECK(names_field(FlJob::create(c, RuntimeOptions{}), "client_clusters"));
  c = clustered_job();
  c.cluster_round = 0;
  CHECK(names_field(FlJob::create(c, RuntimeOptions{}), "cluster_round"));
  c = clustered_job();
  c.tasks = {"ssl"};
  CHECK(names_field(FlJob::create(c, RuntimeOptions{}), "client_clusters"));
  // On a federation clustering is allowed (tests/fl/federated_job_test.cpp); a job there without
  // a pool is refused for that, not for its clusters.
  c = clustered_job();
  c.dataset.clear();
  c.federation = "fed_x";
  c.name = "grp_x";
  CHECK(names_field(FlJob::create(c, RuntimeOptions{}), "federation"));
  CHECK(!names_field(FlJob::create(c, RuntimeOptions{}), "client_clusters"));
}

TEST_CASE("client clusters: per-client evaluation is the clusters' once clustered, near the test set's without") {
  auto clustered = make(clustered_job());
  const Run run = run_all(*clustered);
  auto own = clustered->evaluate_on_client_data();
  REQUIRE(own.ok());
  CHECK((*own)[0].value == run.reports.back().eval[0].value);
  JobConfig c = clustered_job();
  c.client_clusters = 1;
  auto plain = make(c);
  run_all(*plain);
  auto test_set = plain->evaluate(), per_client = plain->evaluate_on_client_data();
  REQUIRE(test_set.ok());
  REQUIRE(per_client.ok());
  // One model for all: only the training set's label mix against the test set's separates them.
  CHECK((*per_client)[0].value == Approx((*test_set)[0].value).margin(0.03));
}

TEST_CASE("client clusters: a merged job's derived jobs (a split, a new head) keep its clusters and their models") {
  JobConfig merged = clustered_job();
  merged.tasks = {"class", "parity"};
  merged.heads = {"a", "b"};
  auto group = make(merged);
  Run run;
  for (int r = 0; r < 2; ++r) run.reports.push_back(*group->run_round());  // round 2 clusters
  const auto& formed = run.reports.back().clusters;
  REQUIRE(formed.size() == 2);

  // Split off {a}, and take in a new head c: each keeps the two clusters.
  for (const auto& heads : std::vector<std::vector<std::string>>{{"a"}, {"a", "c"}}) {
    JobConfig child = clustered_job();
    child.heads = heads;
    child.tasks = heads.size() == 1 ? std::vector<std::string>{"class"} : std::vector<std::string>{"class", "segment"};
    child.round_offset = group->rounds_done();
    auto derived = FlJob::derive(*group, child, RuntimeOptions{});
    REQUIRE(derived.ok());
    FlJob& d = **derived;
    // Head a scores as it did in the group: each cluster's encoder and head a came along
    // (without the clusters the child would score one model on the plain test set).
    const auto before = group->evaluate().value(), after = d.evaluate().value();
    CHECK(after[0].value == before[0].value);
    CHECK(after[0].loss == before[0].loss);
    // A checkpoint before the child's first round holds its clusters.
    auto again = make(child);
    REQUIRE(again->restore(*d.checkpoint()).is_ok());
    CHECK(again->evaluate().value()[0].loss == before[0].loss);

    auto r = d.run_round();
    REQUIRE(r.ok());
    CHECK(r->round == 3);
    CHECK(r->clients_sampled == 3);  // not a clustering round again
    REQUIRE(r->clusters.size() == 2);
    for (size_t c = 0; c < 2; ++c) CHECK(r->clusters[c].clients == formed[c].clients);
    CHECK(r->clusters[0].eval[0].value != r->clusters[1].eval[0].value);  // still two models
    CHECK(r->clusters[0].eval.size() == heads.size());
  }
}
