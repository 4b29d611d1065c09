// /v1/workers/{id}/… (service/worker_routes.cpp, docs/cluster.md): a cluster worker reaches
// only its own rounds with its own token; every bad request is a problem+json that changes
// nothing. The WorkerDesk's own rules are in tests/scheduler/worker_desk_test.cpp.
#include <future>
#include <thread>

#include "cli/http_client.h"
#include "core/dataset_files.h"
#include "core/file_io.h"
#include "fl/job_wire.h"
#include "service/deferred_response.h"
#include "service/http_server.h"
#include "service/response_stream.h"
#include "tests/service/api_fixture.h"
#include "tests/support/idx_files.h"

using namespace mufl;
using namespace mufl::test;
using scheduler::WorkerDesk;

namespace {

std::string frame(int64_t round, const std::string& checkpoint) {
  fl::RoundReport r;
  r.round = round;
  r.attempts = 1;
  r.eval.push_back({"class", "class", 0.4, "accuracy", 0.9});
  const json head = {{"report", fl::round_report_to_json(r)}, {"checkpoint_sha256", sha256_hex(checkpoint)},
                     {"joules", 5.0}, {"meter", "model"}, {"seconds", 1.0}, {"host", "n1"}};
  return scheduler::make_result_frame(head.dump(), checkpoint);
}

// The deferred long poll, driven as the server would.
HttpResponse poll(Api& api, const std::string& id, const std::string& token) {
  HttpResponse r = api.call("GET", "/v1/workers/" + id + "/work?wait=0", "", token);
  if (!r.deferred) return r;
  std::promise<HttpResponse> done;
  r.deferred->start([&done](HttpResponse reply) { done.set_value(std::move(reply)); });
  return done.get_future().get();
}

// A streamed body, read to its end as the server would.
std::string read_stream(ResponseStream& stream) {
  std::string body;
  for (bool last = false; !last;)
    stream.next([&](StreamChunk c) {
      body += c.data;
      last = c.last;
    });
  return body;
}

}  // namespace

