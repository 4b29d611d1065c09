// The executor on cluster devices (scheduler/cluster/cluster_backend.h), in one process: Slurm is
// faked, and each job it "starts" is a thread that does what mufl-worker does, through the
// WorkerDesk (poll, checkpoint, FlJob round, framed result). The real worker against a real
// one-node Slurm is tests/cluster/. A cluster run must record exactly what a local run does.
#include <future>
#include <set>
#include <thread>

#include "fl/job_wire.h"
#include "scheduler/cluster/cluster_backend.h"
#include "tests/scheduler/executor_harness.h"

using namespace mufl;
using namespace mufl::scheduler;
using namespace mufl::testing;
using nlohmann::json;

namespace {

// Slurm as the backend sees it: submit starts a worker thread, squeue lists live jobs, scancel
// ends one. kill() ends a job the way a node failure or kill -9 does: no report, gone from squeue.
class FakeSlurm final : public SlurmClient {
 public:
  FakeSlurm(WorkerDesk& desk, std::string data_dir) : desk_(desk), data_dir_(std::move(data_dir)) {}
  ~FakeSlurm() override {
    std::vector<std::thread> threads;
    {
      std::lock_guard lock(mu_);
      for (auto& [id, job] : jobs_) job.killed = true;
      threads.swap(threads_);
    }
    for (auto& t : threads) t.join();
  }

  Result<std::vector<SlurmNode>> nodes() override { return std::vector<SlurmNode>{}; }

  Result<std::string> submit(const SlurmJobSpec& spec) override {
    {
      std::lock_guard lock(mu_);
      if (refusal_) {
        ++refused_;
        return *refusal_;
      }
    }
    std::string worker;
    for (const auto& e : spec.env)
      if (e.rfind("MUFL_WORKER_ID=", 0) == 0) worker = e.substr(15);
    std::lock_guard lock(mu_);
    const std::string id = std::to_string(++next_id_);
    jobs_[id] = {spec, worker, false, false};
    submitted_.push_back(spec);
    size_t live = 0;
    for (const auto& [jid, job] : jobs_) live += !job.ended;
    peak_live_ = std::max(peak_live_, live);
    threads_.emplace_back([this, id, worker] { run_worker(id, worker); });
    return id;
  }

  Status cancel(const std::string& id) override {
    std::lock_guard lock(mu_);
    if (auto it = jobs_.find(id); it != jobs_.end()) it->second.killed = true;
    cancelled_.insert(id);
    return Status::ok();
  }

  Result<std::vector<SlurmJobState>> jobs(const std::string& prefix) override {
    std::lock_guard lock(mu_);
    std::vector<SlurmJobState> out;
    for (const auto& [id, job] : jobs_)
      if (!job.ended && job.spec.name.rfind(prefix, 0) == 0) out.push_back({id, job.spec.name, "RUNNING", "n1", "None"});
    return out;
  }

  // Every sbatch from now on fails so (nullopt: they pass again).
  void refuse(std::optional<Status> why) {
    std::lock_guard lock(mu_);
    refusal_ = std::move(why);
  }
  int refused() {
    std::lock_guard lock(mu_);
    return refused_;
  }
  // The next job to reach lineage round `round` dies before reporting it.
  void kill_at(int64_t round) {
    std::lock_guard lock(mu_);
    kill_at_round_ = round;
  }
  std::vector<SlurmJobSpec> submitted() {
    std::lock_guard lock(mu_);
    return submitted_;
  }
  size_t live() {
    std::lock_guard lock(mu_);
    size_t n = 0;
    for (const auto& [id, job] : jobs_) n += !job.ended;
    return n;
  }
  size_t peak_live() {
    std::lock_guard lock(mu_);
    return peak_live_;
  }
  size_t cancelled() {
    std::lock_guard lock(mu_);
    return cancelled_.size();
  }

 private:
  struct Job {
    SlurmJobSpec spec;
    std::string worker;
    bool killed = false;
    bool ended = false;
  };

  bool killed(const std::string& id) {
    std::lock_guard lock(mu_);
    return jobs_[id].killed;
  }
  void ended(const std::string& id) {
    std::lock_guard lock(mu_);
    jobs_[id].ended = true;
  }
  bool dies_at(int64_t round) {
    std::lock_guard lock(mu_);
    if (kill_at_round_ != round) return false;
    kill_at_round_ = -1;
    return true;
  }

