// scheduler/cluster/cluster_backend.h, reconcile_workers: a mufld restarted after a crash adopts
// the worker jobs it recorded that Slurm still runs (their tokens authenticate again, and their
// group's next job on the same node and GPU type takes them without a new sbatch), cancels every
// other worker job, forgets records whose job is gone, and lets an adopted worker no job takes
// go after the grace time. The whole restart against a real Slurm is in tests/cluster/.
#include <catch2/catch.hpp>

#include <atomic>
#include <chrono>
#include <future>
#include <mutex>
#include <set>
#include <thread>

#include "core/clock.h"
#include "core/file_io.h"
#include "core/random.h"
#include "scheduler/cluster/cluster_backend.h"
#include "storage/sqlite_store.h"
#include "tests/support/temp_dir.h"

using namespace mufl;
using namespace mufl::scheduler;
using mufl::testing::TempDir;

namespace {

// Slurm as squeue lists it: a fixed set of jobs; sbatch and scancel are counted.
class ListedSlurm final : public SlurmClient {
 public:
  explicit ListedSlurm(std::vector<SlurmJobState> jobs) : jobs_(std::move(jobs)) {}
  Result<std::vector<SlurmNode>> nodes() override { return std::vector<SlurmNode>{}; }
  Result<std::string> submit(const SlurmJobSpec& spec) override {
    std::lock_guard lock(mu_);
    ++submitted_;
    jobs_.push_back({"900", spec.name, "RUNNING", "n1", "None"});
    return std::string("900");
  }
  Status cancel(const std::string& id) override {
    std::lock_guard lock(mu_);
    cancelled_.insert(id);
    return Status::ok();
  }
  Result<std::vector<SlurmJobState>> jobs(const std::string& prefix) override {
    std::lock_guard lock(mu_);
    std::vector<SlurmJobState> out;
    for (const auto& j : jobs_)
      if (j.name.rfind(prefix, 0) == 0 && !cancelled_.count(j.id)) out.push_back(j);
    return out;
  }
  void add(SlurmJobState job) {
    std::lock_guard lock(mu_);
    jobs_.push_back(std::move(job));
  }
  std::set<std::string> cancelled() {
    std::lock_guard lock(mu_);
    return cancelled_;
  }
  int submitted() {
    std::lock_guard lock(mu_);
    return submitted_;
  }

 private:
  std::mutex mu_;
  std::vector<SlurmJobState> jobs_;
  std::set<std::string> cancelled_;
  int submitted_ = 0;
};

storage::WorkerRecord record(const std::string& id, const std::string& job, const std::string& group,
                             const std::string& token) {
  return {id, sha256_hex(token), group, "slurm:n1:fake:0", job, 1000};
}

// A store holding the records an earlier mufld left: wrk_live (job 11, running), wrk_stuck (job
// 12, pending on a node that is down), wrk_gone (job 13, no longer listed); Slurm also lists job
// 14, a worker job nobody recorded.
struct Restart {
  TempDir dir;
  std::unique_ptr<storage::SqliteStore> store;
  ListedSlurm slurm{{{"11", "mufl-wrk_live", "RUNNING", "n1", "None"},
                     {"12", "mufl-wrk_stuck", "PENDING", "", "NodeDown"},
                     {"14", "mufl-wrk_stray", "RUNNING", "n1", "None"},
                     {"15", "someone-elses-job", "RUNNING", "n1", "None"}}};
  WorkerDesk desk{SecureRandom::instance()};
  std::unique_ptr<ClusterBackend> backend;

