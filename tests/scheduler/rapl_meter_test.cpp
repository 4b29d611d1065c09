#include "scheduler/energy/rapl_meter.h"

#include <unistd.h>

#include <catch2/catch.hpp>
#include <filesystem>
#include <fstream>

#include "tests/support/temp_dir.h"

using namespace mufl;
using namespace mufl::scheduler;
using mufl::testing::TempDir;

namespace {

// A fake powercap tree: intel-rapl:<i> with name, energy_uj and max_energy_range_uj.
void write(const std::string& path, const std::string& text) {
  std::filesystem::create_directories(std::filesystem::path(path).parent_path());
  std::ofstream(path) << text << "\n";
}
void domain(const TempDir& dir, const std::string& id, const std::string& name, uint64_t uj, uint64_t range) {
  write(dir.file(id + "/name"), name);
  write(dir.file(id + "/energy_uj"), std::to_string(uj));
  write(dir.file(id + "/max_energy_range_uj"), std::to_string(range));
}
void set_uj(const TempDir& dir, const std::string& id, uint64_t uj) { write(dir.file(id + "/energy_uj"), std::to_string(uj)); }

}  // namespace

TEST_CASE("rapl: package counters are summed, parts and psys left out") {
  TempDir dir;
  ManualClock clock;
  domain(dir, "intel-rapl:0", "package-0", 1'000'000, 262'143'328'850);
  domain(dir, "intel-rapl:1", "package-1", 5'000'000, 262'143'328'850);
  domain(dir, "intel-rapl:0:0", "core", 0, 262'143'328'850);  // a part of package 0
  domain(dir, "intel-rapl:2", "psys", 0, 262'143'328'850);    // the platform: would count twice
  auto rapl = RaplPackages::open(dir.path(), 1, clock);
  REQUIRE(rapl.ok());
  CHECK((*rapl)->domain_names() == std::vector<std::string>{"package-0", "package-1"});
  auto meter = (*rapl)->slot_meter(0);
  CHECK(meter->name() == "rapl");
  CHECK(meter->energy_joules() == 0);
  set_uj(dir, "intel-rapl:0", 3'000'000);    // +2 J
  set_uj(dir, "intel-rapl:1", 6'500'000);    // +1.5 J
  set_uj(dir, "intel-rapl:0:0", 99'000'000); // ignored
  set_uj(dir, "intel-rapl:2", 99'000'000);   // ignored
  clock.advance_ms(1'000);
  CHECK(meter->energy_joules() == Approx(3.5));
  CHECK(meter->power_watts() == Approx(3.5));  // 3.5 J over the 1 s window
}

TEST_CASE("rapl: a counter that wraps at max_energy_range_uj keeps the count monotonic") {
  TempDir dir;
  ManualClock clock;
  domain(dir, "intel-rapl:0", "package-0", 9'000'000, 10'000'000);  // 1 J below the wrap
  auto rapl = RaplPackages::open(dir.path(), 1, clock);
  REQUIRE(rapl.ok());
  auto meter = (*rapl)->slot_meter(0);
  set_uj(dir, "intel-rapl:0", 9'500'000);
  CHECK(meter->energy_joules() == Approx(0.5));
  set_uj(dir, "intel-rapl:0", 2'000'000);  // wrapped: 0.5 J to the top, then 2 J
  CHECK(meter->energy_joules() == Approx(3.0));
  set_uj(dir, "intel-rapl:0", 2'250'000);
  CHECK(meter->energy_joules() == Approx(3.25));
}

TEST_CASE("rapl: the package's energy is split between CPU slots by busy time") {
  TempDir dir;
  ManualClock clock;
  domain(dir, "intel-rapl:0", "package-0", 0, 1'000'000'000);
  auto rapl = RaplPackages::open(dir.path(), 2, clock);
  REQUIRE(rapl.ok());
  auto a = (*rapl)->slot_meter(0), b = (*rapl)->slot_meter(1);
  set_uj(dir, "intel-rapl:0", 10'000'000);  // 10 J while both idle: 5 J each
  CHECK(a->energy_joules() == Approx(5));
  CHECK(b->energy_joules() == Approx(5));
  a->set_busy(true);
  set_uj(dir, "intel-rapl:0", 16'000'000);  // 6 J with a busy alone: all to a
  CHECK(a->energy_joules() == Approx(11));
  CHECK(b->energy_joules() == Approx(5));
  b->set_busy(true);
  set_uj(dir, "intel-rapl:0", 20'000'000);  // 4 J with both busy: 2 J each
  a->set_busy(false);
  set_uj(dir, "intel-rapl:0", 21'000'000);  // 1 J with b busy alone
  CHECK(a->energy_joules() == Approx(13));
  CHECK(b->energy_joules() == Approx(8));
  CHECK((*rapl)->total_joules() == Approx(21));  // the slots add up to the package
}

TEST_CASE("rapl: no package, unreadable or malformed counters are refused") {
  ManualClock clock;
  {
    TempDir dir;
    CHECK(RaplPackages::open(dir.path(), 1, clock).status().code() == Status::Code::kNotFound);
    CHECK(RaplPackages::open(dir.file("missing"), 1, clock).status().code() == Status::Code::kNotFound);
  }
  {
    TempDir dir;
    domain(dir, "intel-rapl:0", "package-0", 0, 1000);
    write(dir.file("intel-rapl:0/energy_uj"), "abc");
    CHECK(RaplPackages::open(dir.path(), 1, clock).status().code() == Status::Code::kInvalidArgument);
    CHECK(RaplPackages::open(dir.path(), 0, clock).status().code() == Status::Code::kInvalidArgument);
  }
  if (::geteuid() != 0) {  // root reads files whatever their mode
    TempDir dir;
    domain(dir, "intel-rapl:0", "package-0", 0, 1000);
    std::filesystem::permissions(dir.file("intel-rapl:0/energy_uj"), std::filesystem::perms::none);
    CHECK(RaplPackages::open(dir.path(), 1, clock).status().code() == Status::Code::kPermissionDenied);
  }
}
