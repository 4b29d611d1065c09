// The worker loop (worker/worker_loop.h) against a fake mufld that speaks the worker protocol
// (docs/cluster.md): it trains a real round of a tiny synthetic job and sends exactly what the
// same round run here gives, keeps its job for the next round, and drops rounds it must not
// train or send. Torch-free: FlJob's header is.
#include <catch2/catch.hpp>

#include <boost/asio.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>

#include <deque>
#include <filesystem>
#include <functional>
#include <map>
#include <mutex>
#include <nlohmann/json.hpp>
#include <thread>
#include <vector>

#include "core/dataset_files.h"
#include "core/file_io.h"
#include "fl/fl_job.h"
#include "fl/job_wire.h"
#include "scheduler/energy/power_profile.h"
#include "tests/support/idx_files.h"
#include "tests/support/temp_dir.h"
#include "worker/worker_loop.h"

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;
using nlohmann::json;
using namespace mufl;
using namespace mufl::worker;

namespace {

constexpr const char* kToken = "tok-worker-secret";
constexpr const char* kWorker = "/v1/workers/wrk_test";

struct Request {
  std::string method;
  std::string target;
  std::string authorization;
  std::string body;
};

struct Reply {
  int status = 200;
  std::string body;
  std::string content_type = "application/json";
};

Reply problem(int status, const std::string& detail) {
  return {status, json{{"type", "about:blank"}, {"status", status}, {"detail", detail}}.dump(),
          "application/problem+json"};
}

// A fake mufld: every request goes to `handler` (under a lock: one at a time) and is recorded.
class FakeMufld {
 public:
  using Handler = std::function<Reply(const Request&)>;
  explicit FakeMufld(Handler handler)
      : handler_(std::move(handler)), acceptor_(ioc_, tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0)) {
    port_ = acceptor_.local_endpoint().port();
    accepting_ = std::thread([this] { accept_loop(); });
  }
  ~FakeMufld() {
    stop_ = true;
    boost::system::error_code ec;
    tcp::socket wake(ioc_);
    wake.connect(tcp::endpoint(asio::ip::make_address("127.0.0.1"), port_), ec);
    accepting_.join();
    for (auto& t : connections_) t.join();
  }

  uint16_t port() const { return port_; }
  std::vector<Request> requests() {
    std::lock_guard<std::mutex> lock(mu_);
    return requests_;
  }
  // The requests whose method is `method` and whose target ends with `suffix`.
  std::vector<Request> requests(const std::string& method, const std::string& suffix) {
    std::vector<Request> out;
    for (auto& r : requests())
      if (r.method == method && r.target.size() >= suffix.size() &&
          r.target.compare(r.target.size() - suffix.size(), suffix.size(), suffix) == 0)
        out.push_back(r);
    return out;
  }

 private:
  void accept_loop() {
    for (;;) {
      tcp::socket s(ioc_);
      boost::system::error_code ec;
      acceptor_.accept(s, ec);
      if (stop_ || ec) return;
      connections_.emplace_back([this, s = std::move(s)]() mutable { serve(std::move(s)); });
    }
  }

  void serve(tcp::socket s) {
    beast::flat_buffer buffer;
    boost::system::error_code ec;
    for (;;) {
      http::request_parser<http::string_body> parser;
      parser.body_limit(boost::none);  // a result frame holds a whole checkpoint
      http::read(s, buffer, parser, ec);
      if (ec) return;
      auto& req = parser.get();
      Request r{std::string(req.method_string()), std::string(req.target()),
                std::string(req[http::field::authorization]), req.body()};
      Reply reply;
      {
        std::lock_guard<std::mutex> lock(mu_);
        requests_.push_back(r);
        reply = handler_(r);
      }
      http::response<http::string_body> res;
      res.version(11);
      res.keep_alive(req.keep_alive());
      res.result(reply.status);
      if (!reply.body.empty()) res.set(http::field::content_type, reply.content_type);
      res.body() = reply.body;
      res.prepare_payload();
      http::write(s, res, ec);
      if (ec || !req.keep_alive()) return;
    }
  }

