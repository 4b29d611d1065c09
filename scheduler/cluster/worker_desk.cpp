#include "scheduler/cluster/worker_desk.h"

#include <cmath>
#include <cstring>

#include <nlohmann/json.hpp>

#include "core/file_io.h"
#include "core/ids.h"
#include "fl/job_wire.h"
#include "tenants/token.h"

namespace mufl::scheduler {
namespace {

// The report JSON's own fields beside "report", checked into `out`.
Status read_result_fields(const nlohmann::json& j, WorkerResult& out, std::string& sha) {
  static const char* kFields[] = {"report", "checkpoint_sha256", "joules", "meter", "seconds", "host"};
  for (const auto& item : j.items()) {
    const std::string& key = item.key();  // not a structured binding: clang 14 cannot capture one
    if (std::find_if(std::begin(kFields), std::end(kFields), [&](const char* f) { return key == f; }) ==
        std::end(kFields))
      return Status::invalid_argument("the result has an unknown field", {{key, "unknown field"}});
  }
  auto number = [&](const char* f, double& into) -> Status {
    if (!j.contains(f) || !j[f].is_number()) return Status::invalid_argument("bad result", {{f, "must be a number"}});
    into = j[f].get<double>();
    if (!std::isfinite(into) || into < 0) return Status::invalid_argument("bad result", {{f, "must be finite and >= 0"}});
    return Status::ok();
  };
  auto text = [&](const char* f, std::string& into) -> Status {
    if (!j.contains(f) || !j[f].is_string()) return Status::invalid_argument("bad result", {{f, "must be a string"}});
    into = j[f].get<std::string>();
    return Status::ok();
  };
  for (Status s : {number("joules", out.joules), number("seconds", out.seconds), text("meter", out.meter),
                   text("host", out.host), text("checkpoint_sha256", sha)})
    if (!s.is_ok()) return s;
  if (out.meter != "nvml" && out.meter != "rapl" && out.meter != "model")
    return Status::invalid_argument("bad result", {{"meter", "must be nvml, rapl or model"}});
  return Status::ok();
}

}  // namespace

WorkerDesk::WorkerDesk(RandomSource& rng) : rng_(rng) {}
WorkerDesk::~WorkerDesk() { board_.shutdown(); }

std::string WorkerDesk::lease_id(const std::string& worker_id, int64_t round) {
  return worker_id + ":" + std::to_string(round);
}

WorkerDesk::Opened WorkerDesk::open(const std::string& group_id, const std::string& device) {
  Opened o{new_id("wrk", rng_), tenants::generate_token(rng_, tenants::kWorkerTokenPrefix), ""};
  std::lock_guard lock(mu_);
  const auto now = std::chrono::steady_clock::now();
  for (auto it = workers_.begin(); it != workers_.end();) {
    if (it->second.open || now - it->second.closed_at < kClosedGrace) {
      ++it;
      continue;
    }
    board_.withdraw(it->first + ":done");
    it = workers_.erase(it);
  }
  o.token_sha256 = sha256_hex(o.token);
  Worker& w = workers_[o.id];
  w.token_sha256 = o.token_sha256;
  w.group_id = group_id;
  w.device = device;
  return o;
}

Status WorkerDesk::adopt(const std::string& id, const std::string& token_sha256, const std::string& group_id,
                         const std::string& device) {
  {
    std::lock_guard lock(mu_);
    auto it = workers_.find(id);
    if (it != workers_.end() && it->second.open) return Status::already_exists("worker " + id + " is open");
    Worker w;
    w.token_sha256 = token_sha256;
    w.group_id = group_id;
    w.device = device;
    workers_[id] = std::move(w);
  }
  board_.withdraw(id + ":done");  // a closed worker of this id had said done
  return Status::ok();
}

void WorkerDesk::close(const std::string& id) {
  {
    std::lock_guard lock(mu_);
    auto it = workers_.find(id);
    if (it == workers_.end() || !it->second.open) return;
    it->second.open = false;
    it->second.closed_at = std::chrono::steady_clock::now();
    if (it->second.posted) board_.withdraw(lease_id(id, it->second.posted->round));
  }
  board_.offer(id, id + ":done", kDoneMarker);
  changed_.notify_all();
}

void WorkerDesk::forget(const std::string& id) {
  board_.withdraw(id + ":done");
  std::lock_guard lock(mu_);
  auto it = workers_.find(id);
  if (it != workers_.end() && !it->second.open) workers_.erase(it);
}

bool WorkerDesk::is_open(const std::string& id) const {
  std::lock_guard lock(mu_);
  auto it = workers_.find(id);
  return it != workers_.end() && it->second.open;
}

void WorkerDesk::post(const std::string& id, WorkerRound round) {
  nlohmann::json item;
  {
    std::lock_guard lock(mu_);
    auto it = workers_.find(id);
    if (it == workers_.end() || !it->second.open) return;
    Worker& w = it->second;
    if (w.posted) board_.withdraw(lease_id(id, w.posted->round));
    item = {{"round", round.round},
            {"config", nlohmann::json::parse(round.config_json)},
            {"checkpoint_sha256", sha256_hex(*round.checkpoint)},
            {"checkpoint_bytes", round.checkpoint->size()}};
    if (round.power_limit_watts) item["power_limit_watts"] = *round.power_limit_watts;
    w.posted = std::move(round);
    w.result.reset();
  }
  board_.offer(id, lease_id(id, item["round"].get<int64_t>()), item.dump());
}

Result<WorkerResult> WorkerDesk::wait(const std::string& id, std::chrono::steady_clock::time_point deadline,
                                      const std::function<bool()>& give_up, std::chrono::milliseconds check_every) {
  std::unique_lock lock(mu_);
  Result<WorkerResult> out = Status::unavailable("no result before the round's deadline");
  while (true) {
    auto it = workers_.find(id);
    if (it == workers_.end() || !it->second.open) {
      out = Status::failed_precondition("the worker was closed");
      break;
    }
    if (it->second.result) {
      out = std::move(*it->second.result);
      break;
    }
    const auto now = std::chrono::steady_clock::now();
    if (now >= deadline) break;
    lock.unlock();
    const bool stop = give_up && give_up();
    lock.lock();
    // A result that came while give_up ran wins: the worker was told it is recorded.
    if (auto again = workers_.find(id); again != workers_.end() && again->second.result) continue;
    if (stop) {
      out = Status::unavailable("the round was given up");
      break;
    }
    changed_.wait_until(lock, std::min(deadline, now + check_every));
  }
  // Taken back, whatever happened: a late result is a conflict.
  if (auto it = workers_.find(id); it != workers_.end() && it->second.posted) {
    board_.withdraw(lease_id(id, it->second.posted->round));
    it->second.posted.reset();
    it->second.result.reset();
  }
  return out;
}

Status WorkerDesk::authenticate(const std::string& id, std::string_view token) const {
  std::lock_guard lock(mu_);
  auto it = workers_.find(id);
  // Hash whatever came, so that an unknown id and a wrong token take the same time.
  const std::string hash = sha256_hex(token);
  if (it == workers_.end() || !tenants::constant_time_equal(hash, it->second.token_sha256))
    return Status::unauthenticated("no worker with this id and token");
  return Status::ok();
}

Result<std::shared_ptr<const std::string>> WorkerDesk::checkpoint(const std::string& id, int64_t round) const {
  std::lock_guard lock(mu_);
  auto it = workers_.find(id);
  if (it == workers_.end() || !it->second.posted || it->second.posted->round != round)
    return Status::conflict("round " + std::to_string(round) + " is not the round posted to this worker now");
  return it->second.posted->checkpoint;
}

Status WorkerDesk::deliver(const std::string& id, int64_t round, const std::string& body) {
  auto frame = split_result_frame(body);
  if (!frame.ok()) return frame.status();
  nlohmann::json j = nlohmann::json::parse(frame->report_json, nullptr, false);
  if (j.is_discarded() || !j.is_object()) return Status::invalid_argument("the result's report is not a JSON object");
  WorkerResult result;
  std::string sha;
  if (Status s = read_result_fields(j, result, sha); !s.is_ok()) return s;
  auto report = fl::round_report_from_json(j["report"]);
  if (!report.ok()) return report.status();
  if (report->round != round)
    return Status::invalid_argument("the result's report is of round " + std::to_string(report->round) + ", not " +
                                    std::to_string(round));
  if (sha256_hex(frame->checkpoint) != sha)
    return Status::invalid_argument("the checkpoint's SHA-256 is not the report's checkpoint_sha256");
  result.report = std::move(*report);
  result.checkpoint = std::string(frame->checkpoint);
  {
    std::lock_guard lock(mu_);
    auto it = workers_.find(id);
    if (it == workers_.end() || !it->second.open || !it->second.posted || it->second.posted->round != round ||
        it->second.result)
      return Status::conflict("round " + std::to_string(round) +
                              " is not the round posted to this worker now (taken back, or already reported)");
    it->second.result = std::move(result);
    // Off the board at once: the worker's next poll must not get the round it just reported.
    board_.withdraw(lease_id(id, round));
  }
  changed_.notify_all();
  return Status::ok();
}

std::optional<size_t> WorkerDesk::result_body_limit(std::string_view id) const {
  std::lock_guard lock(mu_);
  auto it = workers_.find(id);
  if (it == workers_.end() || !it->second.posted) return std::nullopt;
  return 2 * it->second.posted->checkpoint->size() + (size_t{1} << 20);
}

size_t WorkerDesk::open_workers() const {
  std::lock_guard lock(mu_);
  size_t n = 0;
  for (const auto& [id, w] : workers_) n += w.open;
  return n;
}

}  // namespace mufl::scheduler
