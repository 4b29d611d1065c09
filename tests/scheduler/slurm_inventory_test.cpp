// The Slurm inventory parser (issue 16): sinfo's node lines and GRES strings as Slurm 22.05
// prints them, and the malformed lines a broken or other sinfo could print.
#include "scheduler/cluster/slurm_inventory.h"

#include <catch2/catch.hpp>

using namespace mufl::scheduler;
using Gpus = std::map<std::string, int64_t>;

TEST_CASE("slurm inventory: GRES strings give GPUs by type, other resources are ignored") {
  CHECK(*parse_gpu_gres("gpu:v100:4") == Gpus{{"v100", 4}});
  CHECK(*parse_gpu_gres("gpu:4") == Gpus{{"gpu", 4}});
  CHECK(*parse_gpu_gres("gpu") == Gpus{{"gpu", 1}});
  CHECK(*parse_gpu_gres("gpu:a100:2(S:0-1)") == Gpus{{"a100", 2}});
  CHECK(*parse_gpu_gres("gpu:a100:2(S:0-1),gpu:v100:2,shard:8") == Gpus{{"a100", 2}, {"v100", 2}});
  CHECK(*parse_gpu_gres("gpu:v100:2(IDX:0,2),gpu:v100:1(IDX:3)") == Gpus{{"v100", 3}});  // commas inside ()
  CHECK(parse_gpu_gres("(null)")->empty());
  CHECK(parse_gpu_gres("  ")->empty());
  CHECK(parse_gpu_gres("mps:100,license:2")->empty());
  auto bad = parse_gpu_gres("gpu:v100:four");
  REQUIRE_FALSE(bad.ok());
  CHECK(bad.status().is_invalid_argument());
  CHECK_THAT(bad.status().message(), Catch::Contains("gpu:v100:four"));
}

TEST_CASE("slurm inventory: sinfo's node lines become nodes, one per name, with their partitions merged") {
  const std::string text =
      "node1|debug*|idle|2|1000|gpu:fake:2|gpu:fake:0(IDX:N/A)\n"
      "node1|gpu|idle|2|1000|gpu:fake:2|gpu:fake:0(IDX:N/A)\n"
      "gpu-a|gpu|mixed|64|512000|gpu:a100:4(S:0-1),gpu:v100:2|gpu:a100:1(IDX:0)\n"
      "\n"
      "cpu-7|debug*|drained*|32|128000|(null)|(null)\n";
  auto nodes = parse_sinfo_nodes(text);
  REQUIRE(nodes.ok());
  REQUIRE(nodes->size() == 3);
  const SlurmNode& n1 = (*nodes)[0];
  CHECK(n1.name == "node1");
  CHECK(n1.partitions == std::vector<std::string>{"debug", "gpu"});
  CHECK(n1.state == "idle");
  CHECK(n1.cpus == 2);
  CHECK(n1.memory_mb == 1000);
  CHECK(n1.gpus == Gpus{{"fake", 2}});
  CHECK(n1.gpus_used == Gpus{{"fake", 0}});
  CHECK(n1.usable());
  const SlurmNode& a = (*nodes)[1];
  CHECK(a.gpus == Gpus{{"a100", 4}, {"v100", 2}});
  CHECK(a.gpus_used == Gpus{{"a100", 1}});
  CHECK(a.usable());  // mixed: some of it is in use, the rest can take work
  const SlurmNode& c = (*nodes)[2];
  CHECK(c.gpus.empty());
  CHECK_FALSE(c.usable());  // drained, and not responding
}

TEST_CASE("slurm inventory: node states that take no work") {
  SlurmNode n;
  for (const char* state : {"idle", "mixed", "allocated", "completing"}) {
    n.state = state;
    CHECK(n.usable());
  }
  for (const char* state : {"down", "drained", "draining", "fail", "failing", "maint", "idle*", "unknown", ""}) {
    n.state = state;
    INFO(state);
    CHECK_FALSE(n.usable());
  }
}

TEST_CASE("slurm inventory: a malformed line is refused, naming it") {
  for (const std::string text : {"node1|debug|idle|2|1000|gpu:2\n",               // 6 fields
                                 "node1|debug|idle|two|1000|gpu:2|(null)\n",       // CPUs
                                 "node1|debug|idle|2|1000|gpu:x:y|(null)\n",       // GRES count
                                 "ok|debug|idle|2|1000|(null)|(null)\n|debug|idle|2|1000|(null)|(null)\n"}) {
    auto r = parse_sinfo_nodes(text);
    INFO(text);
    REQUIRE_FALSE(r.ok());
    CHECK(r.status().is_invalid_argument());
    CHECK_THAT(r.status().message(), Catch::Contains("sinfo line"));
  }
  CHECK(parse_sinfo_nodes("")->empty());
}