  Handler handler_;
  asio::io_context ioc_;
  tcp::acceptor acceptor_;
  uint16_t port_ = 0;
  std::atomic<bool> stop_{false};
  std::thread accepting_;
  std::vector<std::thread> connections_;  // touched by the accept thread only, until it is joined
  std::mutex mu_;
  std::vector<Request> requests_;
};

// What mufld answers, in order: each GET …/work takes the next work reply (410 once they run
// out), each PUT the next PUT status (204 once they run out); GET …/rounds/R/checkpoint gets
// checkpoints[R], else 409.
struct Script {
  std::deque<std::function<Reply()>> work;
  std::map<int64_t, Reply> checkpoints;
  std::map<std::string, Reply> datasets;  // GET …/datasets/<key> ("mnist", "mnist/<file>"), else 404
  std::deque<int> put_statuses;
  std::vector<std::string> puts;  // the PUT bodies, in order

  Reply answer(const Request& r) {
    if (r.method == "GET" && r.target.find("/work?wait=") != std::string::npos) {
      if (work.empty()) return problem(410, "the group ended");
      auto next = std::move(work.front());
      work.pop_front();
      return next();
    }
    const std::string datasets_path = std::string(kWorker) + "/datasets/";
    if (r.method == "GET" && r.target.rfind(datasets_path, 0) == 0) {
      auto it = datasets.find(r.target.substr(datasets_path.size()));
      return it == datasets.end() ? problem(404, "no such data set file") : it->second;
    }
    const std::string rounds = std::string(kWorker) + "/rounds/";
    if (r.target.rfind(rounds, 0) != 0) return problem(404, "no route for " + r.target);
    const int64_t round = std::stoll(r.target.substr(rounds.size()));
    if (r.method == "GET") {
      auto it = checkpoints.find(round);
      return it == checkpoints.end() ? problem(409, "not the round posted now") : it->second;
    }
    puts.push_back(r.body);
    const int status = put_statuses.empty() ? 204 : put_statuses.front();
    if (!put_statuses.empty()) put_statuses.pop_front();
    return status == 204 ? Reply{204, "", ""} : problem(status, "refused by the script");
  }
};

Reply octets(const std::string& bytes) { return {200, bytes, "application/octet-stream"}; }

// mufld's manifest of `files` (GET …/datasets/mnist) and each file's bytes as `served` has
// them (GET …/datasets/mnist/<file>; default: the files themselves).
void serve_mnist(Script& script, const std::map<std::string, std::string>& files,
                 std::map<std::string, std::string> served = {}) {
  json list = json::array();
  for (const char* name : kIdxFileNames)
    list.push_back({{"name", name}, {"bytes", files.at(name).size()}, {"sha256", sha256_hex(files.at(name))}});
  script.datasets["mnist"] = Reply{200, json{{"dataset", "mnist"}, {"files", list}}.dump()};
  for (const auto& [name, bytes] : files)
    script.datasets["mnist/" + name] = Reply{200, served.count(name) ? served[name] : bytes, "application/octet-stream"};
}

fl::JobConfig tiny_job(int64_t rounds = 2) {
  fl::JobConfig c;
  c.dataset = "synthetic";
  c.name = "grp_test";
  c.tasks = {"class"};
  c.rounds = rounds;
  c.clients = 2;
  c.clients_per_round = 1;
  c.batch_size = 64;
  c.seed = 11;
  return c;
}

std::unique_ptr<fl::FlJob> make_job(const fl::JobConfig& c, const std::string& data_dir = "var") {
  fl::RuntimeOptions runtime;
  runtime.data_dir = data_dir;
  runtime.device = "cpu";
  auto job = fl::FlJob::create(c, runtime);
  REQUIRE(job.ok());
  return std::move(*job);
}

