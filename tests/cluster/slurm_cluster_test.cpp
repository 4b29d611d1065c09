// A real one-node Slurm cluster (scripts/slurm-one-node through mufl::testing::SlurmCluster,
// issue 16): what mufld will rely on when it submits mufl-worker jobs with sbatch. Each test
// case starts its own cluster (munged, slurmctld, slurmd in a temp dir, about a second) and
// stops it. The node offers 2 fake GPUs (gpu:fake:2).
//
// Its own main: without Slurm and munge (Debian packages slurm-wlm and munge, which
// scripts/setup installs) every test exits 77 and CTest reports it skipped, with the reason.
// Listing the tests (CTest's discovery at build time) works without them.
#define CATCH_CONFIG_RUNNER
#include <catch2/catch.hpp>

#include <chrono>
#include <fstream>
#include <functional>
#include <iostream>
#include <map>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "scheduler/cluster/slurm_client.h"
#include "scheduler/cluster/slurm_inventory.h"
#include "tests/support/slurm_cluster.h"
#include "tests/support/temp_dir.h"

using mufl::testing::SlurmCluster;
using mufl::testing::SlurmRun;
using mufl::testing::TempDir;

int main(int argc, char** argv) {
  bool listing = false;
  for (int i = 1; i < argc; ++i) listing |= std::string(argv[i]).rfind("--list", 0) == 0;
  if (!listing && !SlurmCluster::available()) {
    std::cout << "SKIP: not on PATH: " << SlurmCluster::missing()
              << " (install the Debian packages slurm-wlm and munge, as scripts/setup does): the Slurm "
                 "cluster tests did not run\n";
    return 77;
  }
  return Catch::Session().run(argc, argv);
}

