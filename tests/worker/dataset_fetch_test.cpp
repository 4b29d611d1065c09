// A data set's files on a worker's node (worker/dataset_fetch.h): fetched into an empty folder
// and checked, kept when they are already there, and never left in place when what came is not
// mufld's manifest's. Then end to end: mufl-worker's loop fetching from mufld's real routes
// (service/worker_routes.cpp) over HTTP, training on what it fetched, and a second worker job on
// the same node reusing the files.
#include <catch2/catch.hpp>

#include <sys/file.h>
#include <fcntl.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <set>
#include <thread>

#include "core/dataset_files.h"
#include "core/file_io.h"
#include "fl/fl_job.h"
#include "fl/job_wire.h"
#include "service/app.h"
#include "service/http_server.h"
#include "storage/sqlite_store.h"
#include "tenants/token.h"
#include "tests/support/idx_files.h"
#include "tests/support/temp_dir.h"
#include "worker/dataset_fetch.h"
#include "worker/worker_loop.h"

using namespace mufl;
using namespace mufl::worker;
using mufl::testing::TempDir;
using nlohmann::json;
namespace fs = std::filesystem;

namespace {

std::vector<ManifestFile> manifest_of(const std::map<std::string, std::string>& files) {
  std::vector<ManifestFile> out;
  for (const char* name : kIdxFileNames) out.push_back({name, files.at(name).size(), sha256_hex(files.at(name))});
  return out;
}

// A DownloadFile that serves `served` in pieces of 1000 bytes and counts its calls.
struct FakeDownloads {
  std::map<std::string, std::string> served;
  std::vector<std::string> asked;

  DownloadFile fn() {
    return [this](const std::string& file, const std::function<bool(std::string_view)>& on_data) {
      asked.push_back(file);
      const std::string& bytes = served.at(file);
      for (size_t at = 0; at < bytes.size(); at += 1000)
        if (!on_data(std::string_view(bytes).substr(at, 1000))) break;
      return Status::ok();
    };
  }
};

// The folder's entries other than the lock file.
std::set<std::string> entries(const std::string& dir) {
  std::set<std::string> out;
  for (const auto& e : fs::directory_iterator(dir))
    if (e.path().filename() != ".fetch.lock") out.insert(e.path().filename().string());
  return out;
}

std::set<std::string> idx_names() { return {kIdxFileNames.begin(), kIdxFileNames.end()}; }

}  // namespace

TEST_CASE("dataset fetch: --datasets and the manifest are read strictly", "[worker]") {
  CHECK(*parse_dataset_source("auto") == DatasetSource::kAuto);
  CHECK(*parse_dataset_source("shared") == DatasetSource::kShared);
  CHECK(*parse_dataset_source("http") == DatasetSource::kHttp);
  CHECK(parse_dataset_source("nfs").status().is_invalid_argument());
  for (auto s : {DatasetSource::kAuto, DatasetSource::kShared, DatasetSource::kHttp})
    CHECK(*parse_dataset_source(dataset_source_name(s)) == s);

  const auto files = mufl::testing::tiny_idx_files(10, 10);
  json good = {{"dataset", "mnist"}, {"files", json::array()}};
  for (const auto& f : manifest_of(files)) good["files"].push_back({{"name", f.name}, {"bytes", f.bytes}, {"sha256", f.sha256}});
  auto parsed = parse_dataset_manifest(good.dump(), "mnist");
  REQUIRE(parsed.ok());
  CHECK(parsed->size() == 4);
  CHECK(parsed->front().name == "train-images-idx3-ubyte");
  CHECK(parsed->front().bytes == files.at("train-images-idx3-ubyte").size());

  auto with = [&good](const std::function<void(json&)>& change) {
    json j = good;
    change(j);
    return parse_dataset_manifest(j.dump(), "mnist").status();
  };
  CHECK(parse_dataset_manifest("not json", "mnist").status().is_invalid_argument());
  CHECK(parse_dataset_manifest(good.dump(), "fashion-mnist").status().is_invalid_argument());  // another's
  CHECK(with([](json& j) { j["files"].erase(3); }).is_invalid_argument());                    // one missing
  CHECK(with([](json& j) { j["files"][3] = j["files"][2]; }).is_invalid_argument());          // one twice
  CHECK(with([](json& j) { j["files"][0]["name"] = "../../.bashrc"; }).is_invalid_argument());
  CHECK(with([](json& j) { j["files"][0]["name"] = "train-images-idx3-ubyte.part"; }).is_invalid_argument());
  CHECK(with([](json& j) { j["files"][0]["bytes"] = -1; }).is_invalid_argument());
  CHECK(with([](json& j) { j["files"][0]["sha256"] = std::string(64, 'A'); }).is_invalid_argument());
  CHECK(with([](json& j) { j["files"][0].erase("sha256"); }).is_invalid_argument());
  CHECK(with([](json& j) { j["extra"] = 1; }).is_ok());
}

