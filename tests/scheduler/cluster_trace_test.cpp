#include "scheduler/sim/cluster_trace.h"

#include <catch2/catch.hpp>
#include <fstream>

#include "tests/support/temp_dir.h"

using namespace mufl;
using namespace mufl::scheduler;

namespace {
const char* kPodHeader =
    "name,cpu_milli,memory_mib,num_gpu,gpu_milli,gpu_spec,qos,pod_phase,creation_time,deletion_time,scheduled_time\n";
std::string write(const testing::TempDir& dir, const std::string& name, const std::string& body) {
  std::ofstream(dir.file(name), std::ios::binary) << body;
  return dir.file(name);
}
}  // namespace

TEST_CASE("cluster_trace: pods with shares, whole GPUs, specs and a never-scheduled pod") {
  testing::TempDir dir;
  std::string body = std::string(kPodHeader) +
                     "p0,12000,16384,1,460,,LS,Running,10,1010,15\n"
                     "p1,8000,1024,8,1000,V100M32|G2,BE,Failed,20,120,20\r\n"  // CRLF row
                     "p2,100,10,0,0,,Burstable,Succeeded,30,40,30\n"
                     "p3,100,10,1,1000,,BE,Pending,50,175,\n"
                     "\n";
  auto pods = read_trace_pods(write(dir, "pods.csv", body));
  REQUIRE(pods.ok());
  REQUIRE(pods->size() == 4);
  const TracePod& p0 = (*pods)[0];
  CHECK(p0.name == "p0");
  CHECK(p0.num_gpu == 1);
  CHECK(p0.gpu_milli == 460);
  CHECK(p0.cpu_milli == 12000);
  CHECK(p0.qos == "LS");
  CHECK(p0.duration_s() == 995);  // deletion − scheduled
  CHECK((*pods)[1].gpu_spec == std::vector<std::string>{"V100M32", "G2"});
  CHECK((*pods)[1].duration_s() == 100);
  CHECK((*pods)[2].num_gpu == 0);
  CHECK_FALSE((*pods)[3].scheduled_s.has_value());
  CHECK((*pods)[3].duration_s() == 125);  // deletion − creation when never scheduled
}

TEST_CASE("cluster_trace: bad pod files name the file and line") {
  testing::TempDir dir;
  CHECK(read_trace_pods(dir.file("none.csv")).status().is_not_found());
  struct Case {
    std::string body;
    const char* needle;
  };
  std::vector<Case> cases = {
      {"name,cpu_milli\np,1\n", ":1: missing column 'memory_mib'"},
      {std::string(kPodHeader) + "p,1,2,1,1000,,LS,Running,0,10\n", ":2: expected 11 fields, found 10"},
      {std::string(kPodHeader) + "p,x,2,1,1000,,LS,Running,0,10,0\n", ":2: bad cpu_milli 'x'"},
      {std::string(kPodHeader) + "p,1,2,1,1000,,LS,Running,0,10,0\np,1,2,1,1500,,LS,Running,0,10,0\n",
       ":3: gpu_milli 1500 out of range"},
      {std::string(kPodHeader) + "p,1,2,1.5,1000,,LS,Running,0,10,0\n", ":2: bad num_gpu '1.5'"},
      {std::string(kPodHeader) + "p,1,2,1,1000,,LS,Running,,10,0\n", ":2: empty creation_time"},
      {std::string(kPodHeader) + "p,1,2,1,1000,,LS,Running,50,10,0\n", ":2: deletion_time before creation_time"},
      {std::string(kPodHeader) + "p,-1,2,1,1000,,LS,Running,0,10,0\n", ":2: bad cpu_milli '-1'"},
  };
  int i = 0;
  for (const Case& k : cases) {
    const std::string name = "bad" + std::to_string(i++) + ".csv";
    INFO(k.body);
    auto r = read_trace_pods(write(dir, name, k.body));
    REQUIRE_FALSE(r.ok());
    CHECK(r.status().is_invalid_argument());
    CHECK(r.status().message().find(name) != std::string::npos);
    CHECK(r.status().message().find(k.needle) != std::string::npos);
  }
}

TEST_CASE("cluster_trace: nodes, and bad node files") {
  testing::TempDir dir;
  auto nodes = read_trace_nodes(write(dir, "n.csv", "sn,cpu_milli,memory_mib,gpu,model\nn0,64000,262144,2,P100\nn1,96000,1,8,G2\n"));
  REQUIRE(nodes.ok());
  REQUIRE(nodes->size() == 2);
  CHECK((*nodes)[0].name == "n0");
  CHECK((*nodes)[0].gpus == 2);
  CHECK((*nodes)[1].model == "G2");
  auto bad = read_trace_nodes(write(dir, "b.csv", "sn,cpu_milli,memory_mib,gpu,model\nn0,1,1,2,\n"));
  REQUIRE_FALSE(bad.ok());
  CHECK(bad.status().message().find("b.csv:2: empty model") != std::string::npos);
  auto col = read_trace_nodes(write(dir, "c.csv", "sn,cpu,memory_mib,gpu,model\n"));
  CHECK(col.status().message().find("c.csv:1: missing column 'cpu_milli'") != std::string::npos);
}

TEST_CASE("cluster_trace: the shipped Alibaba files") {
  const std::string dir = std::string(MUFL_SOURCE_DIR) + "/data/alibaba-gpu-v2023/";
  auto pods = read_trace_pods(dir + "openb_pod_list_default.csv");
  REQUIRE(pods.ok());
  CHECK(pods->size() == 8152);
  size_t pending = 0;
  for (const TracePod& p : *pods) pending += p.scheduled_s ? 0 : 1;
  CHECK(pending == 897);
  auto nodes = read_trace_nodes(dir + "openb_node_list_gpu_node.csv");
  REQUIRE(nodes.ok());
  CHECK(nodes->size() == 1213);
  int gpus = 0;
  for (const TraceNode& n : *nodes) gpus += n.gpus;
  CHECK(gpus == 6212);
}