namespace {

const std::string kScript = MUFL_SOURCE_DIR "/scripts/slurm-one-node";

// mufld's sinfo question (scheduler::kSinfoFormat, the long form: only it shows the GPUs in use).
const std::string kSinfoLongFormat = mufl::scheduler::kSinfoFormat;

std::string slurp(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

std::string trim(std::string s) {
  while (!s.empty() && (s.back() == '\n' || s.back() == ' ')) s.pop_back();
  return s;
}

// Polls `done` every 100 ms for at most `seconds`; whether it held.
bool wait_until(const std::function<bool()>& done, int seconds) {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(seconds);
  for (;;) {
    if (done()) return true;
    if (std::chrono::steady_clock::now() > deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
}

// A run that must succeed; its stdout.
std::string must(const SlurmCluster& cluster, const std::vector<std::string>& argv) {
  const SlurmRun r = cluster.run(argv);
  INFO("command: " << argv[0] << "\nstdout: " << r.out << "\nstderr: " << r.err << "\n" << cluster.log_tail());
  REQUIRE(r.exit_code == 0);
  return r.out;
}

// sbatch --parsable …: the job id.
std::string submit(const SlurmCluster& cluster, std::vector<std::string> args) {
  args.insert(args.begin(), {"sbatch", "--parsable"});
  const std::string id = trim(must(cluster, args));
  REQUIRE_FALSE(id.empty());
  REQUIRE(id.find_first_not_of("0123456789") == std::string::npos);
  return id;
}

struct QueuedJob {
  std::string id, state, reason;
};

// squeue's jobs (pending, running, completing…; finished ones are not listed).
std::vector<QueuedJob> queue(const SlurmCluster& cluster) {
  std::istringstream lines(must(cluster, {"squeue", "--noheader", "--format=%i|%T|%r"}));
  std::vector<QueuedJob> jobs;
  std::string line;
  while (std::getline(lines, line)) {
    if (trim(line).empty()) continue;
    const size_t a = line.find('|'), b = line.find('|', a + 1);
    REQUIRE(b != std::string::npos);
    jobs.push_back({line.substr(0, a), line.substr(a + 1, b - a - 1), trim(line.substr(b + 1))});
  }
  return jobs;
}

std::string queue_text(const SlurmCluster& cluster) {
  std::string text;
  for (const auto& j : queue(cluster)) text += j.id + " " + j.state + " (" + j.reason + ")\n";
  return text.empty() ? "(empty)" : text;
}

bool queue_empty(const SlurmCluster& cluster) { return queue(cluster).empty(); }

// Whether process `pid` runs (not absent, not a zombie).
bool process_runs(const std::string& pid) {
  const std::string stat = slurp("/proc/" + pid + "/stat");
  if (stat.empty()) return false;
  const size_t close = stat.rfind(')');
  return close == std::string::npos || stat.compare(close + 1, 3, " Z ") != 0;
}

}  // namespace

TEST_CASE("slurm cluster: the node is up and sinfo shows its CPUs and 2 fake GPUs") {
  const auto t0 = std::chrono::steady_clock::now();
  SlurmCluster cluster(kScript);
  const double start_seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  INFO(cluster.start_output());
  CHECK(start_seconds < 15);
  CHECK(std::string(std::getenv("SLURM_CONF")) == cluster.slurm_conf());
  CHECK(slurp(cluster.env_file()).find("SLURM_CONF=" + cluster.slurm_conf()) != std::string::npos);

  const std::string text =
      must(cluster, {"sinfo", "--Node", "--noheader", "--Format", kSinfoLongFormat});
  INFO("sinfo: " << text);
  auto nodes = mufl::scheduler::parse_sinfo_nodes(text);
  REQUIRE(nodes.ok());
  REQUIRE(nodes->size() == 1);
  const auto& node = nodes->front();
  CHECK(node.partitions == std::vector<std::string>{"debug"});
  CHECK(node.state == "idle");
  CHECK(node.usable());
  // The CPUs slurmd finds (slurmd -C, which the script copies into NodeName=): the machine's,
  // or fewer where a cpuset limits what this process may use.
  CHECK(node.cpus >= 1);
  CHECK(node.cpus <= static_cast<int64_t>(std::thread::hardware_concurrency()));
  CHECK(node.memory_mb > 0);
  CHECK(node.gpus == std::map<std::string, int64_t>{{"fake", 2}});
  CHECK(node.gpus_used == std::map<std::string, int64_t>{{"fake", 0}});  // "gpu:fake:0(IDX:N/A)"

  // mufld's own client asks the same and gets the same node.
  auto cli = mufl::scheduler::make_slurm_cli({});
  auto asked = cli->nodes();
  REQUIRE(asked.ok());
  REQUIRE(asked->size() == 1);
  CHECK(asked->front().name == node.name);
  CHECK(asked->front().gpus == node.gpus);
}

TEST_CASE("slurm cluster: mufld's Slurm client submits, lists and cancels a job") {
  SlurmCluster cluster(kScript);
  auto cli = mufl::scheduler::make_slurm_cli({});
  mufl::scheduler::SlurmJobSpec job;
  job.name = "mufl-test-client";
  job.gres = "gpu:fake:1";
  job.script = "#!/bin/sh\nexec sleep 300\n";
  job.env = {"MUFL_TEST_MARK=1"};
  auto id = cli->submit(job);
  REQUIRE(id.ok());
  auto listed = cli->jobs("mufl-test-");
  REQUIRE(listed.ok());
  REQUIRE(listed->size() == 1);
  CHECK(listed->front().id == *id);
  CHECK(listed->front().name == "mufl-test-client");
  CHECK((listed->front().state == "PENDING" || listed->front().state == "RUNNING"));
  CHECK(cli->jobs("someone-else-")->empty());
  REQUIRE(cli->cancel(*id).is_ok());
  // Slurm lists a cancelled job for a moment (COMPLETING); it goes within the test's bound.
  bool gone = false;
  for (int i = 0; i < 300 && !gone; ++i) {
    auto now = cli->jobs("mufl-test-");
    REQUIRE(now.ok());
    gone = now->empty();
    if (!gone) std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  CHECK(gone);
  CHECK(cli->cancel(*id).is_ok());  // cancelling an ended job is not an error
  auto refused = cli->submit([] {
    mufl::scheduler::SlurmJobSpec bad;
    bad.name = "mufl-test-bad";
    bad.gres = "gpu:nosuchtype:1";
    bad.script = "#!/bin/sh\ntrue\n";
    return bad;
  }());
  REQUIRE_FALSE(refused.ok());
  CHECK(refused.status().code() == mufl::Status::Code::kFailedPrecondition);  // refused for good
  INFO(refused.status().message());
  CHECK(refused.status().message().find("sbatch") != std::string::npos);
  CHECK(refused.status().message().find("sbatch") != std::string::npos);
}

TEST_CASE("slurm cluster: a batch job with a fake GPU runs, sees its GPU and leaves the queue") {
  SlurmCluster cluster(kScript);
  TempDir work;
  const std::string result = work.file("result");
  // The job writes what Slurm gave it, then renames the file into place: the file is whole
  // once it exists.
  const std::string id =
      submit(cluster, {"--gres=gpu:fake:1", "--output=" + work.file("job.out"), "--wrap",
                       "printf '%s|%s|%s|%s\\n' \"$SLURM_JOB_ID\" \"$CUDA_VISIBLE_DEVICES\" \"$SLURM_JOB_GPUS\" "
                       "\"$SLURM_GPUS_ON_NODE\" > " +
                           result + ".tmp && mv " + result + ".tmp " + result});
  const bool finished = wait_until([&] { return slurp(result).size() > 0 && queue_empty(cluster); }, 20);
  INFO("queue: " << queue_text(cluster) << "job output: " << slurp(work.file("job.out")) << cluster.log_tail());
  REQUIRE(finished);
  // The one GPU of the node's two that Slurm allocated: index 0 on an idle node. Without a
  // device cgroup the index is the node's, as SLURM_JOB_GPUS says.
  CHECK(trim(slurp(result)) == id + "|0|0|1");
  CHECK(queue_empty(cluster));
}

TEST_CASE("slurm cluster: scancel ends a running job and its processes") {
  SlurmCluster cluster(kScript);
  TempDir work;
  const std::string pid_file = work.file("pid");
  const std::string id = submit(cluster, {"--output=/dev/null", "--wrap",
                                          "echo $$ > " + pid_file + ".tmp && mv " + pid_file + ".tmp " + pid_file +
                                              " && exec sleep 300"});
  const bool running = wait_until(
      [&] {
        auto jobs = queue(cluster);
        return jobs.size() == 1 && jobs[0].state == "RUNNING" && !slurp(pid_file).empty();
      },
      20);
  INFO("queue: " << queue_text(cluster) << cluster.log_tail());
  REQUIRE(running);
  const std::string pid = trim(slurp(pid_file));
  CHECK(process_runs(pid));

  must(cluster, {"scancel", id});
  // KillWait=2: SIGTERM, SIGKILL 2 s later; sleep dies of the SIGTERM.
  const bool gone = wait_until([&] { return queue_empty(cluster) && !process_runs(pid); }, 15);
  INFO("after scancel, queue: " << queue_text(cluster));
  CHECK(gone);
}

TEST_CASE("slurm cluster: two jobs take the two fake GPUs at once, a third waits for resources") {
  SlurmCluster cluster(kScript);
  TempDir work;
  std::vector<std::string> ids;
  for (int i = 0; i < 3; ++i) {
    const std::string env = work.file("gpus" + std::to_string(i));
    ids.push_back(submit(cluster, {"--gres=gpu:fake:1", "--output=/dev/null", "--wrap",
                                   "echo \"$CUDA_VISIBLE_DEVICES\" > " + env + ".tmp && mv " + env + ".tmp " + env +
                                       " && exec sleep 300"}));
  }
  // Each job takes one CPU (a core) and one GPU; the node has at least 2 cores here.
  const bool placed = wait_until(
      [&] {
        auto jobs = queue(cluster);
        if (jobs.size() != 3) return false;
        std::map<std::string, QueuedJob> by_id;
        for (auto& j : jobs) by_id[j.id] = j;
        return by_id[ids[0]].state == "RUNNING" && by_id[ids[1]].state == "RUNNING" &&
               by_id[ids[2]].state == "PENDING" && by_id[ids[2]].reason == "Resources";
      },
      20);
  INFO("queue: " << queue_text(cluster) << cluster.log_tail());
  REQUIRE(placed);
  // The running jobs hold different GPUs.
  REQUIRE(wait_until([&] { return !slurp(work.file("gpus0")).empty() && !slurp(work.file("gpus1")).empty(); }, 10));
  CHECK(std::set<std::string>{trim(slurp(work.file("gpus0"))), trim(slurp(work.file("gpus1")))} ==
        std::set<std::string>{"0", "1"});
  CHECK(slurp(work.file("gpus2")).empty());
  // sinfo shows both GPUs in use (the long form: see kSinfoLongFormat), and the node allocated.
  const std::string text = must(cluster, {"sinfo", "--Node", "--noheader", "--Format", kSinfoLongFormat});
  INFO("sinfo --Format: " << text);
  auto nodes = mufl::scheduler::parse_sinfo_nodes(text);
  REQUIRE(nodes.ok());
  REQUIRE(nodes->size() == 1);
  CHECK(nodes->front().gpus_used == std::map<std::string, int64_t>{{"fake", 2}});
  CHECK(nodes->front().gpus == std::map<std::string, int64_t>{{"fake", 2}});

  must(cluster, {"scancel", ids[0], ids[1], ids[2]});
  CHECK(wait_until([&] { return queue_empty(cluster); }, 15));
}