TEST_CASE("dataset fetch: fetches into an empty folder, checks each file, and keeps them on a second call",
          "[worker]") {
  TempDir node;
  const std::string dir = node.path() + "/datasets/mnist";  // does not exist yet
  FakeDownloads mufld{mufl::testing::tiny_idx_files(50, 10), {}};
  const auto manifest = manifest_of(mufld.served);

  auto first = fetch_dataset_files(dir, manifest, mufld.fn());
  REQUIRE(first.ok());
  CHECK(first->files_fetched == 4);
  CHECK(first->files_kept == 0);
  uint64_t total = 0;
  for (const auto& [name, bytes] : mufld.served) {
    CHECK(*read_file(dir + "/" + name) == bytes);
    total += bytes.size();
  }
  CHECK(first->bytes_fetched == total);
  CHECK(entries(dir) == idx_names());  // no .part left
  CHECK(all_files_present(dir, {kIdxFileNames.begin(), kIdxFileNames.end()}));

  auto second = fetch_dataset_files(dir, manifest, mufld.fn());  // another worker job on the node
  REQUIRE(second.ok());
  CHECK(second->files_kept == 4);
  CHECK(second->files_fetched == 0);
  CHECK(mufld.asked.size() == 4);  // nothing downloaded again

  // A file that differs from the manifest (same size, other bytes) is fetched again; the rest kept.
  std::string stale = mufld.served.at("t10k-labels-idx1-ubyte");
  stale.back() ^= 1;
  std::ofstream(dir + "/t10k-labels-idx1-ubyte", std::ios::binary | std::ios::trunc) << stale;
  auto third = fetch_dataset_files(dir, manifest, mufld.fn());
  REQUIRE(third.ok());
  CHECK(third->files_kept == 3);
  CHECK(third->files_fetched == 1);
  CHECK(*read_file(dir + "/t10k-labels-idx1-ubyte") == mufld.served.at("t10k-labels-idx1-ubyte"));
}

TEST_CASE("dataset fetch: a tampered, truncated, overlong or broken download is refused and leaves nothing in place",
          "[worker]") {
  TempDir node;
  const std::string dir = node.path() + "/datasets/mnist";
  FakeDownloads mufld{mufl::testing::tiny_idx_files(50, 10), {}};
  const auto manifest = manifest_of(mufld.served);
  const std::string name = "train-images-idx3-ubyte";
  std::string& served = mufld.served.at(name);
  const std::string good = served;

  SECTION("tampered: another SHA-256") {
    served[5000] ^= 1;
    auto r = fetch_dataset_files(dir, manifest, mufld.fn());
    CHECK(r.status().is_invalid_argument());
    CHECK(r.status().message().find("SHA-256") != std::string::npos);
  }
  SECTION("truncated") {
    served.resize(served.size() - 1);
    auto r = fetch_dataset_files(dir, manifest, mufld.fn());
    CHECK(r.status().is_invalid_argument());
    CHECK(r.status().message().find("cut short") != std::string::npos);
  }
  SECTION("overlong: the download is stopped") {
    served += std::string(5000, 'x');
    auto r = fetch_dataset_files(dir, manifest, mufld.fn());
    CHECK(r.status().is_invalid_argument());
    CHECK(r.status().message().find("more than the manifest's") != std::string::npos);
  }
  SECTION("the connection breaks halfway") {
    DownloadFile broken = [&](const std::string& file, const std::function<bool(std::string_view)>& on_data) {
      const std::string& bytes = mufld.served.at(file);
      if (file != name) {
        on_data(bytes);
        return Status::ok();
      }
      on_data(std::string_view(bytes).substr(0, bytes.size() / 2));
      return Status::unavailable("the connection to mufld broke");
    };
    auto r = fetch_dataset_files(dir, manifest, broken);
    CHECK(r.status().code() == Status::Code::kUnavailable);
    CHECK(r.status().message() == "the connection to mufld broke");
  }
  // The file is not in place, and no part of it is left; the files before it are whole.
  CHECK_FALSE(fs::exists(dir + "/" + name));
  CHECK(entries(dir).empty());  // it is the first file: nothing else was fetched

  // A later fetch from a good mufld completes the folder.
  served = good;
  auto again = fetch_dataset_files(dir, manifest, mufld.fn());
  REQUIRE(again.ok());
  CHECK(again->files_fetched == 4);
  CHECK(*read_file(dir + "/" + name) == good);
}