TEST_CASE("worker routes: the worker's own token, its own round, once") {
  Api api;
  WorkerDesk& desk = api.app->workers();
  auto w = desk.open("grp_1", "slurm:n1:v100:0");
  auto other = desk.open("grp_2", "slurm:n1:v100:1");
  const std::string cp = "the checkpoint";
  desk.post(w.id, {3, R"({"name":"grp_1"})", std::make_shared<const std::string>(cp), std::nullopt});

  // Wrong, missing, another worker's, a tenant's or the admin's token: 401 with a challenge.
  const auto [tenant_id, tenant_token] = api.tenant("team");
  for (const std::string& token : {std::string(""), std::string("muflw_wrong"), other.token, tenant_token, kAdmin}) {
    INFO("token " << token);
    auto r = api.call("GET", "/v1/workers/" + w.id + "/work?wait=0", "", token);
    CHECK(r.status == 401);
    CHECK(r.content_type == "application/problem+json");
    CHECK(api.call("PUT", "/v1/workers/" + w.id + "/rounds/3", frame(3, "x"), token).status == 401);
    CHECK(api.call("GET", "/v1/workers/" + w.id + "/rounds/3/checkpoint", "", token).status == 401);
  }
  CHECK(api.call("GET", "/v1/workers/wrk_nosuch/work", "", w.token).status == 401);

  auto work = poll(api, w.id, w.token);
  REQUIRE(work.status == 200);
  CHECK(json::parse(work.body)["round"] == 3);
  CHECK(poll(api, other.id, other.token).status == 204);  // nothing posted to the other
  auto bytes = api.call("GET", "/v1/workers/" + w.id + "/rounds/3/checkpoint", "", w.token);
  REQUIRE(bytes.status == 200);
  CHECK(body_of(bytes) == cp);
  CHECK(api.call("GET", "/v1/workers/" + w.id + "/rounds/2/checkpoint", "", w.token).status == 409);
  CHECK(api.call("GET", "/v1/workers/" + w.id + "/work?wait=61", "", w.token).status == 400);
  CHECK(api.call("GET", "/v1/workers/" + w.id + "/rounds/x/checkpoint", "", w.token).status == 400);

  // Bad results: 400 (malformed, tampered), 409 (another round, or the other worker's); nothing taken.
  std::string tampered = frame(3, "new");
  tampered.back() ^= 1;
  CHECK(api.call("PUT", "/v1/workers/" + w.id + "/rounds/3", "\xff\xfe", w.token).status == 400);
  CHECK(api.call("PUT", "/v1/workers/" + w.id + "/rounds/3", tampered, w.token).status == 400);
  CHECK(api.call("PUT", "/v1/workers/" + w.id + "/rounds/4", frame(4, "new"), w.token).status == 409);
  CHECK(api.call("PUT", "/v1/workers/" + other.id + "/rounds/3", frame(3, "new"), other.token).status == 409);
  CHECK(poll(api, w.id, w.token).status == 200);  // still on offer

  CHECK(api.call("PUT", "/v1/workers/" + w.id + "/rounds/3", frame(3, "new"), w.token).status == 204);
  CHECK(api.call("PUT", "/v1/workers/" + w.id + "/rounds/3", frame(3, "new"), w.token).status == 409);
  auto result = desk.wait(w.id, std::chrono::steady_clock::now(), nullptr);
  REQUIRE(result.ok());
  CHECK(result->checkpoint == "new");

  // Closed: its poll says so (410), and a report after the round was taken back is 409.
  desk.close(w.id);
  CHECK(poll(api, w.id, w.token).status == 410);
  CHECK(api.call("PUT", "/v1/workers/" + w.id + "/rounds/3", frame(3, "new"), w.token).status == 409);
  // The body limit follows the posted checkpoint; none when nothing is posted.
  const std::string bearer = "Bearer " + other.token;
  CHECK_FALSE(service::worker_body_limit(desk, "PUT", "/v1/workers/" + w.id + "/rounds/3", "Bearer " + w.token));
  desk.post(other.id, {1, R"({"name":"grp_2"})", std::make_shared<const std::string>(std::string(1000, 'c')), std::nullopt});
  CHECK(*service::worker_body_limit(desk, "PUT", "/v1/workers/" + other.id + "/rounds/1", bearer) ==
        2000 + (1u << 20));
  CHECK_FALSE(service::worker_body_limit(desk, "GET", "/v1/workers/" + other.id + "/rounds/1", bearer));
  // Only with the worker's own token: a stranger who knows the id gets the server's default limit.
  CHECK_FALSE(service::worker_body_limit(desk, "PUT", "/v1/workers/" + other.id + "/rounds/1", ""));
  CHECK_FALSE(service::worker_body_limit(desk, "PUT", "/v1/workers/" + other.id + "/rounds/1", "Bearer " + w.token));
}

