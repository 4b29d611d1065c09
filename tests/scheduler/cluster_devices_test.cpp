// scheduler/cluster/: a Slurm cluster's GPUs become devices of mufld, follow their nodes'
// states, and sbatch/squeue are spoken as Slurm 22.05 does. Slurm itself is faked here (the
// one-node cluster tests run the real one).
#include <catch2/catch.hpp>

#include <mutex>

#include "scheduler/cluster/cluster_devices.h"
#include "scheduler/cluster/cluster_watch.h"
#include "scheduler/cluster/slurm_client.h"
#include "scheduler/energy/model_meter.h"
#include "scheduler/energy/reported_meter.h"

using namespace mufl;
using namespace mufl::scheduler;

namespace {

SlurmNode node(const std::string& name, const std::string& state, std::map<std::string, int64_t> gpus) {
  SlurmNode n;
  n.name = name;
  n.partitions = {"gpu"};
  n.state = state;
  n.cpus = 32;
  n.memory_mb = 128'000;
  n.gpus = std::move(gpus);
  return n;
}

// Answers nodes() with what the test sets; the other calls are not used by the watch.
class FakeSlurm : public SlurmClient {
 public:
  Result<std::vector<SlurmNode>> nodes() override {
    std::lock_guard lock(mu);
    ++asked;
    return answer;
  }
  Result<std::string> submit(const SlurmJobSpec&) override { return Status::internal("not used"); }
  Status cancel(const std::string&) override { return Status::internal("not used"); }
  Result<std::vector<SlurmJobState>> jobs(const std::string&) override { return std::vector<SlurmJobState>{}; }

  std::mutex mu;
  int asked = 0;
  Result<std::vector<SlurmNode>> answer = std::vector<SlurmNode>{};
};

std::vector<MeteredDevice> one_cpu(const Clock& clock) {
  std::vector<MeteredDevice> out(1);
  out[0].device = {"cpu:0", "cpu"};
  out[0].meter = std::make_unique<ModelMeter>(*find_power_profile("cpu"), clock);
  out[0].profile = "cpu";
  return out;
}

}  // namespace

TEST_CASE("cluster devices: one device per GPU, named by node, type and index") {
  auto devices = cluster_devices({node("n1", "idle", {{"v100", 2}}), node("n2", "drained", {{"a100", 1}, {"gpu", 1}})});
  REQUIRE(devices.size() == 4);
  CHECK(devices[0].device.name == "slurm:n1:v100:0");
  CHECK(devices[1].device.name == "slurm:n1:v100:1");
  CHECK(devices[0].device.host == "n1");
  CHECK(devices[0].device.gres == "gpu:v100");
  CHECK(devices[0].device.torch_device == "cuda");
  CHECK(devices[0].device.on_cluster());
  CHECK(devices[0].usable);
  CHECK(devices[2].device.name == "slurm:n2:a100:0");
  CHECK(devices[3].device.name == "slurm:n2:gpu:0");  // a GPU without a type
  CHECK_FALSE(devices[2].usable);
  CHECK(cluster_devices({node("n3", "idle", {})}).empty());
}

TEST_CASE("cluster devices: the power profile follows the GRES type, else the fallback") {
  Device v100{"slurm:n1:v100:0", "cuda", "n1", "gpu:v100"};
  Device fake{"slurm:n1:fake:0", "cuda", "n1", "gpu:fake"};
  CHECK(power_profile_of(v100, "A40") == "V100");
  CHECK(power_profile_of(fake, "A40") == "A40");
  CHECK(power_profile_of(Device{"cuda:0", "cuda:0"}, "A40") == "A40");
  CHECK(power_profile_of(Device{"cpu:0", "cpu"}, "A40") == "cpu");
}

TEST_CASE("slurm client: sbatch's arguments carry the job's name, GRES, node, partition and account") {
  SlurmJobSpec job;
  job.name = "mufl-wrk_1";
  job.gres = "gpu:v100:1";
  job.node = "n1";
  job.partition = "gpu";
  job.account = "ml";
  job.extra_args = {"--time=01:00:00", "--qos=low"};
  CHECK(sbatch_arguments(job) == std::vector<std::string>{"sbatch", "--parsable", "--job-name=mufl-wrk_1",
                                                          "--gres=gpu:v100:1", "--nodelist=n1", "--partition=gpu",
                                                          "--account=ml", "--time=01:00:00", "--qos=low"});
  SlurmJobSpec bare;
  bare.name = "mufl-x";
  CHECK(sbatch_arguments(bare) == std::vector<std::string>{"sbatch", "--parsable", "--job-name=mufl-x"});
}

