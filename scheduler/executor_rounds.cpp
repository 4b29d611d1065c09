// Executor, the part that trains one claimed group round by round (scheduler/executor.h): the
// round loop, the durable end of a round, the split, and what becomes of a group whose
// training stops (released, done, failed, or backed off after a storage error).
#include <spdlog/spdlog.h>

#include <algorithm>
#include <nlohmann/json.hpp>
#include <optional>

#include "core/file_io.h"
#include "core/ids.h"
#include "scheduler/energy/energy_ledger.h"
#include "scheduler/executor.h"
#include "scheduler/grouping/merge_guard.h"

namespace mufl::scheduler {
namespace {

// Large enough never to end a job: the executor decides when a group is done.
constexpr int64_t kJobRounds = 1'000'000;

}  // namespace

fl::JobConfig Executor::job_config(const Group& g, const std::vector<GroupHead>& heads, int64_t round_offset) const {
  const ExecutorOptions& o = options_;
  const auto j = nlohmann::json::parse(g.config_json);
  fl::JobConfig c;
  c.dataset = j.at("dataset");
  c.federation = j.value("federation", std::string());
  c.name = g.id;
  c.round_timeout_seconds = j.value("round_timeout_seconds", int64_t{300});
  if (j.contains("schema")) {
    const auto d = j.at("schema").get<std::vector<int64_t>>();
    c.schema = {d.at(0), d.at(1), d.at(2), d.at(3)};
  }
  for (const auto& h : heads) {
    c.tasks.push_back(h.task);
    c.heads.push_back(h.key);
  }
  c.rounds = kJobRounds;
  c.round_offset = round_offset;
  c.clients = j.at("clients");
  c.clients_per_round = j.at("clients_per_round");
  c.min_clients = j.at("min_clients");
  c.local_epochs = j.at("local_epochs");
  c.batch_size = j.at("batch_size");
  c.learning_rate = j.at("learning_rate");
  c.prox_mu = j.at("prox_mu");
  c.aggregator = j.at("aggregator");
  c.weighting = j.value("weighting", std::string("samples"));
  c.personalized_epochs = j.value("personalized_epochs", false);
  c.local_update = j.value("local_update", std::string("fedavg"));
  c.ema_lambda = j.value("ema_lambda", 0.0);
  // FedEMA's clients keep their models in the group's own directory: a group split from
  // another starts with none (docs/merge-and-split.md).
  if (c.local_update != "fedavg") c.client_state_dir = group_dir(g.id) + "/clients";
  c.client_clusters = j.value("client_clusters", 1);
  c.cluster_round = j.value("cluster_round", int64_t{1});
  c.partition = j.at("partition").at("kind");
  c.dirichlet_alpha = j.at("partition").value("alpha", 0.5);
  c.seed = static_cast<uint64_t>(j.at("seed").get<int64_t>());
  c.client_failure_rate = o.client_failure_rate;
  c.max_round_attempts = o.max_round_attempts;
  c.affinity_every = g.phase == GroupPhase::kConsolidating && heads.size() > 1 ? o.affinity_every : 0;
  // A group born of a split sums its heads' encoder gradients; a merged group (never split, or
  // kept whole by its split) averages them. See fl::EncoderGradient.
  c.encoder_gradient = g.parent_id.empty() ? fl::EncoderGradient::kMean : fl::EncoderGradient::kSum;
  c.balance = o.task_balance;
  c.head_calibration = o.head_calibration;
  c.calibrate_every_client = o.calibrate_every_client;
  return c;
}

namespace {

std::vector<std::string> keys_of(const std::vector<GroupHead>& heads) {
  std::vector<std::string> keys;
  for (const auto& h : heads) keys.push_back(h.key);
  return keys;
}

// Head `head`'s loss and metric in `eval`, by task: {"class": {"loss": …, "accuracy": …}}.
nlohmann::json head_metrics(const std::vector<fl::TaskMetrics>& eval, const std::string& head) {
  nlohmann::json metrics = nlohmann::json::object();
  for (const auto& m : eval)
    if (m.head == head) metrics[m.task] = {{"loss", m.loss}, {m.metric, m.value}};
  return metrics;
}

// The round's clusters of clients (client clustering, once clustered): members, sizes
// and each cluster's metric for `head`.
nlohmann::json clusters_json(const fl::RoundReport& r, const std::string& head) {
  nlohmann::json out = nlohmann::json::array();
  for (const auto& c : r.clusters) {
    out.push_back({{"clients", c.clients},
                   {"size", c.clients.size()},
                   {"samples", c.samples},
                   {"clients_reported", c.clients_reported},
                   {"metrics", head_metrics(c.eval, head)}});
  }
  return out;
}

// One member's view of a group round, as stored in its activity's round history.
nlohmann::json member_report(const fl::RoundReport& r, const std::string& head, int64_t round, int64_t rounds,
                             const Group& g, const std::string& device) {
  nlohmann::json out = {{"round", round},
                        {"rounds", rounds},
                        {"group_id", g.id},
                        {"group_round", r.round},
                        {"device", device},
                        {"attempts", r.attempts},
                        {"clients_sampled", r.clients_sampled},
                        {"clients_reported", r.clients_reported},
                        {"clients_dropped", r.clients_dropped},
                        {"samples", r.samples},
                        {"train_loss", r.train_loss},
                        {"learning_rate", r.learning_rate},
                        {"seconds", r.seconds},
                        {"metrics", head_metrics(r.eval, head)}};
  if (!r.clusters.empty()) out["clusters"] = clusters_json(r, head);  // only then: other reports are unchanged
  // Its head was fitted to the final encoder after this round (fl/head_calibration.h): the
  // metrics are the calibrated model's.
  if (std::count(r.calibrated.begin(), r.calibrated.end(), head)) out["head_calibrated"] = true;
  // Its gradient's alignment with its mates' this round (the merge guard reads it); only when measured.
  if (const auto a = r.alignment.find(head); a != r.alignment.end()) out["alignment"] = a->second;
  return out;
}

// The mean of each pair's measured affinity over the rounds in which both heads trained.
AffinityMatrix mean_affinity(const std::vector<storage::AffinityRecord>& records, const std::vector<GroupHead>& staying) {
  const size_t k = staying.size();
  AffinityMatrix sum(k, std::vector<double>(k, 0.0)), count(k, std::vector<double>(k, 0.0));
  for (const auto& rec : records) {
    const auto j = nlohmann::json::parse(rec.affinity_json);
    const auto rec_heads = j.at("heads").get<std::vector<std::string>>();
    const auto m = j.at("matrix").get<AffinityMatrix>();
    auto index = [&](const std::string& key) -> std::optional<size_t> {
      for (size_t i = 0; i < rec_heads.size(); ++i)
        if (rec_heads[i] == key) return i;
      return std::nullopt;
    };
    for (size_t a = 0; a < k; ++a)
      for (size_t b = 0; b < k; ++b) {
        const auto ia = index(staying[a].key), ib = index(staying[b].key);
        if (!ia || !ib) continue;  // one of them had not joined yet
        sum[a][b] += m[*ia][*ib];
        count[a][b] += 1;
      }
  }
  AffinityMatrix mean(k, std::vector<double>(k, 0.0));
  for (size_t a = 0; a < k; ++a)
    for (size_t b = 0; b < k; ++b) mean[a][b] = count[a][b] > 0 ? sum[a][b] / count[a][b] : 0.0;
  return mean;
}

// A member's round report (member_report), parsed, when that round was trained in group
// `group_id`; nullopt for another group's round or a report that is not an object.
std::optional<nlohmann::json> report_in(const std::string& report_json, const std::string& group_id) {
  auto j = nlohmann::json::parse(report_json, nullptr, /*allow_exceptions=*/false);
  if (!j.is_object() || j.value("group_id", "") != group_id) return std::nullopt;
  return j;
}

// The test loss of `task` in a member's round report.
std::optional<double> test_loss_in(const nlohmann::json& report, const std::string& task) {
  const auto m = report.find("metrics");
  if (m == report.end() || !m->is_object()) return std::nullopt;
  const auto t = m->find(task);
  if (t == m->end() || !t->is_object()) return std::nullopt;
  const auto loss = t->find("loss");
  if (loss == t->end() || !loss->is_number()) return std::nullopt;
  return loss->get<double>();
}

// The member's alignment with its mates in a round report, when that round measured it.
std::optional<double> alignment_in(const nlohmann::json& report) {
  const auto a = report.find("alignment");
  if (a == report.end() || !a->is_number()) return std::nullopt;
  return a->get<double>();
}

// The mean of the last `window` alignments, nullopt unless each of those rounds measured one.
std::optional<double> window_alignment(const std::vector<std::optional<double>>& rounds, int window) {
  if (window < 1 || rounds.size() < static_cast<size_t>(window)) return std::nullopt;
  double sum = 0;
  for (size_t i = rounds.size() - static_cast<size_t>(window); i < rounds.size(); ++i) {
    if (!rounds[i]) return std::nullopt;
    sum += *rounds[i];
  }
  return sum / window;
}

}  // namespace

Executor::Outcome Executor::from_store(const Status& s, const std::string& what) {
  const std::string reason = what + ": " + s.message();
  return s.is_transient() ? Outcome::storage(reason, s.code()) : Outcome::failed(reason);
}

std::string Executor::checkpoint_path(const std::string& group_id, int64_t round) const {
  return group_dir(group_id) + "/checkpoint-" + std::to_string(round) + ".pt";
}

void Executor::train(Group group, const Device& device) {
  auto run = std::make_shared<Running>();
  {
    std::lock_guard lock(mu_);
    running_[group.id] = run;
    if (stopping_) run->stop.store(true);
  }
  GroupRun g{std::move(group), device, {options_.data_dir, device.torch_device, options_.client_pools}, run, nullptr, {},
             backend_for(device)};
  const Outcome outcome = train_rounds(g);
  conclude(g, outcome);
  std::lock_guard lock(mu_);
  running_.erase(g.group.id);
}

Executor::Outcome Executor::train_rounds(GroupRun& g) {
  if (!g.group.heads.empty()) {  // resume from the checkpoint
    auto job = load_job(g);
    if (!job.ok()) return from_store(job.status(), "cannot resume");
    g.job = std::move(*job);
    spdlog::info("group {} resumes after round {} on {}", g.group.id, g.group.round, g.device.name);
  } else {
    spdlog::info("group {} starts on {}", g.group.id, g.device.name);
  }
  bool just_claimed = true;  // the claim's decision covers the first round
  int round_errors = 0;      // failures of the next round in a row
  while (!g.run->stop.load()) {
    // Plan here too, not only in idle workers: with every device busy, a compatible arrival
    // must still be able to join this group while it consolidates.
    plan();
    // Membership as the store has it now: joins and cancels since the last round.
    auto fresh = store_.get_group(g.group.id, storage::Scope::all());
    if (!fresh.ok()) return from_store(fresh.status(), "cannot read the group");
    g.group.members = fresh->members;
    const auto heads = live_heads(g.group);
    {
      std::lock_guard lock(mu_);
      g.run->live.clear();
      for (const auto& h : heads) g.run->live.insert(h.key);
    }
    if (heads.empty()) return Outcome::done();
    if (auto pause = pause_at_boundary(g, just_claimed)) return *pause;
    just_claimed = false;
    if (!g.job || g.job->heads() != keys_of(heads)) {
      const auto config = job_config(g.group, heads, g.group.round);
      auto next = g.job ? g.backend->derive(*g.job, config, g.runtime) : g.backend->create(config, g.runtime);
      if (!next.ok()) return Outcome::failed("cannot build the model: " + next.status().message());
      g.job = std::move(*next);
    }
    // The end of consolidation is checked before a round, so that a group resumed after its
    // last consolidating round splits exactly as an unbroken run does.
    if (g.group.phase == GroupPhase::kConsolidating && g.group.round >= g.group.consolidation_rounds) {
      auto split = split_now(g);
      if (split) return *split;
      continue;  // kept together: it trains on
    }
    // After consolidation (the affinity decides then), a member whose loss falls behind its
    // mates' leaves at this boundary (scheduler/grouping/merge_guard.h).
    if (g.group.phase == GroupPhase::kTraining)
      if (auto left = guard_now(g, heads)) return *left;
    g.job->set_final_heads(finishing_heads(heads));
    auto report = run_one_round(g, heads);
    if (!report.ok()) {
      // A runtime error (a LibTorch exception, an out-of-memory) is retried from the last
      // checkpoint a bounded number of times; one the same settings meet again fails now.
      const Status& s = report.status();
      // A cluster that cannot take the round now (sbatch refused or timed out) is waited out
      // like a storage error: the device goes back and the group is claimed again after a backoff.
      if (g.device.on_cluster() && s.code() == Status::Code::kUnavailable) return from_store(s, "the cluster");
      const bool retry = s.code() == Status::Code::kInternal || s.is_transient();
      if (!retry) return Outcome::failed(s.message());
      if (++round_errors >= options_.max_round_errors)
        return Outcome::failed("round " + std::to_string(g.group.round + 1) + " failed " +
                               std::to_string(round_errors) + " times: " + s.message());
      spdlog::warn("group {}: round {} failed ({} of {} tries): {}; it is redone from its checkpoint", g.group.id,
                   g.group.round + 1, round_errors, options_.max_round_errors, s.message());
      auto again = load_job(g);  // nullptr when there is no checkpoint yet: built afresh
      if (!again.ok()) return from_store(again.status(), "cannot resume");
      g.job = std::move(*again);
      continue;
    }
    if (report->stopped) continue;  // shutdown, or every member cancelled: the loop decides
    round_errors = 0;
    if (auto trouble = commit_round(g, heads, *report)) return *trouble;
  }
  return Outcome::stopped();
}

std::optional<Executor::Outcome> Executor::pause_at_boundary(GroupRun& g, bool just_claimed) {
  // A draining device lets the group go; so does a group whose tenants have all used up their
  // energy budgets (claimed again when a budget is raised), and one the policy holds.
  if (DeviceInventory* inv = inventory_for(g.device); inv && inv->should_release(g.device.name)) {
    spdlog::info("device {} drains: group {} waits for another device after round {}", g.device.name, g.group.id,
                 g.group.round);
    return Outcome::stopped();
  }
  if (auto over = store_.group_over_budget(g.group.id); over.ok() && *over) {
    spdlog::info("group {} pauses after round {}: its tenants have used their energy budgets", g.group.id,
                 g.group.round);
    return Outcome::stopped();
  }
  if (just_claimed) return std::nullopt;
  if (auto held = hold_at_boundary(g.group, g.device)) {
    spdlog::info("group {} waits after round {}: {}", g.group.id, g.group.round, held->reason);
    if (options_.board) options_.board->set(g.group.id, {WaitReason::kCarbon, held->reason});
    observer_->placement_decided(dispatcher_->name(), "hold", 1);
    return Outcome::stopped();
  }
  return std::nullopt;
}

std::vector<std::string> Executor::finishing_heads(const std::vector<GroupHead>& heads) {
  std::vector<std::string> out;
  for (const auto& h : heads) {
    auto a = store_.get_activity(h.key, storage::Scope::all());
    if (a.ok() && !is_terminal(a->state) && a->progress.rounds_done + 1 >= a->spec.rounds) out.push_back(h.key);
  }
  return out;
}

Result<fl::RoundReport> Executor::run_one_round(GroupRun& g, const std::vector<GroupHead>& heads) {
  const auto should_stop = [&] { return g.run->stop.load(std::memory_order_relaxed); };
  DeviceInventory* inv = inventory_for(g.device);
  const int64_t start_ms = now_ms();
  if (inv) inv->unit_started(g.device.name, g.group.id, g.group.round + 1);
  auto report = g.job->run_round(should_stop);
  // An abandoned or failed round spent energy too: it goes to the ledger, flagged. A lane's
  // round is the server's work on it (an abandoned one's is not known: not recorded).
  std::optional<UnitMeasurement> measured;
  if (inv)
    measured = inv->unit_finished(g.device.name);
  else if (is_lane(g.device) && report.ok() && !report->stopped)
    measured = lane_measurement(g.device, *report, start_ms);
  if (report.ok() && !report->stopped) {
    g.measured = measured;
    return report;
  }
  const char* why = "failed";
  if (report.ok()) {
    std::lock_guard lock(mu_);
    why = stopping_ ? "shutdown" : "cancelled";
  }
  record_abandoned(g.group, g.group.round + 1, heads, measured, why);
  return report;
}

std::optional<Executor::Outcome> Executor::write_models(GroupRun& g, const std::string& key, int64_t own_round,
                                                        storage::GroupRoundRecord& record) {
  const auto written = [&](const std::string& name, const std::string& bytes) {
    return storage::StoredFile{own_round, activity_dir(key) + "/" + name, sha256_hex(bytes),
                               static_cast<int64_t>(bytes.size())};
  };
  auto model = g.job->export_model(key);
  if (!model.ok()) return Outcome::failed(model.status().message());
  record.finished.emplace_back(key, written("model.pt", *model));
  if (Status s = write_file_durably(env(), record.finished.back().second.path, *model); !s.is_ok())
    return from_store(s, "cannot write the model of " + key);
  // Client clustering: every cluster's model too ("model.c<c>"; the one above is the largest's).
  auto clusters = g.job->export_cluster_models(key);
  if (!clusters.ok()) return Outcome::failed(clusters.status().message());
  for (size_t c = 0; c < clusters->size(); ++c) {
    const std::string& bytes = (*clusters)[c];
    record.cluster_models.emplace_back(key, static_cast<int64_t>(c),
                                       written("model.c" + std::to_string(c) + ".pt", bytes));
    if (Status s = write_file_durably(env(), std::get<2>(record.cluster_models.back()).path, bytes); !s.is_ok())
      return from_store(s, "cannot write the model of cluster " + std::to_string(c) + " of " + key);
  }
  return std::nullopt;
}

std::optional<Executor::Outcome> Executor::commit_round(GroupRun& g, const std::vector<GroupHead>& heads,
                                                        const fl::RoundReport& report) {
  // Durable files first (each under a name of its own), then one transaction that trusts them.
  auto bytes = g.job->checkpoint();
  if (!bytes.ok()) return Outcome::failed(bytes.status().message());
  storage::GroupRoundRecord record;
  record.group_id = g.group.id;
  record.round = report.round;
  record.heads = heads;
  record.job_round_offset = report.round - g.job->rounds_done();
  record.checkpoint = {report.round, checkpoint_path(g.group.id, report.round), sha256_hex(*bytes),
                       static_cast<int64_t>(bytes->size())};
  if (Status s = write_file_durably(env(), record.checkpoint.path, *bytes); !s.is_ok())
    return from_store(s, "cannot write the checkpoint of round " + std::to_string(report.round));
  std::vector<std::pair<std::string, int64_t>> progress;
  for (const auto& h : heads) {
    auto a = store_.get_activity(h.key, storage::Scope::all());
    if (!a.ok() || is_terminal(a->state)) continue;  // cancelled meanwhile
    const int64_t own_round = a->progress.rounds_done + 1;
    record.reports.emplace_back(h.key,
                                member_report(report, h.key, own_round, a->spec.rounds, g.group, g.device.name).dump());
    progress.emplace_back(h.key, own_round);
    if (own_round < a->spec.rounds) continue;
    if (auto failed = write_models(g, h.key, own_round, record)) return failed;
  }
  if (!report.affinity.empty()) {
    record.affinity_json = nlohmann::json{{"heads", keys_of(heads)},
                                          {"matrix", report.affinity},
                                          {"lookaheads", report.lookaheads},
                                          {"seconds", report.affinity_seconds}}
                               .dump();
  }
  if (g.measured)
    record.energy = make_energy_unit(g.group, report.round, heads, *g.measured, carbon(),
                                     {report.client_joules, report.client_meters});
  Status recorded = store_.record_group_round(record, now_ms());
  if (recorded.code() == Status::Code::kFailedPrecondition) return Outcome::gone();  // no longer live
  if (!recorded.is_ok()) {
    record_abandoned(g.group, report.round, heads, g.measured, "storage");
    return from_store(recorded, "cannot record round " + std::to_string(report.round));
  }
  // The round is durable: the checkpoint before the previous one is no longer needed, nor are
  // the client states (FedEMA) that only it needed.
  const std::string previous = g.group.checkpoint_path;
  const int64_t previous_round = g.group.round;
  g.group.round = report.round;
  g.group.heads = heads;
  g.group.job_round_offset = record.job_round_offset;
  g.group.checkpoint_path = record.checkpoint.path;
  g.group.checkpoint_sha256 = record.checkpoint.sha256;
  prune_checkpoints(g.group.id, {record.checkpoint.path, previous});
  if (Status s = g.job->release_client_states(previous_round); !s.is_ok())
    spdlog::warn("group {}: cannot remove old client states: {}", g.group.id, s.message());
  storage_recovered(g.group.id);
  announce_round(g, report, record, progress);
  return std::nullopt;
}

void Executor::announce_round(const GroupRun& g, const fl::RoundReport& report,
                              const storage::GroupRoundRecord& record,
                              const std::vector<std::pair<std::string, int64_t>>& progress) {
  {
    std::lock_guard lock(mu_);
    double& per_round = round_seconds_[g.group.id];
    per_round = per_round > 0 ? 0.5 * per_round + 0.5 * report.seconds : report.seconds;
  }
  observer_->round_finished(g.group, g.device.name, report);
  if (record.energy) observer_->energy_recorded(*record.energy);
  for (const auto& [id, r] : progress) {
    auto a = store_.get_activity(id, storage::Scope::all());
    if (a.ok()) observer_->activity_progress(id, r, a->spec.rounds);
  }
  for (const auto& [id, file] : record.finished) {
    spdlog::info("activity {} succeeded after {} rounds (group {})", id, file.round, g.group.id);
    observer_->activity_ended(id, ActivityState::kSucceeded);
  }
}

std::optional<Executor::Outcome> Executor::guard_now(GroupRun& g, const std::vector<GroupHead>& heads) {
  if (options_.guard.window < 1 || heads.size() < 2) return std::nullopt;
  // Each head's test loss over its own last window + 1 rounds, those trained in this group only:
  // the guard compares mates over rounds they trained together.
  std::vector<std::vector<double>> losses;
  std::vector<std::optional<double>> alignment;
  for (const auto& h : heads) {
    auto a = store_.get_activity(h.key, storage::Scope::all());
    if (!a.ok()) return from_store(a.status(), "cannot read " + h.key);
    storage::RoundQuery q;
    q.scope = storage::Scope::all();
    q.after_round = std::max<int64_t>(0, a->progress.rounds_done - options_.guard.window - 1);
    q.limit = options_.guard.window + 1;
    auto page = store_.list_rounds(h.key, q);
    if (!page.ok()) return from_store(page.status(), "cannot read the rounds of " + h.key);
    std::vector<double> l;
    std::vector<std::optional<double>> aligned;
    for (const auto& r : page->items) {
      const auto report = report_in(r.report_json, g.group.id);
      if (!report) continue;
      if (auto loss = test_loss_in(*report, h.task)) {
        l.push_back(*loss);
        aligned.push_back(alignment_in(*report));
      }
    }
    losses.push_back(std::move(l));
    alignment.push_back(window_alignment(aligned, options_.guard.window));
  }
  auto verdict = lagging_head(losses, options_.guard, alignment);
  if (!verdict) return std::nullopt;
  const std::vector<std::string> keys = keys_of(heads);
  std::vector<int> alone{static_cast<int>(verdict->head)}, rest;
  for (size_t i = 0; i < heads.size(); ++i)
    if (i != verdict->head) rest.push_back(static_cast<int>(i));
  nlohmann::json split = {{"reason", "guard"},
                          {"tasks", keys},
                          {"round", g.group.round},
                          {"method", "guard"},
                          {"groups", {{keys[verdict->head]}, nlohmann::json::array()}},
                          {"guard",
                           {{"activity_id", keys[verdict->head]},
                            {"window", options_.guard.window},
                            {"progress", verdict->progress},
                            {"others_progress", verdict->others},
                            {"detail", verdict->reason}}}};
  if (verdict->alignment) split["guard"]["alignment"] = *verdict->alignment;
  for (int i : rest) split["groups"][1].push_back(keys[static_cast<size_t>(i)]);
  spdlog::info("group {}: {} leaves after round {}: {}", g.group.id, keys[verdict->head], g.group.round,
               verdict->reason);
  return split_into(g, heads, {alone, rest}, std::move(split));
}

std::optional<Executor::Outcome> Executor::split_now(GroupRun& g) {
  const auto staying = live_heads(g.group);
  auto affinity = store_.list_affinity(g.group.id);
  if (!affinity.ok()) return from_store(affinity.status(), "cannot read affinity");
  const size_t k = staying.size();
  const AffinityMatrix mean = mean_affinity(*affinity, staying);
  const std::vector<std::string> staying_keys = keys_of(staying);
  nlohmann::json split = {{"tasks", staying_keys}, {"matrix", mean}, {"round", g.group.round}};
  std::vector<std::vector<int>> parts;
  if (k >= 2) {
    SplitOptions split_options = options_.split;
    if (options_.grouping.split_by_loss_kind)
      for (const auto& head : staying) split_options.kinds.push_back(loss_kind(head.task));
    auto plan = plan_split(mean, split_options);
    if (!plan.ok()) return Outcome::failed("cannot plan the split: " + plan.status().message());
    parts = plan->groups;
    split["by_loss_kind"] = options_.grouping.split_by_loss_kind;
    split["score"] = plan->score;
    split["method"] = plan->method;
    split["partitions_scored"] = plan->partitions_scored;
  } else {
    parts = {{0}};
    split["score"] = 0.0;
    split["method"] = "single";
  }
  nlohmann::json named = nlohmann::json::array();
  for (const auto& p : parts) {
    nlohmann::json ids = nlohmann::json::array();
    for (int i : p) ids.push_back(staying_keys[static_cast<size_t>(i)]);
    named.push_back(ids);
  }
  split["groups"] = named;

  if (parts.size() <= 1) {  // one group: it simply trains on, without measuring
    if (Status s = store_.end_consolidation(g.group.id, split.dump(), now_ms()); !s.is_ok())
      return from_store(s, "cannot end consolidation");
    g.group.phase = GroupPhase::kTraining;
    g.job->set_affinity_every(0);
    spdlog::info("group {} keeps its {} activities together after round {}", g.group.id, k, g.group.round);
    return std::nullopt;
  }
  return split_into(g, staying, parts, std::move(split));
}

Executor::Outcome Executor::split_into(GroupRun& g, const std::vector<GroupHead>& staying,
                                       const std::vector<std::vector<int>>& parts, nlohmann::json split) {
  std::vector<Group> children;
  nlohmann::json child_ids = nlohmann::json::array();
  for (const auto& p : parts) {
    Group child;
    child.id = new_id("grp", rng_);
    child.parent_id = g.group.id;
    child.phase = GroupPhase::kTraining;
    child.policy = g.group.policy;
    child.compat_key = g.group.compat_key;
    child.config_json = g.group.config_json;
    child.round = g.group.round;
    child.job_round_offset = g.group.round;
    for (int i : p) child.heads.push_back(staying[static_cast<size_t>(i)]);
    auto derived = g.backend->derive(*g.job, job_config(child, child.heads, g.group.round), g.runtime);
    if (!derived.ok()) return Outcome::failed("cannot split the model: " + derived.status().message());
    auto child_bytes = (*derived)->checkpoint();
    if (!child_bytes.ok()) return Outcome::failed(child_bytes.status().message());
    child.checkpoint_path = checkpoint_path(child.id, g.group.round);
    if (Status s = write_file_durably(env(), child.checkpoint_path, *child_bytes); !s.is_ok())
      return from_store(s, "cannot write a child's checkpoint");
    child.checkpoint_sha256 = sha256_hex(*child_bytes);
    for (const auto& h : child.heads)
      for (const auto& m : g.group.members)
        if (m.activity_id == h.key) child.members.push_back({m.activity_id, m.tenant_id, m.task, g.group.round, {}, {}});
    child_ids.push_back(child.id);
    children.push_back(std::move(child));
  }
  split["child_groups"] = child_ids;
  {
    std::lock_guard lock(mu_);
    const double per_round = round_seconds_[g.group.id];
    for (const Group& child : children) round_seconds_[child.id] = per_round;
  }
  if (Status s = store_.split_group(g.group.id, split.dump(), children, now_ms()); !s.is_ok())
    return from_store(s, "cannot record the split");
  spdlog::info("group {} splits after round {} into {} groups ({}): {}", g.group.id, g.group.round, children.size(),
               split.value("reason", "affinity"), split.at("groups").dump());
  observer_->group_split(g.group, children.size());
  drop_client_states(g.group.id);  // the children start without them (docs/merge-and-split.md)
  return Outcome::gone();  // the children are new groups: any worker claims them
}

void Executor::conclude(GroupRun& g, const Outcome& outcome) {
  const std::string& id = g.group.id;
  switch (outcome.kind) {
    case Outcome::Kind::kGone:
      return;
    case Outcome::Kind::kDone:
      spdlog::info("group {} is done after round {}", id, g.group.round);
      if (Status s = persist([&] { return store_.finish_group(id, GroupPhase::kDone, "", now_ms()); }); !s.is_ok())
        spdlog::error("group {}: {}", id, s.to_string());
      else
        drop_client_states(id);
      return;
    case Outcome::Kind::kFailed: {
      spdlog::warn("group {} failed: {}", id, outcome.reason);
      // Recorded first, announced after: an observer that reads the store sees the failure.
      Status s = persist([&] { return store_.finish_group(id, GroupPhase::kFailed, outcome.reason, now_ms()); });
      if (!s.is_ok()) spdlog::error("group {}: cannot record its failure: {}", id, s.to_string());
      else drop_client_states(id);  // a failed group never trains again: nothing can need them
      for (const auto& h : live_heads(g.group)) observer_->activity_ended(h.key, ActivityState::kFailed);
      return;
    }
    case Outcome::Kind::kStorage:
      back_off(id, outcome.reason, outcome.code);
      break;
    case Outcome::Kind::kStopped:
      break;
  }
  // Stopped or backed off: a shutdown leaves the group to the next start; when every member was
  // cancelled the group is done; otherwise its device goes back and it waits to be claimed.
  if (auto fresh = store_.get_group(id, storage::Scope::all()); fresh.ok() && live_heads(*fresh).empty()) {
    if (Status s = persist([&] { return store_.finish_group(id, GroupPhase::kDone, "", now_ms()); }); !s.is_ok())
      spdlog::error("group {}: {}", id, s.to_string());
    else
      drop_client_states(id);  // as for kDone: a stop right after the last round must not keep them
    return;
  }
  if (Status s = persist([&] { return store_.release_group(id, now_ms()); }); !s.is_ok())
    spdlog::error("group {}: cannot release it: {}", id, s.to_string());
}

Status Executor::persist(const std::function<Status()>& write) {
  for (int attempt = 0;; ++attempt) {
    Status s = write();
    if (s.is_ok() || !s.is_transient()) return s;
    if (attempt == 0) spdlog::warn("executor: {}; retrying until it passes", s.message());
    std::unique_lock lock(mu_);
    if (stopping_) return s;  // the next start() releases what this one could not
    wake_.wait_for(lock, std::chrono::milliseconds(storage_delay_ms(attempt + 1)), [&] { return stopping_; });
  }
}

void Executor::record_abandoned(const Group& group, int64_t round, const std::vector<GroupHead>& heads,
                                const std::optional<UnitMeasurement>& measured, const char* why) {
  if (!measured || heads.empty()) return;
  storage::EnergyUnit unit = make_energy_unit(group, round, heads, *measured, carbon());
  unit.abandoned = why;
  if (Status s = store_.record_abandoned_unit(unit); !s.is_ok()) {
    spdlog::error("group {}: cannot record the energy of its abandoned round {}: {}", group.id, round, s.to_string());
    return;
  }
  spdlog::info("group {}: round {} abandoned ({}) after {:.1f} J on {}", group.id, round, why, unit.joules,
               unit.device);
  observer_->energy_recorded(unit);
}

const CarbonIntensity& Executor::carbon() const {
  static const CarbonIntensity kDefaultCarbon = CarbonIntensity::constant(kDefaultCarbonGPerKwh);
  return options_.carbon ? *options_.carbon : kDefaultCarbon;
}

}  // namespace mufl::scheduler
