// /v1/workers/{id}/…: the routes of `mufl-worker` jobs on a Slurm cluster (docs/cluster.md,
// "The worker protocol"). Each request carries the worker's own token; the routes are public
// to the router (a worker is no tenant) and check the token themselves against the WorkerDesk.
#include <cerrno>
#include <cstdlib>

#include <nlohmann/json.hpp>

#include "service/board_poll.h"
#include "service/file_stream.h"
#include "service/json_response.h"
#include "service/problem.h"
#include "service/routes.h"

namespace mufl::service {
namespace {

// The long poll's reply: 410 when the worker is done, else the round or 204.
HttpResponse work_reply(std::optional<std::string> item) {
  if (item && *item == scheduler::WorkerDesk::kDoneMarker)
    return problem(410, "about:blank", "this worker is done: its group ended, split, was cancelled or let go");
  return BoardPoll::item_or_no_content(std::move(item));
}

// The {round} segment: a positive integer.
Result<int64_t> parse_round(const std::string& text) {
  char* end = nullptr;
  errno = 0;
  const long long n = std::strtoll(text.c_str(), &end, 10);
  if (text.empty() || *end != '\0' || errno != 0 || n < 1)
    return Status::invalid_argument("the round must be a positive integer", {{"round", "must be a positive integer"}});
  return static_cast<int64_t>(n);
}

// 401 with a challenge unless the request carries the worker's own token.
std::optional<HttpResponse> refuse_unless_worker(scheduler::WorkerDesk& desk, const RequestContext& ctx) {
  if (desk.authenticate(ctx.param("id"), bearer_token(ctx.request)).is_ok()) return std::nullopt;
  HttpResponse r = problem(401, "about:blank", "this route needs the worker's own token (MUFL_WORKER_TOKEN)");
  r.headers.emplace_back("WWW-Authenticate", "Bearer realm=\"mufl-worker\", error=\"invalid_token\"");
  return r;
}

// GET …/datasets/{name}: {"dataset": name, "files": [{"name", "bytes", "sha256"}, …]}.
HttpResponse dataset_manifest(ServedDatasets& datasets, const std::string& name) {
  auto files = datasets.manifest(name);
  if (!files.ok()) return problem_from_status(files.status());
  nlohmann::json list = nlohmann::json::array();
  for (const auto& f : *files) list.push_back({{"name", f.name}, {"bytes", f.bytes}, {"sha256", f.sha256}});
  HttpResponse r = json_response(200, {{"dataset", name}, {"files", std::move(list)}});
  r.headers.emplace_back("Cache-Control", "no-store");
  return r;
}

// GET …/datasets/{name}/{file}: the file's bytes, streamed from the disk.
HttpResponse dataset_file(const ServedDatasets& datasets, const std::string& name, const std::string& file) {
  auto path = datasets.path_of(name, file);
  if (!path.ok()) return problem_from_status(path.status());
  auto stream = FileStream::open(*path);
  if (stream.status().is_not_found())
    return problem(404, "about:blank", "mufld has no file datasets/" + name + "/" + file +
                                           " in its data dir (scripts/setup fetches the data sets)");
  if (!stream.ok()) return problem_from_status(stream.status());
  return file_response(std::move(*stream), "application/octet-stream");
}

}  // namespace

std::optional<size_t> worker_body_limit(const scheduler::WorkerDesk& desk, std::string_view method,
                                        std::string_view target, std::string_view authorization) {
  constexpr std::string_view kPrefix = "/v1/workers/";
  if (method != "PUT" || target.substr(0, kPrefix.size()) != kPrefix) return std::nullopt;
  target = target.substr(kPrefix.size());
  const std::string id(target.substr(0, target.find('/')));
  HttpRequest head;
  head.headers.emplace_back("authorization", std::string(authorization));
  if (!desk.authenticate(id, bearer_token(head)).is_ok()) return std::nullopt;
  return desk.result_body_limit(id);
}

void add_worker_routes(Router& router, scheduler::WorkerDesk& desk, ServedDatasets& datasets) {
  router.add("GET", "/v1/workers/{id}/work", Access::kPublic, [&desk](const RequestContext& ctx) {
    if (auto refused = refuse_unless_worker(desk, ctx)) return *refused;
    auto wait = parse_poll_wait(ctx.request);
    if (!wait.ok()) return problem_from_status(wait.status());
    HttpResponse r;
    r.deferred = std::make_shared<BoardPoll>(desk.board(), ctx.param("id"), *wait, &work_reply);
    return r;
  }, Cost::kQuick);

  router.add("GET", "/v1/workers/{id}/rounds/{round}/checkpoint", Access::kPublic,
             [&desk](const RequestContext& ctx) {
    if (auto refused = refuse_unless_worker(desk, ctx)) return *refused;
    auto round = parse_round(ctx.param("round"));
    if (!round.ok()) return problem_from_status(round.status());
    auto bytes = desk.checkpoint(ctx.param("id"), *round);
    if (!bytes.ok()) return problem_from_status(bytes.status());
    HttpResponse r;
    r.content_type = "application/octet-stream";
    r.headers.emplace_back("Cache-Control", "no-store");
    r.shared_body = std::move(*bytes);
    return r;
  }, Cost::kQuick);

  router.add("PUT", "/v1/workers/{id}/rounds/{round}", Access::kPublic, [&desk](const RequestContext& ctx) {
    if (auto refused = refuse_unless_worker(desk, ctx)) return *refused;
    auto round = parse_round(ctx.param("round"));
    if (!round.ok()) return problem_from_status(round.status());
    if (Status s = desk.deliver(ctx.param("id"), *round, ctx.request.body); !s.is_ok()) return problem_from_status(s);
    HttpResponse r;
    r.status = 204;
    r.content_type.clear();
    return r;
  });

  // Both hash or read files: the handler pool (Cost::kMayBlock).
  router.add("GET", "/v1/workers/{id}/datasets/{name}", Access::kPublic, [&desk, &datasets](const RequestContext& ctx) {
    if (auto refused = refuse_unless_worker(desk, ctx)) return *refused;
    return dataset_manifest(datasets, ctx.param("name"));
  });

  router.add("GET", "/v1/workers/{id}/datasets/{name}/{file}", Access::kPublic,
             [&desk, &datasets](const RequestContext& ctx) {
    if (auto refused = refuse_unless_worker(desk, ctx)) return *refused;
    return dataset_file(datasets, ctx.param("name"), ctx.param("file"));
  });
}

}  // namespace mufl::service