std::function<Reply()> work_item(int64_t round, const fl::JobConfig& c, const std::string& sha, uint64_t bytes) {
  return [=] {
    return Reply{200, json{{"round", round}, {"config", fl::job_config_to_json(c)}, {"checkpoint_sha256", sha},
                           {"checkpoint_bytes", bytes}}.dump()};
  };
}

std::function<Reply()> work_item(int64_t round, const fl::JobConfig& c, const std::string& checkpoint) {
  return work_item(round, c, sha256_hex(checkpoint), checkpoint.size());
}

// The result frame: 8 bytes N little-endian, N bytes of report JSON, the checkpoint.
struct Frame {
  json report;
  std::string checkpoint;
};

Frame parse_frame(const std::string& body) {
  REQUIRE(body.size() >= 8);
  uint64_t n = 0;
  for (int i = 7; i >= 0; --i) n = (n << 8) | static_cast<unsigned char>(body[i]);
  REQUIRE(8 + n <= body.size());
  Frame f{json::parse(body.substr(8, n)), body.substr(8 + n)};
  return f;
}

// A loop for the fake: model meter, no real pauses (each is recorded), logs kept.
struct TestWorker {
  std::vector<std::string> logs;
  std::vector<std::chrono::milliseconds> pauses;
  std::unique_ptr<WorkerLoop> loop;

  TestWorker(uint16_t port, const Clock& clock = SystemClock::instance(),
             std::function<void(std::chrono::milliseconds)> on_pause = {},
             const std::function<void(WorkerOptions&)>& configure = {}) {
    WorkerOptions o;
    o.url.host = "127.0.0.1";
    o.url.port = port;
    o.server = "http://127.0.0.1:" + std::to_string(port);
    o.worker_id = "wrk_test";
    o.token = kToken;
    o.device = "cpu";
    o.poll_wait_seconds = 0;
    o.give_up_seconds = 5;
    o.energy_meter = "model";
    o.host = "node7";
    if (configure) configure(o);
    loop = std::make_unique<WorkerLoop>(
        o, [this](const std::string& line) { logs.push_back(line); }, clock,
        [this, on_pause](std::chrono::milliseconds d) {
          pauses.push_back(d);
          if (on_pause) on_pause(d);
        });
  }
  std::string log_text() const {
    std::string text;
    for (const auto& l : logs) text += l + "\n";
    return text;
  }
};

}  // namespace