  // What mufl-worker does, through the desk instead of HTTP.
  void run_worker(const std::string& id, const std::string& worker) {
    while (!killed(id)) {
      std::promise<std::optional<std::string>> got;
      desk_.board().wait(worker, std::chrono::milliseconds(50),
                         [&got](std::optional<std::string> item) { got.set_value(std::move(item)); });
      const auto item = got.get_future().get();
      if (!item) continue;
      if (*item == WorkerDesk::kDoneMarker) break;
      const json work = json::parse(*item);
      const int64_t round = work["round"];
      if (dies_at(round)) break;
      train(worker, round, work["config"]);
    }
    ended(id);
  }

  void train(const std::string& worker, int64_t round, const json& config_json) {
    auto config = fl::job_config_from_json(config_json);
    auto checkpoint = desk_.checkpoint(worker, round);
    if (!config.ok() || !checkpoint.ok()) return;
    auto job = local_training().create(*config, {data_dir_, "cpu", {}});
    REQUIRE(job.ok());
    REQUIRE((*job)->restore(**checkpoint).is_ok());
    auto report = (*job)->run_round({});
    REQUIRE(report.ok());
    auto after = (*job)->checkpoint();
    REQUIRE(after.ok());
    const json head = {{"report", fl::round_report_to_json(*report)}, {"checkpoint_sha256", sha256_hex(*after)},
                       {"joules", round == 4 ? 1e9 : 10.0 * round}, {"meter", "model"}, {"seconds", report->seconds},
                       {"host", "n1"}};
    (void)desk_.deliver(worker, round, make_result_frame(head.dump(), *after));
  }

  WorkerDesk& desk_;
  std::string data_dir_;
  std::mutex mu_;
  std::map<std::string, Job> jobs_;
  std::vector<SlurmJobSpec> submitted_;
  std::set<std::string> cancelled_;
  std::vector<std::thread> threads_;
  int next_id_ = 100;
  size_t peak_live_ = 0;
  int64_t kill_at_round_ = -1;
  std::optional<Status> refusal_;
  int refused_ = 0;
};

// A harness whose only device is one GPU of a Slurm node, run by the cluster backend.
struct ClusterHarness {
  explicit ClusterHarness(bool independent = false) : independent(independent) {}
  bool independent;  // every activity its own group (no merging)
  std::unique_ptr<FakeSlurm> slurm;
  std::unique_ptr<ClusterBackend> backend;
  std::map<std::string, double> joules;  // reported per device
  std::mutex joules_mu;
  Harness h{[this](ExecutorOptions& o) {
    o.devices = {Device{"slurm:n1:fake:0", "cuda", "n1", "gpu:fake"}, Device{"slurm:n1:fake:1", "cuda", "n1", "gpu:fake"}};
    if (!backend) {
      slurm = std::make_unique<FakeSlurm>(h.app->workers(), h.dir.path());
      ClusterBackendOptions b;
      b.worker_url = "http://head:8080";
      b.squeue_every_ms = 20;
      b.on_energy = [this](const std::string& device, double j, const std::string&, double) {
        std::lock_guard lock(joules_mu);
        joules[device] += j;
      };
      backend = std::make_unique<ClusterBackend>(*slurm, h.app->workers(), b);
    }
    o.cluster_backend = [this](const Device& d) { return backend->for_device(d); };
    if (independent) o.grouping.policy = GroupingPolicy::kIndependent;
  }};
  ~ClusterHarness() {
    h.stop();
    if (backend) backend->shutdown();
  }
};

}  // namespace