TEST_CASE("dataset fetch: a refused token ends the fetch, and a fetch in progress elsewhere means trying later", "[worker]") {
  TempDir node;
  const std::string dir = node.path() + "/datasets/mnist";
  FakeDownloads mufld{mufl::testing::tiny_idx_files(20, 10), {}};
  const auto manifest = manifest_of(mufld.served);

  DownloadFile refused = [](const std::string&, const std::function<bool(std::string_view)>&) {
    return Status::permission_denied("mufld refused the download (HTTP 401)");
  };
  CHECK(fetch_dataset_files(dir, manifest, refused).status().code() == Status::Code::kPermissionDenied);
  CHECK(entries(dir).empty());

  // Another worker job on the node holds the folder's lock: nothing is downloaded, try later.
  const int held = ::open((dir + "/.fetch.lock").c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  REQUIRE(held >= 0);
  REQUIRE(::flock(held, LOCK_EX | LOCK_NB) == 0);
  auto busy = fetch_dataset_files(dir, manifest, mufld.fn());
  CHECK(busy.status().code() == Status::Code::kUnavailable);
  CHECK(busy.status().message().find("another worker job on this node") != std::string::npos);
  CHECK(mufld.asked.empty());
  ::close(held);  // its fetch ended
  CHECK(fetch_dataset_files(dir, manifest, mufld.fn())->files_fetched == 4);
}

namespace {

// mufld as far as workers see it: the real App (its worker routes and WorkerDesk) behind a real
// HttpServer on a loopback port, with tiny MNIST files in its data dir.
struct LiveMufld {
  TempDir data;
  std::map<std::string, std::string> files = mufl::testing::write_tiny_idx_files(data.path() + "/datasets/mnist", 120, 40);
  ManualClock clock;
  SeededRandom rng{5};
  std::unique_ptr<storage::SqliteStore> store;
  std::unique_ptr<service::App> app;
  std::unique_ptr<service::HttpServer> server;
  std::thread runner;

  LiveMufld() {
    storage::StoreOptions o;
    o.path = ":memory:";
    auto s = storage::SqliteStore::open(o, clock);
    REQUIRE(s.ok());
    store = std::move(*s);
    app = std::make_unique<service::App>(*store, clock, rng, tenants::sha256_hex("admin"), tenants::ActivityHooks{},
                                         service::EnergyOptions{}, service::EventStreamOptions{},
                                         service::MetricsEndpointOptions{}, data.path());
    service::HttpServerOptions so;
    so.port = 0;
    so.handle_signals = false;
    server = std::make_unique<service::HttpServer>(so, [this](service::HttpRequest&& r) { return app->handle(std::move(r)); });
    REQUIRE(server->listen().is_ok());
    runner = std::thread([this] { server->run(); });
  }
  ~LiveMufld() {
    server->shutdown();
    runner.join();
  }
};

fl::JobConfig mnist_job() {
  fl::JobConfig c;
  c.dataset = "mnist";
  c.name = "grp_mnist";
  c.tasks = {"class"};
  c.rounds = 2;
  c.clients = 2;
  c.clients_per_round = 1;
  c.batch_size = 16;
  c.seed = 3;
  return c;
}

std::unique_ptr<fl::FlJob> job_on(const std::string& data_dir, const fl::JobConfig& c) {
  fl::RuntimeOptions runtime;
  runtime.data_dir = data_dir;
  runtime.device = "cpu";
  auto job = fl::FlJob::create(c, runtime);
  REQUIRE(job.ok());
  return std::move(*job);
}

struct WorkerRun {
  std::vector<std::string> logs;
  int exit_code = -1;
  std::string log_text() const {
    std::string text;
    for (const auto& l : logs) text += l + "\n";
    return text;
  }
};

// Opens a worker on `mufld`, posts round 1 of `c` from `start`, runs a real WorkerLoop (data sets
// under `node_dir`, as `source` says) until it reports; closes the worker and returns the result.
WorkerRun run_worker(LiveMufld& mufld, const std::string& node_dir, DatasetSource source, const fl::JobConfig& c,
                     const std::string& start, scheduler::WorkerResult* result) {
  auto& desk = mufld.app->workers();
  auto w = desk.open(c.name, "slurm:n1:v100:0");
  scheduler::WorkerRound round;
  round.round = 1;
  round.config_json = fl::job_config_to_json(c).dump();
  round.checkpoint = std::make_shared<const std::string>(start);
  desk.post(w.id, std::move(round));
  WorkerOptions o;
  o.url.host = "127.0.0.1";
  o.url.port = mufld.server->port();
  o.server = "http://127.0.0.1:" + std::to_string(o.url.port);
  o.worker_id = w.id;
  o.token = w.token;
  o.device = "cpu";
  o.poll_wait_seconds = 1;
  o.give_up_seconds = 30;
  o.energy_meter = "model";
  o.host = "n1";
  o.data_dir = node_dir;
  o.datasets = source;
  WorkerRun run;
  WorkerLoop loop(o, [&run](const std::string& line) { run.logs.push_back(line); });
  std::thread worker([&] { run.exit_code = loop.run(); });
  auto got = desk.wait(w.id, std::chrono::steady_clock::now() + std::chrono::seconds(120), nullptr);
  desk.close(w.id);  // its next poll gets 410: the loop ends
  worker.join();
  INFO(run.log_text());
  REQUIRE(got.ok());
  *result = std::move(*got);
  return run;
}

}  // namespace

TEST_CASE("dataset fetch: a worker fetches its data set from mufld's routes, trains on it as mufld would, and "
          "the next worker job on the node reuses it", "[worker]") {
  LiveMufld mufld;
  TempDir node;  // the node's scratch: empty
  const fl::JobConfig c = mnist_job();
  const std::string start = *job_on(mufld.data.path(), c)->checkpoint();
  auto local = job_on(mufld.data.path(), c);
  REQUIRE(local->restore(start).is_ok());
  REQUIRE(local->run_round().ok());
  const std::string expected = *local->checkpoint();

  scheduler::WorkerResult first;
  const WorkerRun one = run_worker(mufld, node.path(), DatasetSource::kAuto, c, start, &first);
  INFO(one.log_text());
  CHECK(one.exit_code == kExitDone);
  CHECK(one.log_text().find("data set mnist: 4 files fetched from mufld") != std::string::npos);
  CHECK(first.report.round == 1);
  CHECK(first.checkpoint == expected);  // trained on exactly mufld's bytes
  const std::string dir = node.path() + "/datasets/mnist";
  for (const auto& [name, bytes] : mufld.files) CHECK(*read_file(dir + "/" + name) == bytes);
  CHECK(entries(dir) == idx_names());

  // The next job on the node, checking against mufld's manifest: keeps all four.
  scheduler::WorkerResult second;
  const WorkerRun two = run_worker(mufld, node.path(), DatasetSource::kHttp, c, start, &second);
  INFO(two.log_text());
  CHECK(two.exit_code == kExitDone);
  CHECK(two.log_text().find("data set mnist: 0 files fetched from mufld (0 bytes") != std::string::npos);
  CHECK(two.log_text().find("4 already in " + dir) != std::string::npos);
  CHECK(second.checkpoint == expected);
}