TEST_CASE("slurm client: squeue's lines become jobs, mufld's only") {
  const std::string text =
      "101|RUNNING|n1|None|mufl-wrk_a\n"
      "102|PENDING||Priority|someone|else\n"
      "\n"
      "103|PENDING||Resources|mufl-wrk_b\n"
      "104|RUNNING|n2|None|mufl-wrk_c|odd\n";
  auto jobs = parse_squeue(text, "mufl-");
  REQUIRE(jobs.ok());
  REQUIRE(jobs->size() == 3);
  CHECK((*jobs)[0] == SlurmJobState{"101", "mufl-wrk_a", "RUNNING", "n1", "None"});
  CHECK((*jobs)[1] == SlurmJobState{"103", "mufl-wrk_b", "PENDING", "", "Resources"});
  CHECK((*jobs)[2].name == "mufl-wrk_c|odd");
  auto bad = parse_squeue("101|RUNNING|mufl-a\n", "mufl-");
  REQUIRE_FALSE(bad.ok());
  CHECK(bad.status().message().find("line 1") != std::string::npos);
}

TEST_CASE("cluster watch: GPUs become devices, follow their node, and survive a Slurm outage") {
  ManualClock clock;
  DeviceInventory inv(one_cpu(clock), clock);
  FakeSlurm slurm;
  slurm.answer = std::vector<SlurmNode>{node("n1", "idle", {{"v100", 2}})};
  std::vector<std::string> handed;
  ClusterWatch watch(slurm, inv, clock, {}, [&](const std::vector<Device>& added) {
    for (const auto& d : added) handed.push_back(d.name);
  });
  REQUIRE(watch.refresh().is_ok());
  CHECK(handed == std::vector<std::string>{"slurm:n1:v100:0", "slurm:n1:v100:1"});
  auto listed = inv.list();
  REQUIRE(listed.size() == 3);
  CHECK(listed[0].host.empty());
  CHECK(listed[1].host == "n1");
  CHECK(listed[1].gres == "gpu:v100");
  CHECK(listed[1].kind == "cuda");
  CHECK(listed[1].meter == "model");
  CHECK(listed[1].profile == "V100");
  CHECK(listed[1].state == DeviceState::kIdle);
  CHECK(inv.may_claim("slurm:n1:v100:0"));

  // The node is drained in Slurm: its GPUs take nothing and say so; nothing is added twice.
  slurm.answer = std::vector<SlurmNode>{node("n1", "drained", {{"v100", 2}})};
  REQUIRE(watch.refresh().is_ok());
  CHECK(handed.size() == 2);
  CHECK(inv.get("slurm:n1:v100:1")->state == DeviceState::kUnavailable);
  CHECK_FALSE(inv.may_claim("slurm:n1:v100:1"));
  CHECK(inv.may_claim("cpu:0"));

  // Slurm does not answer: the devices stay as the last answer left them.
  slurm.answer = Status::unavailable("sinfo exited with 1: Unable to contact slurm controller");
  CHECK(watch.refresh().code() == Status::Code::kUnavailable);
  CHECK(watch.last_error().code() == Status::Code::kUnavailable);
  CHECK(inv.list().size() == 3);
  CHECK(inv.get("slurm:n1:v100:1")->state == DeviceState::kUnavailable);

  // Back, with a new node and one GPU fewer on n1: the new one is added, the missing one unavailable.
  slurm.answer = std::vector<SlurmNode>{node("n1", "mixed", {{"v100", 1}}), node("n2", "idle", {{"a40", 1}})};
  REQUIRE(watch.refresh().is_ok());
  CHECK(watch.last_error().is_ok());
  CHECK(handed.back() == "slurm:n2:a40:0");
  CHECK(inv.get("slurm:n1:v100:0")->state == DeviceState::kIdle);
  CHECK(inv.get("slurm:n1:v100:1")->state == DeviceState::kUnavailable);
  CHECK(inv.get("slurm:n2:a40:0")->profile == "A40");  // no A100 profile: V100 would be the fallback
}

TEST_CASE("cluster watch: an admin's drain and Slurm's state are kept apart") {
  ManualClock clock;
  DeviceInventory inv(one_cpu(clock), clock, {"slurm:n1:v100:0"});  // drained before a restart
  FakeSlurm slurm;
  slurm.answer = std::vector<SlurmNode>{node("n1", "idle", {{"v100", 1}})};
  ClusterWatch watch(slurm, inv, clock, {}, nullptr);
  REQUIRE(watch.refresh().is_ok());
  CHECK(inv.get("slurm:n1:v100:0")->state == DeviceState::kDrained);
  REQUIRE(inv.resume("slurm:n1:v100:0").ok());
  slurm.answer = std::vector<SlurmNode>{node("n1", "down*", {{"v100", 1}})};
  REQUIRE(watch.refresh().is_ok());
  CHECK(inv.get("slurm:n1:v100:0")->state == DeviceState::kUnavailable);
  // A busy device whose node goes away shows busy: its round ends by its own deadline.
  slurm.answer = std::vector<SlurmNode>{node("n1", "idle", {{"v100", 1}})};
  REQUIRE(watch.refresh().is_ok());
  inv.group_claimed("slurm:n1:v100:0", "grp_1");
  slurm.answer = std::vector<SlurmNode>{node("n1", "down*", {{"v100", 1}})};
  REQUIRE(watch.refresh().is_ok());
  CHECK(inv.get("slurm:n1:v100:0")->state == DeviceState::kBusy);
  CHECK_FALSE(inv.may_claim("slurm:n1:v100:0"));
}