  explicit Restart(int64_t grace_ms = 60'000) {
    storage::StoreOptions o;
    o.path = dir.file("mufl.db");
    auto s = storage::SqliteStore::open(o, SystemClock::instance());
    REQUIRE(s.ok());
    store = std::move(*s);
    for (const auto& r : {record("wrk_live", "11", "grp_a", "tok-live"), record("wrk_stuck", "12", "grp_b", "tok-b"),
                          record("wrk_gone", "13", "grp_c", "tok-c")})
      REQUIRE(store->save_worker(r).is_ok());
    ClusterBackendOptions b;
    b.worker_url = "http://head:8080";
    b.store = store.get();
    b.adopt_grace_ms = grace_ms;
    // Placement set 150 W on the first GPU of n1 (the energy policy), none elsewhere.
    b.power_limit = [](const std::string& device) -> std::optional<double> {
      if (device == "slurm:n1:fake:0") return 150.0;
      return std::nullopt;
    };
    backend = std::make_unique<ClusterBackend>(slurm, desk, b);
  }
  ~Restart() { backend->shutdown(); }

  std::vector<std::string> recorded() {
    auto all = store->list_workers();
    REQUIRE(all.ok());
    std::vector<std::string> ids;
    for (const auto& w : *all) ids.push_back(w.id);
    return ids;
  }

