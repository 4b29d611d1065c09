// A full disk is an ordinary, recoverable event (issue 13): the real mufld on a small tmpfs
// that fills up mid-training. Writes get 507 (/problems/insufficient-storage, Retry-After),
// reads keep working, /readyz says 503 naming storage, the training group waits with reason
// `storage`; once space is freed everything carries on by itself, every acknowledged activity
// is there, and the trained one ends with the metrics of an unbroken run.
//
// Needs to mount a tmpfs (root with CAP_SYS_ADMIN, as CI runs); elsewhere it warns and ends.
#include <catch2/catch.hpp>

#include <signal.h>
#include <sys/mount.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <set>
#include <thread>

#include "tests/support/http_client.h"
#include "tests/support/json_poll.h"
#include "tests/support/mufld_process.h"
#include "tests/support/temp_dir.h"

using namespace mufl::testing;
using nlohmann::json;

namespace {

const std::string kAdmin = "disk-full-admin";
const std::vector<std::string> kArgs = {"--devices", "cpu:1", "--torch-threads", "1", "--storage-retry-max", "2"};

json activity_body(const std::string& name, int rounds) {
  return {{"name", name}, {"dataset", "synthetic"}, {"task", "class"}, {"rounds", rounds},
          {"clients", 4},  {"clients_per_round", 2},  {"seed", 9}};
}

// A tmpfs of `mib` MiB mounted on a fresh directory, unmounted at the end.
class SmallDisk {
 public:
  explicit SmallDisk(int mib) : path_(dir_.file("mnt")) {
    std::filesystem::create_directory(path_);
    const std::string options = "size=" + std::to_string(mib) + "m,mode=0700";
    mounted_ = ::mount("tmpfs", path_.c_str(), "tmpfs", 0, options.c_str()) == 0;
    if (!mounted_) error_ = std::strerror(errno);
  }
  ~SmallDisk() {
    if (mounted_) ::umount2(path_.c_str(), MNT_DETACH);
  }
  bool mounted() const { return mounted_; }
  const std::string& error() const { return error_; }
  const std::string& path() const { return path_; }

  // Fills the disk with a file until the device refuses more; returns the bytes written.
  size_t fill() {
    std::FILE* f = std::fopen((path_ + "/filler").c_str(), "wb");
    REQUIRE(f);
    std::vector<char> block(64 * 1024, 'x');
    size_t written = 0;
    while (true) {
      const size_t n = std::fwrite(block.data(), 1, block.size(), f);
      written += n;
      if (n < block.size() || std::fflush(f) != 0) break;
    }
    std::fclose(f);
    return written;
  }
  void free_space() { std::filesystem::remove(path_ + "/filler"); }

 private:
  TempDir dir_;
  std::string path_;
  bool mounted_ = false;
  std::string error_;
};

std::vector<json> round_metrics(HttpClient& c, const std::string& id, const std::string& token) {
  std::vector<json> out;
  std::string cursor;
  do {
    const json page = get(c, "/v1/activities/" + id + "/rounds" + (cursor.empty() ? "" : "?cursor=" + cursor), token);
    for (const auto& r : page["items"])
      out.push_back({{"round", r["round"]}, {"train_loss", r["train_loss"]}, {"metrics", r["metrics"]}});
    cursor = page.value("next_cursor", json()).is_string() ? page["next_cursor"].get<std::string>() : "";
  } while (!cursor.empty());
  return out;
}

bool ended(const json& a) { return a["state"] == "succeeded" || a["state"] == "failed" || a["state"] == "cancelled"; }

}  // namespace

TEST_CASE("e2e disk full: 507 for writes, reads work, training waits for storage and finishes once space returns") {
  SmallDisk disk(12);
  if (!disk.mounted()) {
    WARN("cannot mount a tmpfs (" << disk.error() << "): the disk-full test needs root with CAP_SYS_ADMIN");
    return;
  }
  // The unbroken run, on an ordinary disk.
  std::vector<json> expected;
  {
    TempDir plain;
    MufldProcess mufld(MUFLD_PATH, plain.path(), kAdmin, kArgs);
    HttpClient c("127.0.0.1", mufld.port());
    const std::string token = json::parse(c.post("/v1/tenants", R"({"name":"plain"})", kAdmin).body)["token"];
    const std::string id = json::parse(c.post("/v1/activities", activity_body("t", 8).dump(), token).body)["id"];
    wait_for(c, "/v1/activities/" + id, token, ended);
    expected = round_metrics(c, id, token);
    REQUIRE(expected.size() == 8);
  }

  MufldProcess mufld(MUFLD_PATH, disk.path(), kAdmin, kArgs);
  HttpClient c("127.0.0.1", mufld.port());
  auto t = c.post("/v1/tenants", R"({"name":"full"})", kAdmin);
  REQUIRE(t.status == 201);
  const std::string token = json::parse(t.body)["token"];
  const std::string id = json::parse(c.post("/v1/activities", activity_body("t", 8).dump(), token).body)["id"];
  wait_for(c, "/v1/activities/" + id, token, [](const json& a) { return a.at("progress").at("round").get<int>() >= 2; });

  REQUIRE(disk.fill() > 0);
  // Writes: each either commits (an acknowledged 201 that must survive) or is refused with 507.
  std::set<std::string> acknowledged;
  ClientResponse refused;
  for (int i = 0; i < 400 && refused.status != 507; ++i) {
    auto r = c.post("/v1/activities", activity_body("w" + std::to_string(i), 1).dump(), token);
    REQUIRE((r.status == 201 || r.status == 507));
    if (r.status == 201) acknowledged.insert(json::parse(r.body)["id"].get<std::string>());
    else refused = r;
  }
  REQUIRE(refused.status == 507);
  const json problem = json::parse(refused.body);
  CHECK(problem["type"] == "/problems/insufficient-storage");
  CHECK(refused.header("retry-after") == "30");
  CHECK_THAT(problem["detail"].get<std::string>(), !Catch::Contains(disk.path()));  // no paths to tenants

  // Reads work; /readyz names the cause; the group, once its device is released (a write
  // that the full database may refuse too; the executor retries it), waits for storage.
  CHECK(c.get("/v1/activities/" + id, token).status == 200);
  ClientResponse ready;
  json during;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(120);
  while (std::chrono::steady_clock::now() < deadline) {
    ready = c.get("/readyz");
    during = get(c, "/v1/activities/" + id, token);
    if (ready.status == 503) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  CHECK(ready.status == 503);
  CHECK(ready.header("retry-after") == "5");
  CHECK_THAT(ready.body, Catch::Contains("storage"));
  if (during["progress"]["device"].is_null()) CHECK(during["waiting_reason"] == "storage");
  CHECK(during["state"] != "failed");

  disk.free_space();
  const json done = wait_for(c, "/v1/activities/" + id, token, ended, 240);
  CHECK(done["state"] == "succeeded");
  CHECK(round_metrics(c, id, token) == expected);
  CHECK(c.get("/readyz").status == 200);
  CHECK(c.post("/v1/activities", activity_body("after", 1).dump(), token).status == 201);
  // Nothing acknowledged was lost, also across a restart.
  mufld.stop(SIGKILL);
  mufld.start();
  HttpClient again("127.0.0.1", mufld.port());
  for (const auto& a : acknowledged) CHECK(again.get("/v1/activities/" + a, token).status == 200);
}