TEST_CASE("worker loop: trains a round exactly as here, goes on from its own checkpoint without a download, "
          "and ends on 410", "[worker]") {
  const fl::JobConfig c = tiny_job(2);
  const std::string start = *make_job(c)->checkpoint();
  auto local = make_job(c);
  REQUIRE(local->restore(start).is_ok());
  const fl::RoundReport local1 = *local->run_round();
  const std::string after1 = *local->checkpoint();
  const fl::RoundReport local2 = *local->run_round();
  const std::string after2 = *local->checkpoint();

  Script script;
  script.checkpoints[1] = octets(start);  // round 2's is not offered: the worker must not need it
  script.work.push_back([] { return Reply{204, "", ""}; });
  script.work.push_back(work_item(1, c, start));
  script.work.push_back([&script, c] {  // round 2 starts from what the worker sent
    const Frame sent = parse_frame(script.puts.back());
    return work_item(2, c, sent.report["checkpoint_sha256"].get<std::string>(), sent.checkpoint.size())();
  });
  FakeMufld mufld([&script](const Request& r) { return script.answer(r); });
  TestWorker worker(mufld.port());

  CHECK(worker.loop->run() == kExitDone);
  INFO(worker.log_text());
  CHECK(worker.loop->rounds_trained() == 2);
  CHECK(mufld.requests("GET", "/checkpoint").size() == 1);
  CHECK(worker.log_text().find("round 2: goes on from the checkpoint this worker sent") != std::string::npos);
  const auto puts = mufld.requests("PUT", "");
  REQUIRE(puts.size() == 2);
  CHECK(puts[0].target == std::string(kWorker) + "/rounds/1");
  CHECK(puts[1].target == std::string(kWorker) + "/rounds/2");
  for (const auto& r : mufld.requests()) CHECK(r.authorization == std::string("Bearer ") + kToken);
  CHECK(worker.log_text().find(kToken) == std::string::npos);

  const std::vector<std::pair<fl::RoundReport, std::string>> expected{{local1, after1}, {local2, after2}};
  for (size_t i = 0; i < 2; ++i) {
    const Frame f = parse_frame(puts[i].body);
    auto report = fl::round_report_from_json(f.report["report"]);
    REQUIRE(report.ok());
    CHECK(report->round == static_cast<int64_t>(i + 1));
    CHECK(f.report["checkpoint_sha256"] == sha256_hex(f.checkpoint));
    CHECK(f.checkpoint == expected[i].second);  // the job is deterministic: the same bytes
    REQUIRE(report->eval.size() == 1);
    CHECK(report->eval[0].loss == expected[i].first.eval[0].loss);
    CHECK(report->train_loss == expected[i].first.train_loss);
    CHECK(f.report["host"] == "node7");
    CHECK(f.report["meter"] == "model");
    CHECK(f.report["joules"].get<double>() >= 0);
    CHECK(f.report["seconds"].get<double>() > 0);
  }
  auto resumed = make_job(c);
  REQUIRE(resumed->restore(parse_frame(puts[1].body).checkpoint).is_ok());
  CHECK(resumed->rounds_done() == 2);
  CHECK(resumed->evaluate()->at(0).loss == local->evaluate()->at(0).loss);
}

TEST_CASE("worker loop: a round trains at the power limit its work item names, the next at the device's own",
          "[worker]") {
  const fl::JobConfig c = tiny_job(2);
  const std::string start = *make_job(c)->checkpoint();
  auto v100 = scheduler::find_power_profile("V100");
  REQUIRE(v100.ok());
  REQUIRE(v100->has_power_limits());
  const double low = v100->min_limit_watts();
  Script script;
  script.checkpoints[1] = octets(start);
  script.work.push_back([c, start, low] {
    Reply r = work_item(1, c, start)();
    json j = json::parse(r.body);
    j["power_limit_watts"] = low;  // the energy policy chose the lowest
    r.body = j.dump();
    return r;
  });
  script.work.push_back([&script, c] {
    const Frame sent = parse_frame(script.puts.back());
    return work_item(2, c, sent.report["checkpoint_sha256"].get<std::string>(), sent.checkpoint.size())();
  });
  FakeMufld mufld([&script](const Request& r) { return script.answer(r); });
  TestWorker worker(mufld.port(), SystemClock::instance(), {}, [](WorkerOptions& o) { o.power_profile = "V100"; });
  CHECK(worker.loop->run() == kExitDone);
  INFO(worker.log_text());
  const auto puts = mufld.requests("PUT", "");
  REQUIRE(puts.size() == 2);
  // The power model draws the profile's busy watts at the limit while the round trains.
  const Frame at_low = parse_frame(puts[0].body), at_own = parse_frame(puts[1].body);
  const double watts_low = at_low.report["joules"].get<double>() / at_low.report["seconds"].get<double>();
  const double watts_own = at_own.report["joules"].get<double>() / at_own.report["seconds"].get<double>();
  CHECK(watts_low == Approx(v100->busy_watts_at(low)).epsilon(0.05));
  CHECK(watts_own == Approx(v100->busy_watts_at(v100->max_limit_watts())).epsilon(0.05));
  CHECK(watts_low < watts_own);
  CHECK(worker.log_text().find("(placement's choice)") != std::string::npos);
}

