// kill -9 in every window of a round's end (issue 13, "crash-exact"): the real mufld trains a
// merged group of four activities (one round of consolidation, a split into two groups, two
// rounds more), and dies by SIGKILL right after one step (MUFL_CRASH_AT,
// core/crash_point_env.h): after a checkpoint's write, after its rename, after the round's
// commit, after a split child's checkpoint. Started again on the same data dir, every
// activity finishes with exactly the metrics of an unbroken run. A damaged checkpoint on disk
// falls back to the one before. (The model file's windows and failed steps are in
// tests/scheduler/executor_faults_test.cpp.)
#include <catch2/catch.hpp>

#include <signal.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "tests/support/http_client.h"
#include "tests/support/json_poll.h"
#include "tests/support/mufld_process.h"
#include "tests/support/temp_dir.h"

using namespace mufl::testing;
using nlohmann::json;

namespace {

const std::string kAdmin = "crash-window-admin";
const std::vector<std::string> kArgs = {"--devices", "cpu:1", "--torch-threads", "1", "--merge-window", "1",
                                        "--affinity-every", "4", "--consolidation-fraction", "0.25"};

struct Run {
  std::vector<std::string> ids;  // one per task
  std::string token;
};

// Creates a tenant and submits the four activities (they merge: same data set and clients; the
// split after round 1 makes two groups of two).
Run submit(HttpClient& c) {
  auto t = c.post("/v1/tenants", R"({"name":"crashy"})", kAdmin);
  REQUIRE(t.status == 201);
  Run run{{}, json::parse(t.body)["token"]};
  for (const char* task : {"class", "segment", "edges", "distance"}) {
    json body = {{"name", task}, {"dataset", "synthetic"}, {"task", task}, {"rounds", 3},
                 {"clients", 4},  {"clients_per_round", 2}, {"seed", 5}};
    auto r = c.post("/v1/activities", body.dump(), run.token);
    REQUIRE(r.status == 201);
    run.ids.push_back(json::parse(r.body)["id"]);
  }
  return run;
}

// Each activity's rounds without what differs from run to run (ids, devices, times).
std::vector<json> metrics(HttpClient& c, const Run& run) {
  std::vector<json> out;
  for (const auto& id : run.ids) {
    wait_for(c, "/v1/activities/" + id, run.token, [](const json& a) { return a["state"] != "queued" &&
                                                                              a["state"] != "training" &&
                                                                              a["state"] != "consolidating"; });
    const json a = get(c, "/v1/activities/" + id, run.token);
    CHECK(a["state"] == "succeeded");
    json rounds = json::array();
    std::string cursor;
    do {  // every page, if the list is paginated
      const json page = get(c, "/v1/activities/" + id + "/rounds" + (cursor.empty() ? "" : "?cursor=" + cursor),
                            run.token);
      for (const auto& r : page["items"])
        rounds.push_back({{"round", r["round"]}, {"train_loss", r["train_loss"]}, {"metrics", r["metrics"]}});
      cursor = page.value("next_cursor", json()).is_string() ? page["next_cursor"].get<std::string>() : "";
    } while (!cursor.empty());
    out.push_back(rounds);
  }
  return out;
}

const std::vector<json>& unbroken() {
  static const std::vector<json> expected = [] {
    TempDir dir;
    MufldProcess mufld(MUFLD_PATH, dir.path(), kAdmin, kArgs);
    HttpClient c("127.0.0.1", mufld.port());
    const Run run = submit(c);
    return metrics(c, run);
  }();
  return expected;
}

// The group checkpoint files under the data dir, newest round last within each group.
std::vector<std::filesystem::path> checkpoint_files(const std::string& data_dir) {
  std::vector<std::filesystem::path> out;
  for (const auto& e : std::filesystem::recursive_directory_iterator(data_dir + "/groups"))
    if (e.path().filename().string().rfind("checkpoint-", 0) == 0) out.push_back(e.path());
  std::sort(out.begin(), out.end());
  return out;
}

}  // namespace

TEST_CASE("e2e crash windows: kill -9 after each step of a round's end, and the restart ends as an unbroken run") {
  const auto& expected = unbroken();
  REQUIRE(expected.size() == 4);
  REQUIRE(expected[0].size() == 3);
  // Round 1 consolidates (checkpoint-1.pt of the merged group), the split writes each child's
  // checkpoint-1.pt, and the children train rounds 2 and 3; the executor lists a group's
  // directory (to prune it) right after each round's commit.
  for (const std::string point :
       {"write:checkpoint-2.pt", "rename:checkpoint-2.pt", "list:/groups/:2", "rename:checkpoint-1.pt:2"}) {
    DYNAMIC_SECTION("MUFL_CRASH_AT=" << point) {
      TempDir dir;
      MufldProcess mufld(MUFLD_PATH, dir.path(), kAdmin, kArgs, {"MUFL_CRASH_AT=" + point});
      HttpClient c("127.0.0.1", mufld.port());
      const Run run = submit(c);
      REQUIRE(mufld.wait_exit(180) == 128 + SIGKILL);
      mufld.set_env({});
      mufld.start();
      HttpClient again("127.0.0.1", mufld.port());
      CHECK(metrics(again, run) == expected);
    }
  }
}

TEST_CASE("e2e crash windows: a damaged checkpoint falls back to the one before it") {
  const auto& expected = unbroken();
  TempDir dir;
  // Dies right after the third commit (a child's round 2); its newest checkpoint is then damaged.
  MufldProcess mufld(MUFLD_PATH, dir.path(), kAdmin, kArgs, {"MUFL_CRASH_AT=list:/groups/:3"});
  HttpClient c("127.0.0.1", mufld.port());
  const Run run = submit(c);
  REQUIRE(mufld.wait_exit(180) == 128 + SIGKILL);
  auto files = checkpoint_files(dir.path());
  REQUIRE_FALSE(files.empty());
  const auto newest = *std::max_element(files.begin(), files.end(), [](const auto& a, const auto& b) {
    return std::filesystem::last_write_time(a) < std::filesystem::last_write_time(b);
  });
  {
    std::fstream f(newest, std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(static_cast<std::streamoff>(std::filesystem::file_size(newest) / 2));
    f.put('\x5a');
  }
  mufld.set_env({});
  mufld.start();
  HttpClient again("127.0.0.1", mufld.port());
  CHECK(metrics(again, run) == expected);
}