TEST_CASE("cluster executor: a group on a cluster GPU runs in a worker job and records an unbroken local run") {
  const auto& expected = unbroken();
  ClusterHarness c;
  const std::string id = c.h.submit();
  REQUIRE(c.h.endings.wait(id) == ActivityState::kSucceeded);
  CHECK(c.h.metrics(id) == expected);
  // One worker job for the whole group, on the device's node and GRES, with no secret of mufld's.
  const auto jobs = c.slurm->submitted();
  REQUIRE(jobs.size() == 1);
  CHECK(jobs[0].gres == "gpu:fake:1");
  CHECK(jobs[0].node == "n1");
  CHECK(jobs[0].name.rfind("mufl-wrk_", 0) == 0);
  CHECK(jobs[0].script.find("exec 'mufl-worker' '--power-profile' 'V100'") != std::string::npos);
  CHECK(jobs[0].extra_args.at(0).rfind("--export=", 0) == 0);
  // The group ended: its worker was told so and its job cancelled; nothing stays in Slurm. (The
  // backend closes the worker's desk before it cancels the job, so the fake job may end first:
  // wait for both.)
  for (int i = 0; i < 200 && (c.slurm->live() > 0 || c.slurm->cancelled() < 1); ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  CHECK(c.slurm->live() == 0);
  CHECK(c.slurm->cancelled() == 1);
  // Every round's energy came from the worker's report: 10 J × round for rounds 1 to 3; round 4
  // claimed 1 GJ and was counted at most at the V100's full power over the round's wall time.
  std::lock_guard lock(c.joules_mu);
  double total = 0;
  for (const auto& [device, j] : c.joules) total += j;
  CHECK(total > 60.0);
  CHECK(total < 60.0 + 1.25 * 250 * 30);
}

TEST_CASE("cluster executor: a clustered activity on a cluster GPU records a local run's clusters and metrics") {
  const json clustered = {{"client_clusters", 2}, {"cluster_round", 2}};
  const auto clusters_of = [](Harness& h, const std::string& id) {
    auto rounds = h.store->list_rounds(id, {storage::Scope::all(), 0, 10});
    REQUIRE(rounds.ok());
    std::vector<json> out;
    for (const auto& r : rounds->items) out.push_back(json::parse(r.report_json).value("clusters", json::array()));
    return out;
  };
  std::vector<json> expected_metrics, expected_clusters;
  {
    Harness local;
    const std::string id = local.submit(4, "class", clustered);
    REQUIRE(local.endings.wait(id) == ActivityState::kSucceeded);
    expected_metrics = local.metrics(id);
    expected_clusters = clusters_of(local, id);
  }
  REQUIRE(expected_clusters.size() == 4);
  CHECK(expected_clusters[0].empty());  // round 1 is FedAvg's
  CHECK(expected_clusters[3].size() == 2);
  ClusterHarness c;
  const std::string id = c.h.submit(4, "class", clustered);
  REQUIRE(c.h.endings.wait(id) == ActivityState::kSucceeded);
  CHECK(c.h.metrics(id) == expected_metrics);
  CHECK(clusters_of(c.h, id) == expected_clusters);
  CHECK(c.slurm->submitted().size() == 1);
}

TEST_CASE("cluster executor: a worker killed mid-round loses only that round, and a new job redoes it") {
  const auto& expected = unbroken();
  ClusterHarness c;
  c.slurm->kill_at(3);
  const std::string id = c.h.submit();
  REQUIRE(c.h.endings.wait(id) == ActivityState::kSucceeded);
  CHECK(c.h.metrics(id) == expected);
  CHECK(c.slurm->submitted().size() == 2);  // the killed job, then its replacement
}

TEST_CASE("cluster executor: two activities run as two worker jobs at once") {
  const auto& expected = unbroken();
  ClusterHarness c(true);
  const std::string a = c.h.submit();
  const std::string b = c.h.submit();
  REQUIRE(c.h.endings.wait(a) == ActivityState::kSucceeded);
  REQUIRE(c.h.endings.wait(b) == ActivityState::kSucceeded);
  CHECK(c.h.metrics(a) == expected);
  CHECK(c.h.metrics(b) == expected);
  CHECK(c.slurm->submitted().size() == 2);
  CHECK(c.slurm->peak_live() == 2);
}

TEST_CASE("cluster executor: sbatch refusing the job for good fails the group with Slurm's words") {
  ClusterHarness c;
  c.slurm->refuse(Status::failed_precondition("sbatch exited with 1: Invalid generic resource (gres) specification"));
  const std::string id = c.h.submit();
  REQUIRE(c.h.endings.wait(id) == ActivityState::kFailed);
  CHECK_THAT(c.h.activity(id).state_reason, Catch::Contains("Invalid generic resource"));
  CHECK(c.slurm->refused() == 1);  // not retried: the same request meets the same answer
}

TEST_CASE("cluster executor: an sbatch that fails for now is waited out, and the group then trains") {
  const auto& expected = unbroken();
  ClusterHarness c;
  c.slurm->refuse(Status::unavailable("sbatch exited with 1: Unable to contact slurm controller"));
  const std::string id = c.h.submit();
  for (int i = 0; i < 500 && c.slurm->refused() < 2; ++i) std::this_thread::sleep_for(std::chrono::milliseconds(10));
  CHECK(c.slurm->refused() >= 2);  // retried after the backoff (150 ms, doubling), not failed
  CHECK(c.h.activity(id).state != ActivityState::kFailed);
  c.slurm->refuse(std::nullopt);
  REQUIRE(c.h.endings.wait(id) == ActivityState::kSucceeded);
  CHECK(c.h.metrics(id) == expected);
}