TEST_CASE("worker loop: a result answered 409 is dropped, and the loop polls again and trains the round offered anew",
          "[worker]") {
  const fl::JobConfig c = tiny_job(2);
  const std::string start = *make_job(c)->checkpoint();
  Script script;
  script.checkpoints[1] = octets(start);
  script.work = {work_item(1, c, start), work_item(1, c, start)};  // taken back, then posted again
  script.put_statuses = {409};
  FakeMufld mufld([&script](const Request& r) { return script.answer(r); });
  TestWorker worker(mufld.port());

  CHECK(worker.loop->run() == kExitDone);
  INFO(worker.log_text());
  CHECK(worker.log_text().find("round 1: no longer wanted") != std::string::npos);
  CHECK(worker.loop->rounds_trained() == 2);
  // Its job has moved past the round's checkpoint, so it fetches the checkpoint again.
  CHECK(mufld.requests("GET", "/checkpoint").size() == 2);
  const auto puts = mufld.requests("PUT", "/rounds/1");
  REQUIRE(puts.size() == 2);
  CHECK(parse_frame(puts[0].body).checkpoint == parse_frame(puts[1].body).checkpoint);
  CHECK(mufld.requests("GET", "/work?wait=0").size() == 3);  // twice a round, then 410
}

TEST_CASE("worker loop: a checkpoint that is not the work item's, or a round that is not its next, is not trained",
          "[worker]") {
  const fl::JobConfig c = tiny_job(2);
  const std::string start = *make_job(c)->checkpoint();
  Script script;
  script.checkpoints[1] = octets(start);
  script.checkpoints[5] = octets(start);
  script.work = {
      work_item(1, c, sha256_hex("another checkpoint"), start.size()),  // the wrong SHA-256
      work_item(1, c, sha256_hex(start), start.size() + 1),            // the wrong size
      work_item(5, c, start),                                          // start's next round is 1
      [] { return Reply{200, R"({"round": 1, "config": {"dataset": "synthetic"}})"}; },  // unreadable
  };
  FakeMufld mufld([&script](const Request& r) { return script.answer(r); });
  TestWorker worker(mufld.port());

  CHECK(worker.loop->run() == kExitDone);
  INFO(worker.log_text());
  CHECK(worker.loop->rounds_trained() == 0);
  CHECK(mufld.requests("PUT", "").empty());
  CHECK(mufld.requests("GET", "/checkpoint").size() == 3);
  CHECK(worker.pauses.size() == 4);  // one short pause after each
  const std::string logs = worker.log_text();
  CHECK(logs.find("is not the one the work item names") != std::string::npos);
  CHECK(logs.find("its checkpoint's next round is 1") != std::string::npos);
  CHECK(logs.find("a work item that cannot be read") != std::string::npos);
}

TEST_CASE("worker loop: a round that fails is not sent, and the loop goes on", "[worker]") {
  fl::JobConfig c = tiny_job(1);
  auto done = make_job(c);
  REQUIRE(done->run_round().ok());
  const std::string finished = *done->checkpoint();  // a job with no round left: run_round fails
  Script script;
  script.checkpoints[2] = octets(finished);
  script.work = {work_item(2, c, finished)};
  FakeMufld mufld([&script](const Request& r) { return script.answer(r); });
  TestWorker worker(mufld.port());

  CHECK(worker.loop->run() == kExitDone);
  INFO(worker.log_text());
  CHECK(worker.loop->rounds_trained() == 1);
  CHECK(mufld.requests("PUT", "").empty());
  CHECK(worker.log_text().find("round 2: training failed") != std::string::npos);
}