TEST_CASE("worker routes: a data set's manifest and files, to the worker's own token, and no other file") {
  Api api;
  WorkerDesk& desk = api.app->workers();
  auto w = desk.open("grp_1", "slurm:n1:v100:0");
  auto other = desk.open("grp_2", "slurm:n1:v100:1");
  const auto files = mufl::testing::write_tiny_idx_files(api.dir.path() + "/datasets/mnist", 30, 10);
  const std::string base = "/v1/workers/" + w.id + "/datasets/";

  // Wrong, missing, another worker's, a tenant's or the admin's token: 401 with a challenge,
  // for names that exist and names that do not alike (nothing can be probed).
  const auto [tenant_id, tenant_token] = api.tenant("team");
  for (const std::string& token : {std::string(""), std::string("muflw_wrong"), other.token, tenant_token, kAdmin}) {
    INFO("token " << token);
    for (const std::string& target : {base + "mnist", base + "mnist/train-images-idx3-ubyte", base + "cifar10",
                                      base + "mnist/..%2F..%2Fmufl.db"}) {
      INFO(target);
      auto r = api.call("GET", target, "", token);
      problem(r, 401);
      CHECK(header(r, "WWW-Authenticate").rfind("Bearer", 0) == 0);
      CHECK_FALSE(r.stream);
    }
  }

  // The manifest: every file in order, with its size and SHA-256.
  auto m = api.call("GET", base + "mnist", "", w.token);
  REQUIRE(m.status == 200);
  const json manifest = json::parse(m.body);
  CHECK(manifest["dataset"] == "mnist");
  REQUIRE(manifest["files"].size() == kIdxFileNames.size());
  for (size_t i = 0; i < kIdxFileNames.size(); ++i) {
    const json& f = manifest["files"][i];
    const std::string& bytes = files.at(kIdxFileNames[i]);
    CHECK(f["name"] == kIdxFileNames[i]);
    CHECK(f["bytes"] == bytes.size());
    CHECK(f["sha256"] == sha256_hex(bytes));
  }
  CHECK(json::parse(api.call("GET", base + "synthetic", "", w.token).body)["files"] == json::array());

  // Each file's bytes, streamed with their Content-Length.
  for (const auto& [name, bytes] : files) {
    INFO(name);
    auto r = api.call("GET", base + "mnist/" + name, "", w.token);
    REQUIRE(r.status == 200);
    CHECK(r.content_type == "application/octet-stream");
    CHECK(header(r, "Content-Length") == std::to_string(bytes.size()));
    REQUIRE(r.stream);
    CHECK(read_stream(*r.stream) == bytes);
  }

  // 404 problem+json: no such data set, no such file of it, files this mufld does not have, and
  // every try to name another file (a path segment is matched against the data set's file names,
  // never joined to a path as is).
  std::filesystem::create_directories(api.dir.path() + "/datasets/fashion-mnist");
  for (const std::string& target :
       {base + "cifar10", base + "cifar10/train-images-idx3-ubyte", base + "mnist/labels.txt",
        base + "fashion-mnist", base + "fashion-mnist/train-images-idx3-ubyte",
        base + "mnist/train-images-idx3-ubyte.part", base + "mnist/.fetch.lock", base + "mnist/..%2F..%2Fmufl.db",
        base + "mnist/%2e%2e", base + "..%2Fmnist/train-images-idx3-ubyte", base + "..", base + "mnist/..",
        base + "mnist/%2Fetc%2Fpasswd", base + "mnist/../../../mufl.db", base + "mnist/train-images-idx3-ubyte/x",
        base + "MNIST/train-images-idx3-ubyte"}) {
    INFO(target);
    auto r = api.call("GET", target, "", w.token);
    problem(r, 404);
    CHECK_FALSE(r.stream);
  }
  // A file that is gone is 404 too, and the detail names no path of the server.
  std::filesystem::remove(api.dir.path() + "/datasets/mnist/t10k-labels-idx1-ubyte");
  for (const std::string& target : {base + "mnist", base + "mnist/t10k-labels-idx1-ubyte"}) {
    const json p = problem(api.call("GET", target, "", w.token), 404);
    CHECK(p["detail"].get<std::string>().find(api.dir.path()) == std::string::npos);
  }
}

TEST_CASE("worker routes: a data set file over HTTP arrives whole, with its length") {
  Api api;
  auto w = api.app->workers().open("grp_1", "slurm:n1:v100:0");
  const auto files = mufl::testing::write_tiny_idx_files(api.dir.path() + "/datasets/mnist", 700, 10);
  HttpServerOptions o;
  o.port = 0;
  o.handle_signals = false;
  HttpServer server(o, [&api](HttpRequest&& r) { return api.app->handle(std::move(r)); });
  REQUIRE(server.listen().is_ok());
  std::thread runner([&] { server.run(); });

  const std::string& bytes = files.at("train-images-idx3-ubyte");  // 549 KB: several pieces
  client::HttpClient http("127.0.0.1", server.port());
  auto r = http.get("/v1/workers/" + w.id + "/datasets/mnist/train-images-idx3-ubyte", w.token);
  CHECK(r.status == 200);
  CHECK(r.header("content-length") == std::to_string(bytes.size()));
  CHECK(r.body == bytes);
  auto head = http.request("HEAD", "/v1/workers/" + w.id + "/datasets/mnist/train-images-idx3-ubyte", "",
                           {{"Authorization", "Bearer " + w.token}});
  CHECK(head.status == 200);
  CHECK(head.header("content-length") == std::to_string(bytes.size()));
  CHECK(http.get("/v1/workers/" + w.id + "/datasets/mnist/x", w.token).status == 404);

  server.shutdown();
  runner.join();
}
