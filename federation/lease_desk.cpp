#include "federation/lease_desk.h"

#include <chrono>
#include <filesystem>
#include <memory>

#include "core/file_io.h"
#include "core/ids.h"
#include "core/time_format.h"
#include "federation/update_check.h"

namespace mufl::federation {
namespace {

std::vector<protocol::TensorSpec> specs_of(const protocol::TensorFile& file) {
  std::vector<protocol::TensorSpec> out;
  for (const auto& t : file.tensors) out.push_back({t.name, t.shape});
  return out;
}

}  // namespace

LeaseDesk::LeaseDesk(storage::LeaseStore& store, WorkBoard& board, const Clock& clock, RandomSource& rng,
                     std::string dir, std::function<void(const std::string&)> on_reject)
    : store_(store), board_(board), clock_(clock), rng_(rng), dir_(std::move(dir)), on_reject_(std::move(on_reject)) {}

std::string LeaseDesk::weights_path(const std::string& group_id, int64_t round, int64_t attempt) const {
  return dir_ + "/leases/" + group_id + "-r" + std::to_string(round) + "-a" + std::to_string(attempt) +
         ".safetensors";
}

std::string LeaseDesk::update_path(const std::string& lease_id) const {
  return dir_ + "/leases/" + lease_id + ".update.safetensors";
}

Result<int64_t> LeaseDesk::restore_open_leases() {
  auto open = store_.list_open_leases();
  if (!open.ok()) return open.status();
  for (const auto& l : *open) {
    // After a restart the draw's weights file says what its model holds.
    auto draw = draw_of(l);
    if (!draw.ok()) return draw.status();
    remember_limit(l.id, (*draw)->update_limit);
    board_.offer(l.client_id, l.id, l.assignment_json);
  }
  return static_cast<int64_t>(open->size());
}

Result<std::shared_ptr<const LeaseDesk::Draw>> LeaseDesk::draw_of(const storage::Lease& lease) const {
  const std::string path = weights_path(lease.group_id, lease.round, lease.attempt);
  {
    std::lock_guard lock(limits_mu_);
    if (auto it = open_draws_.find(path); it != open_draws_.end()) return it->second;
  }
  auto bytes = read_file(path);
  if (!bytes.ok()) return Status::not_found("the weights of lease " + lease.id + " are gone (its round ended)");
  auto file = protocol::decode_safetensors(*bytes);
  if (!file.ok())
    return Status::internal("the weights of lease " + lease.id + " in " + path + " do not decode: " +
                            file.status().message());
  auto draw = std::make_shared<Draw>();
  draw->specs = specs_of(*file);
  draw->update_limit = max_update_bytes(draw->specs);
  draw->weights.sha256 = sha256_hex(*bytes);
  draw->weights.bytes = std::make_shared<const std::string>(std::move(*bytes));
  if (lease.state == storage::LeaseState::kOpen) {  // restored after a restart: kept until its draw ends
    std::lock_guard lock(limits_mu_);
    open_draws_.emplace(path, draw);
  }
  return std::shared_ptr<const Draw>(std::move(draw));
}

Result<LeaseDesk::OpenedDraw> LeaseDesk::open_draw(const DrawRequest& draw) {
  std::error_code ec;
  std::filesystem::create_directories(dir_ + "/leases", ec);
  const std::string path = weights_path(draw.group_id, draw.round, draw.attempt);
  if (Status s = write_file_durably(path, draw.global_weights); !s.is_ok()) return s;
  auto shared = std::make_shared<Draw>();  // what every lease of the draw shares
  shared->weights = {std::make_shared<const std::string>(draw.global_weights), sha256_hex(draw.global_weights)};
  shared->specs = draw.tensors;
  shared->update_limit = max_update_bytes(draw.tensors);
  const std::string sha = shared->weights.sha256;
  const size_t limit = shared->update_limit;
  {
    std::lock_guard lock(limits_mu_);
    open_draws_[path] = std::move(shared);
  }
  auto existing = store_.list_round_leases(draw.group_id, draw.round, draw.attempt);
  if (!existing.ok()) return existing.status();
  const int64_t now = clock_.now_unix_ms();
  // The same for every lease of the draw: formatted once.
  const LeaseTimes times{now, format_rfc3339(now), format_rfc3339(draw.deadline_unix_ms)};
  OpenedDraw opened;
  std::vector<storage::Lease> fresh;
  for (const auto& slot : draw.slots) {
    const storage::Lease* kept = nullptr;
    for (const auto& l : *existing)
      if (l.client_id == slot.client_id && l.state != storage::LeaseState::kAbandoned) kept = &l;
    if (kept) {
      remember_limit(kept->id, limit);
      opened.lease_ids.push_back(kept->id);
      if (kept->state == storage::LeaseState::kOpen)
        opened.deadline_unix_ms = std::max(opened.deadline_unix_ms, kept->deadline_unix_ms);
      continue;
    }
    storage::Lease l = new_lease(draw, slot, times, sha);
    opened.lease_ids.push_back(l.id);
    opened.deadline_unix_ms = std::max(opened.deadline_unix_ms, l.deadline_unix_ms);
    fresh.push_back(std::move(l));
  }
  if (Status s = store_.create_leases(fresh); !s.is_ok()) return s;
  std::vector<WorkBoard::Offer> offers;  // only once they are durable
  for (const auto& l : fresh) {
    remember_limit(l.id, limit);
    offers.push_back({l.client_id, l.id, l.assignment_json});
  }
  board_.offer_all(std::move(offers));
  return opened;
}

storage::Lease LeaseDesk::new_lease(const DrawRequest& draw, const DrawRequest::Slot& slot, const LeaseTimes& times,
                                    const std::string& sha) {
  storage::Lease l;
  l.id = new_id("lea", rng_);
  l.group_id = draw.group_id;
  l.round = draw.round;
  l.attempt = draw.attempt;
  l.client_id = slot.client_id;
  l.client_index = slot.client_index;
  l.deadline_unix_ms = draw.deadline_unix_ms;
  l.created_unix_ms = times.created_unix_ms;
  l.assignment_json = nlohmann::json{{"id", l.id},
                                     {"group_id", l.group_id},
                                     {"round", l.round},
                                     {"attempt", l.attempt},
                                     {"created", times.created},
                                     {"deadline", times.deadline},
                                     {"assignment", slot.assignment},
                                     {"weights",
                                      {{"url", "/v1/work/" + l.id + "/weights"},
                                       {"sha256", sha},
                                       {"bytes", draw.global_weights.size()}}}}
                          .dump();
  return l;
}

Result<std::vector<storage::Lease>> LeaseDesk::wait_draw(const std::string& group_id, int64_t round, int64_t attempt,
                                                         int64_t deadline_unix_ms,
                                                         const std::function<bool()>& should_stop, bool& stopped) {
  stopped = false;
  for (;;) {
    auto leases = store_.list_round_leases(group_id, round, attempt);
    if (!leases.ok()) return leases.status();
    const bool all_in = std::none_of(leases->begin(), leases->end(),
                                     [](const storage::Lease& l) { return l.state == storage::LeaseState::kOpen; });
    stopped = should_stop && should_stop();
    const bool late = clock_.now_unix_ms() >= deadline_unix_ms;
    if (all_in || stopped || late) {
      const auto state = stopped ? storage::LeaseState::kAbandoned : storage::LeaseState::kExpired;
      auto closed = store_.close_round_leases(group_id, round, attempt, state, clock_.now_unix_ms());
      if (!closed.ok()) return closed.status();
      for (const auto& l : *leases) board_.withdraw(l.id);
      {
        std::lock_guard lock(limits_mu_);
        open_draws_.erase(weights_path(group_id, round, attempt));
        for (const auto& l : *leases) update_limits_.erase(l.id);
      }
      return store_.list_round_leases(group_id, round, attempt);
    }
    // Woken by a report; else look again shortly (the deadline, a stop request).
    std::unique_lock lock(mu_);
    reported_.wait_for(lock, std::chrono::milliseconds(200));
  }
}

Result<std::string> LeaseDesk::read_update(const storage::Lease& lease) const {
  auto bytes = read_file(lease.update_path);
  if (!bytes.ok()) return bytes.status();
  if (sha256_hex(*bytes) != lease.update_sha256)
    return Status::internal("the update of lease " + lease.id + " in " + lease.update_path + " is damaged");
  return bytes;
}

Result<storage::Lease> LeaseDesk::own_lease(const std::string& client_id, const std::string& lease_id) const {
  auto lease = looks_like_id(lease_id, "lea") ? store_.get_lease(lease_id)
                                              : Result<storage::Lease>(Status::not_found("no lease " + lease_id));
  if (!lease.ok()) return lease.status();
  // Another client's lease is as unknown as a lease that does not exist.
  if (lease->client_id != client_id) return Status::not_found("no lease " + lease_id);
  return lease;
}

Result<LeaseDesk::WeightsFile> LeaseDesk::weights(const std::string& client_id, const std::string& lease_id) const {
  auto lease = own_lease(client_id, lease_id);
  if (!lease.ok()) return lease.status();
  auto draw = draw_of(*lease);
  if (!draw.ok()) return draw.status();
  return (*draw)->weights;
}

void LeaseDesk::remember_limit(const std::string& lease_id, size_t limit) {
  std::lock_guard lock(limits_mu_);
  update_limits_[lease_id] = limit;
}

std::optional<size_t> LeaseDesk::update_body_limit(std::string_view lease_id) const {
  std::lock_guard lock(limits_mu_);
  auto it = update_limits_.find(lease_id);
  if (it == update_limits_.end()) return std::nullopt;
  return it->second;
}

Status LeaseDesk::reject(const std::string& reason, Status status) {
  if (on_reject_) on_reject_(reason);
  return status;
}

Result<storage::Lease> LeaseDesk::accept_update(const std::string& client_id, const std::string& lease_id,
                                                std::string_view body) {
  auto lease = own_lease(client_id, lease_id);
  if (!lease.ok()) return reject("unknown_lease", lease.status());
  const std::string sha = sha256_hex(body);
  if (lease->state == storage::LeaseState::kReported) {
    if (sha == lease->update_sha256) return lease;  // the same update again: idempotent
    return reject("conflict", Status::conflict("lease " + lease_id + " was reported with another update"));
  }
  if (lease->state != storage::LeaseState::kOpen || clock_.now_unix_ms() >= lease->deadline_unix_ms)
    return reject("late", Status::conflict("the deadline of lease " + lease_id + " passed at " +
                                           format_rfc3339(lease->deadline_unix_ms) +
                                           "; the update is a straggler's and is not aggregated"));
  auto draw = draw_of(*lease);  // an update holds the tensors of the weights it was trained from
  if (!draw.ok()) return draw.status();
  auto checked = check_update(body, (*draw)->specs);
  if (!checked.file) {
    Status s = checked.rejection.reason == "too_large"
                   ? Status::resource_exhausted(checked.rejection.detail)
                   : Status::invalid_argument("the update is refused: " + checked.rejection.detail,
                                              {{"update", checked.rejection.reason + ": " + checked.rejection.detail}});
    return reject(checked.rejection.reason, s);
  }
  auto report = checked.file->metadata.find("mufl.report");
  if (report == checked.file->metadata.end() ||
      !nlohmann::json::parse(report->second, nullptr, false).is_object())
    return reject("report", Status::invalid_argument("the update carries no report (metadata \"mufl.report\")",
                                                     {{"update", "report: missing or not a JSON object"}}));
  const std::string path = update_path(lease_id);
  if (Status s = write_file_durably(path, body); !s.is_ok()) return s;
  auto recorded = store_.record_lease_report(lease_id, report->second, path, sha, clock_.now_unix_ms());
  if (!recorded.ok()) {
    // Lost a race with the deadline (or a twin upload): answer as a later call would.
    if (recorded.status().code() == Status::Code::kFailedPrecondition) return accept_update(client_id, lease_id, body);
    return recorded.status();
  }
  board_.withdraw(lease_id);
  reported_.notify_all();
  return recorded;
}

}  // namespace mufl::federation