TEST_CASE("worker loop: a worker mufld does not know ends with kExitRefused", "[worker]") {
  SECTION("401 on the poll") {
    FakeMufld mufld([](const Request&) { return problem(401, "unknown worker token"); });
    TestWorker worker(mufld.port());
    CHECK(worker.loop->run() == kExitRefused);
    CHECK(mufld.requests().size() == 1);
    CHECK(worker.log_text().find("unknown worker token") != std::string::npos);
  }
  SECTION("403 on the checkpoint") {
    const fl::JobConfig c = tiny_job(2);
    const std::string start = *make_job(c)->checkpoint();
    Script script;
    script.checkpoints[1] = problem(403, "not this worker's group");
    script.work = {work_item(1, c, start)};
    FakeMufld mufld([&script](const Request& r) { return script.answer(r); });
    TestWorker worker(mufld.port());
    CHECK(worker.loop->run() == kExitRefused);
    CHECK(worker.loop->rounds_trained() == 0);
    CHECK(mufld.requests().size() == 2);
  }
}

TEST_CASE("worker loop: a server that never answers is retried with backoff, then given up", "[worker]") {
  uint16_t closed_port = 0;
  {
    asio::io_context ioc;
    tcp::acceptor a(ioc, tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0));
    closed_port = a.local_endpoint().port();
  }  // nothing listens there now
  ManualClock clock;
  TestWorker worker(closed_port, clock, [&clock](std::chrono::milliseconds d) { clock.advance_ms(d.count()); });
  CHECK(worker.loop->run() == kExitUnreachable);
  INFO(worker.log_text());
  // --give-up 5: 1 s, 2 s, then the 2 s left (not 4 s), then one last try.
  using ms = std::chrono::milliseconds;
  CHECK(worker.pauses == std::vector<ms>{ms(1000), ms(2000), ms(2000)});
  CHECK(worker.log_text().find("no answer for 5 s: giving up") != std::string::npos);
}

namespace {

fl::JobConfig tiny_mnist_job() {
  fl::JobConfig c = tiny_job(2);
  c.dataset = "mnist";
  c.batch_size = 16;
  return c;
}

// mufld's side of a job on tiny MNIST files: its data dir, and the round-1 checkpoint.
struct MnistMufld {
  mufl::testing::TempDir data;
  std::map<std::string, std::string> files = mufl::testing::write_tiny_idx_files(data.path() + "/datasets/mnist", 60, 20);
  std::string start = *make_job(tiny_mnist_job(), data.path())->checkpoint();
};

}  // namespace

TEST_CASE("worker loop: --datasets decides whether a data set missing from --data-dir is fetched", "[worker]") {
  MnistMufld m;
  const fl::JobConfig c = tiny_mnist_job();
  Script script;
  script.checkpoints[1] = octets(m.start);
  script.work = {work_item(1, c, m.start)};
  serve_mnist(script, m.files);
  FakeMufld mufld([&script](const Request& r) { return script.answer(r); });
  mufl::testing::TempDir node;
  const std::string dir = node.path() + "/datasets/mnist";

  SECTION("auto, the folder empty: fetched, checked, trained on") {
    TestWorker worker(mufld.port(), SystemClock::instance(), {}, [&](WorkerOptions& o) { o.data_dir = node.path(); });
    CHECK(worker.loop->run() == kExitDone);
    INFO(worker.log_text());
    CHECK(mufld.requests("PUT", "/rounds/1").size() == 1);
    CHECK(mufld.requests("GET", "/datasets/mnist").size() == 1);
    for (const auto& [name, bytes] : m.files) {
      CHECK(mufld.requests("GET", "/datasets/mnist/" + name).size() == 1);
      CHECK(*read_file(dir + "/" + name) == bytes);
    }
    for (const auto& r : mufld.requests()) CHECK(r.authorization == std::string("Bearer ") + kToken);
    CHECK(worker.log_text().find("4 files fetched from mufld") != std::string::npos);
  }
  SECTION("auto, every file there: read as it is, mufld not asked") {
    mufl::testing::write_tiny_idx_files(dir, 60, 20);
    TestWorker worker(mufld.port(), SystemClock::instance(), {}, [&](WorkerOptions& o) { o.data_dir = node.path(); });
    CHECK(worker.loop->run() == kExitDone);
    INFO(worker.log_text());
    CHECK(mufld.requests("PUT", "/rounds/1").size() == 1);
    CHECK(mufld.requests("GET", "/datasets/mnist").empty());
  }
  SECTION("shared: never fetched, so the round cannot be trained") {
    TestWorker worker(mufld.port(), SystemClock::instance(), {}, [&](WorkerOptions& o) {
      o.data_dir = node.path();
      o.datasets = DatasetSource::kShared;
    });
    CHECK(worker.loop->run() == kExitDone);
    INFO(worker.log_text());
    CHECK(mufld.requests("PUT", "").empty());
    CHECK(mufld.requests("GET", "/datasets/mnist").empty());
    CHECK(worker.log_text().find("cannot build its job") != std::string::npos);
    CHECK_FALSE(std::filesystem::exists(dir));
  }
}