  fl::JobConfig config(const std::string& group) const {
    fl::JobConfig c;
    c.dataset = "synthetic";
    c.name = group;
    c.tasks = {"class"};
    c.rounds = 2;
    c.clients = 4;
    c.clients_per_round = 2;
    return c;
  }
  fl::RuntimeOptions runtime() const { return {dir.path(), "cpu", {}}; }
};

Device gpu(const std::string& node, int i) {
  return Device{"slurm:" + node + ":fake:" + std::to_string(i), "cuda", node, "gpu:fake"};
}

// Waits (bounded) for `done`, asking every 10 ms.
bool eventually(const std::function<bool()>& done) {
  for (int i = 0; i < 500; ++i) {
    if (done()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return done();
}

// The work item posted to worker `id`, as its poll gets it (waited for, bounded).
std::optional<std::string> posted_to(WorkerDesk& desk, const std::string& id) {
  std::optional<std::string> item;
  eventually([&] {
    desk.board().wait(id, std::chrono::milliseconds(0), [&](std::optional<std::string> i) { item = i; });
    return item.has_value();
  });
  return item;
}

}  // namespace

TEST_CASE("cluster backend: a restart adopts the recorded live worker and cancels or forgets the rest") {
  Restart r;
  auto done = r.backend->reconcile_workers();
  REQUIRE(done.ok());
  CHECK(done->adopted == 1);
  CHECK(done->cancelled == 2);  // 12 (pending on a dead node) and 14 (not recorded)
  CHECK(done->forgotten == 1);  // 13
  CHECK(r.slurm.cancelled() == std::set<std::string>{"12", "14"});
  CHECK(r.recorded() == std::vector<std::string>{"wrk_live"});
  // The adopted worker's token works again; the others' do not.
  CHECK(r.desk.authenticate("wrk_live", "tok-live").is_ok());
  CHECK(r.desk.is_open("wrk_live"));
  CHECK(r.desk.authenticate("wrk_stuck", "tok-b").code() == Status::Code::kUnauthenticated);
  CHECK(r.desk.authenticate("wrk_live", "tok-b").code() == Status::Code::kUnauthenticated);
}

TEST_CASE("cluster backend: the adopted worker's group, resumed on its node, trains on in the same job") {
  Restart r;
  REQUIRE(r.backend->reconcile_workers().ok());
  // The group resumes on the node's other GPU: Slurm does not tell the two apart.
  auto job = r.backend->for_device(gpu("n1", 1))->create(r.config("grp_a"), r.runtime());
  REQUIRE(job.ok());
  std::atomic<bool> stop{false};
  auto round = std::async(std::launch::async, [&] { return (*job)->run_round([&] { return stop.load(); }); });
  // Its first round is posted to the adopted worker: no sbatch.
  const std::optional<std::string> item = posted_to(r.desk, "wrk_live");
  REQUIRE(item);
  CHECK(nlohmann::json::parse(*item)["round"] == 1);
  CHECK(!nlohmann::json::parse(*item).contains("power_limit_watts"));  // the GPU's highest
  stop = true;
  auto report = round.get();
  REQUIRE(report.ok());
  CHECK(report->stopped);
  CHECK(r.slurm.submitted() == 0);
  CHECK(r.slurm.cancelled().count("11") == 0);
  // The group lets its device go: the worker ends, its job is cancelled and its record deleted.
  job->reset();
  CHECK(r.slurm.cancelled().count("11") == 1);
  CHECK(r.recorded().empty());
  CHECK(!r.desk.is_open("wrk_live"));
}

TEST_CASE("cluster backend: an adopted worker whose group goes to another node is cancelled at once") {
  Restart r;
  REQUIRE(r.backend->reconcile_workers().ok());
  auto job = r.backend->for_device(gpu("n2", 0))->create(r.config("grp_a"), r.runtime());
  REQUIRE(job.ok());
  CHECK(r.slurm.cancelled().count("11") == 1);
  CHECK(r.recorded().empty());
}

TEST_CASE("cluster backend: an adopted worker no device takes within the grace time is cancelled") {
  Restart r(/*grace_ms=*/50);
  REQUIRE(r.backend->reconcile_workers().ok());
  CHECK(eventually([&] { return r.slurm.cancelled().count("11") == 1; }));
  CHECK(eventually([&] { return r.recorded().empty(); }));
  CHECK(!r.desk.is_open("wrk_live"));
}

TEST_CASE("cluster backend: a worker is recorded when its job is submitted and deleted when it ends") {
  Restart r;
  REQUIRE(r.backend->reconcile_workers().ok());
  auto job = r.backend->for_device(gpu("n1", 0))->create(r.config("grp_new"), r.runtime());
  REQUIRE(job.ok());
  std::atomic<bool> stop{false};
  auto round = std::async(std::launch::async, [&] { return (*job)->run_round([&] { return stop.load(); }); });
  REQUIRE(eventually([&] { return r.slurm.submitted() == 1; }));
  REQUIRE(eventually([&] { return r.recorded().size() == 2; }));  // wrk_live, and the new one
  auto all = r.store->list_workers();
  REQUIRE(all.ok());
  const storage::WorkerRecord& w = all->back();
  CHECK(w.group_id == "grp_new");
  CHECK(w.device == "slurm:n1:fake:0");
  CHECK(w.slurm_job_id == "900");
  CHECK(w.token_sha256.size() == 64);
  // Its round carries the power limit placement set on the device.
  const std::optional<std::string> item = posted_to(r.desk, w.id);
  REQUIRE(item);
  CHECK(nlohmann::json::parse(*item)["power_limit_watts"] == 150.0);
  stop = true;
  REQUIRE(round.get().ok());
  job->reset();
  CHECK(r.recorded() == std::vector<std::string>{"wrk_live"});
}

TEST_CASE("cluster backend: two live recorded workers of one group: the later is adopted, the earlier cancelled") {
  Restart r;
  // The group's second worker was submitted before its first had ended, then mufld died.
  r.slurm.add({"16", "mufl-wrk_second", "RUNNING", "n1", "None"});
  REQUIRE(r.store->save_worker(record("wrk_second", "16", "grp_a", "tok-2")).is_ok());
  auto done = r.backend->reconcile_workers();  // must not hang
  REQUIRE(done.ok());
  CHECK(done->adopted == 2);
  CHECK(r.slurm.cancelled().count("11") == 1);  // displaced by the later one
  CHECK(r.slurm.cancelled().count("16") == 0);
  CHECK(!r.desk.is_open("wrk_live"));
  CHECK(r.desk.is_open("wrk_second"));
  CHECK(r.recorded() == std::vector<std::string>{"wrk_second"});
}

TEST_CASE("cluster backend: a FedEMA job is refused naming its field, and no worker is submitted") {
  Restart r;
  fl::JobConfig c = r.config("grp_new");
  c.local_update = "fedema";
  auto job = r.backend->for_device(gpu("n1", 0))->create(c, r.runtime());
  REQUIRE_FALSE(job.ok());
  CHECK(job.status().is_invalid_argument());
  const Status why = job.status();
  REQUIRE(why.field_errors().size() == 1);
  CHECK(why.field_errors()[0].field == "local_update");
  CHECK(r.slurm.submitted() == 0);
}