TEST_CASE("cluster watch: start() asks at once and then on its period") {
  ManualClock clock;
  DeviceInventory inv(one_cpu(clock), clock);
  FakeSlurm slurm;
  slurm.answer = std::vector<SlurmNode>{node("n1", "idle", {{"v100", 1}})};
  ClusterWatchOptions o;
  o.period_ms = 5;
  ClusterWatch watch(slurm, inv, clock, o, nullptr);
  REQUIRE(watch.start().is_ok());
  CHECK(inv.list().size() == 2);  // the first answer is applied before start() returns
  for (int i = 0; i < 2000; ++i) {
    {
      std::lock_guard lock(slurm.mu);
      if (slurm.asked >= 3) break;
    }
    std::this_thread::yield();
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  watch.stop();
  std::lock_guard lock(slurm.mu);
  CHECK(slurm.asked >= 3);
}

TEST_CASE("reported meter: a cluster GPU's work unit is the energy its worker reported") {
  ManualClock clock;
  std::vector<MeteredDevice> devices(1);
  devices[0].device = Device{"slurm:n1:v100:0", "cuda", "n1", "gpu:v100"};
  devices[0].meter = std::make_unique<ReportedMeter>();
  devices[0].profile = "V100";
  DeviceInventory inv(std::move(devices), clock);
  CHECK(inv.get("slurm:n1:v100:0")->meter == "model");
  inv.unit_started("slurm:n1:v100:0", "grp_1", 1);
  clock.advance_ms(5000);  // the round's time passes: a reported meter adds nothing by itself
  REQUIRE(inv.add_reported_energy("slurm:n1:v100:0", 812.5, "nvml", 5.0).is_ok());
  CHECK(inv.get("slurm:n1:v100:0")->power_watts == Approx(162.5));
  auto unit = inv.unit_finished("slurm:n1:v100:0");
  REQUIRE(unit);
  CHECK(unit->joules == 812.5);
  CHECK(unit->meter == "nvml");
  CHECK(inv.get("slurm:n1:v100:0")->power_watts == 0);  // idle
  CHECK(inv.add_reported_energy("slurm:n1:v100:0", -1, "nvml", 1).code() == Status::Code::kInvalidArgument);
  CHECK(inv.add_reported_energy("cuda:9", 1, "nvml", 1).code() == Status::Code::kNotFound);
  // A device that measures itself takes no reports.
  DeviceInventory local(one_cpu(clock), clock);
  CHECK(local.add_reported_energy("cpu:0", 1, "model", 1).code() == Status::Code::kFailedPrecondition);
}

TEST_CASE("reported meter: placement's power limit is kept for the worker, within the profile's range") {
  ManualClock clock;
  auto v100 = find_power_profile("V100");
  REQUIRE(v100.ok());
  REQUIRE(v100->has_power_limits());
  std::vector<MeteredDevice> devices(1);
  devices[0].device = Device{"slurm:n1:v100:0", "cuda", "n1", "gpu:v100"};
  devices[0].meter = std::make_unique<ReportedMeter>("model", *v100);
  devices[0].profile = "V100";
  DeviceInventory inv(std::move(devices), clock);
  auto limits = inv.get("slurm:n1:v100:0")->power_limits;
  REQUIRE(limits);
  CHECK(limits->current_watts == v100->max_limit_watts());
  CHECK(limits->min_watts == v100->min_limit_watts());
  // The energy policy chose 60 % of the highest limit for the group; its release puts it back.
  inv.group_claimed("slurm:n1:v100:0", "grp_1");
  REQUIRE(inv.set_power_limit_fraction("slurm:n1:v100:0", 0.6).is_ok());
  CHECK(inv.get("slurm:n1:v100:0")->power_limits->current_watts ==
        Approx(std::max(0.6 * v100->max_limit_watts(), v100->min_limit_watts())));
  inv.group_released("slurm:n1:v100:0");
  CHECK(inv.get("slurm:n1:v100:0")->power_limits->current_watts == v100->max_limit_watts());
  // Without a profile of limits there is nothing to set.
  ReportedMeter bare;
  CHECK(!bare.power_limits());
  CHECK(bare.set_power_limit(100).code() == Status::Code::kFailedPrecondition);
}