TEST_CASE("worker loop: a data set file that is not mufld's manifest's is never trained on", "[worker]") {
  MnistMufld m;
  const fl::JobConfig c = tiny_mnist_job();
  Script script;
  script.checkpoints[1] = octets(m.start);
  script.work = {work_item(1, c, m.start)};
  const std::string name = "train-images-idx3-ubyte";
  std::string bad = m.files.at(name);
  SECTION("tampered") { bad[1000] ^= 1; }
  SECTION("truncated") { bad.resize(bad.size() / 2); }
  serve_mnist(script, m.files, {{name, bad}});
  FakeMufld mufld([&script](const Request& r) { return script.answer(r); });
  mufl::testing::TempDir node;
  TestWorker worker(mufld.port(), SystemClock::instance(), {}, [&](WorkerOptions& o) { o.data_dir = node.path(); });

  CHECK(worker.loop->run() == kExitDone);
  INFO(worker.log_text());
  CHECK(worker.loop->rounds_trained() == 0);
  CHECK(mufld.requests("PUT", "").empty());
  CHECK(mufld.requests("GET", "/checkpoint").empty());  // given up before the checkpoint
  CHECK(worker.log_text().find("round 1: data set mnist cannot be fetched") != std::string::npos);
  CHECK(worker.pauses.size() == 1);
  const std::string dir = node.path() + "/datasets/mnist";
  CHECK_FALSE(std::filesystem::exists(dir + "/" + name));
  CHECK_FALSE(std::filesystem::exists(dir + "/" + name + ".part"));
}

TEST_CASE("worker loop: a manifest refused with 401 stops the worker, and a data set mufld lacks drops the round", "[worker]") {
  MnistMufld m;
  const fl::JobConfig c = tiny_mnist_job();
  Script script;
  script.checkpoints[1] = octets(m.start);
  script.work = {work_item(1, c, m.start)};
  mufl::testing::TempDir node;
  SECTION("401") {
    script.datasets["mnist"] = problem(401, "this route needs the worker's own token");
    FakeMufld mufld([&script](const Request& r) { return script.answer(r); });
    TestWorker worker(mufld.port(), SystemClock::instance(), {}, [&](WorkerOptions& o) { o.data_dir = node.path(); });
    CHECK(worker.loop->run() == kExitRefused);
    INFO(worker.log_text());
    CHECK(worker.log_text().find("mufld refused the manifest of data set mnist") != std::string::npos);
  }
  SECTION("404") {
    FakeMufld mufld([&script](const Request& r) { return script.answer(r); });
    TestWorker worker(mufld.port(), SystemClock::instance(), {}, [&](WorkerOptions& o) { o.data_dir = node.path(); });
    CHECK(worker.loop->run() == kExitDone);
    INFO(worker.log_text());
    CHECK(mufld.requests("PUT", "").empty());
    CHECK(worker.log_text().find("its manifest got HTTP 404 (no such data set file)") != std::string::npos);
  }
}
