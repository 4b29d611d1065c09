#include "scheduler/executor.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <nlohmann/json.hpp>

#include "core/file_io.h"
#include "core/ids.h"
#include "scheduler/energy_ledger.h"
#include "scheduler/power_profile.h"

namespace mufl::scheduler {
namespace {

// Large enough never to end a job: the executor decides when a group is done.
constexpr int64_t kJobRounds = 1'000'000;

fl::JobConfig job_config(const Group& g, const ExecutorOptions& o, const std::vector<GroupHead>& heads,
                         int64_t round_offset) {
  const auto j = nlohmann::json::parse(g.config_json);
  fl::JobConfig c;
  c.dataset = j.at("dataset");
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
  c.partition = j.at("partition").at("kind");
  c.dirichlet_alpha = j.at("partition").value("alpha", 0.5);
  c.seed = static_cast<uint64_t>(j.at("seed").get<int64_t>());
  c.client_failure_rate = o.client_failure_rate;
  c.max_round_attempts = o.max_round_attempts;
  c.affinity_every = g.phase == GroupPhase::kConsolidating && heads.size() > 1 ? o.affinity_every : 0;
  // A group born of a split sums its heads' encoder gradients; a merged group (never split, or
  // kept whole by its split) averages them. See fl::EncoderGradient.
  c.encoder_gradient = g.parent_id.empty() ? fl::EncoderGradient::kMean : fl::EncoderGradient::kSum;
  return c;
}

std::vector<GroupHead> live_heads(const Group& g) {
  std::vector<GroupHead> out;
  for (const auto& m : g.members)
    if (!m.left_round) out.push_back({m.activity_id, m.task});
  return out;
}

// One member's view of a group round, as stored in its activity's round history.
nlohmann::json member_report(const fl::RoundReport& r, const std::string& head, int64_t round, int64_t rounds,
                             const Group& g, const std::string& device) {
  nlohmann::json metrics = nlohmann::json::object();
  for (const auto& m : r.eval)
    if (m.head == head) metrics[m.task] = {{"loss", m.loss}, {m.metric, m.value}};
  return {{"round", round},
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
          {"metrics", metrics}};
}

}  // namespace

Executor::Executor(storage::Store& store, const Clock& clock, ExecutorOptions options, ExecutorObserver* observer)
    : store_(store), clock_(clock), options_(std::move(options)), observer_(observer ? observer : &no_observer_) {
  dispatcher_ = options_.dispatcher;
  if (dispatcher_ == nullptr) {
    auto fifo = Dispatcher::create(DispatchOptions{});  // fifo needs nothing that can fail
    own_dispatcher_ = std::make_unique<Dispatcher>(std::move(*fifo));
    dispatcher_ = own_dispatcher_.get();
  }
}

Executor::~Executor() { stop(); }

Status Executor::start() {
  auto requeued = store_.requeue_interrupted(clock_.now_unix_ms());
  if (!requeued.ok()) return requeued.status();
  if (*requeued > 0) spdlog::info("executor: {} interrupted activities go back to the queue", *requeued);
  if (options_.inventory) options_.inventory->set_resume_listener([this] { wake_all(); });
  std::lock_guard lock(mu_);
  stopping_ = false;
  for (const auto& d : options_.devices) workers_.emplace_back([this, d] { worker(d); });
  return Status::ok();
}

void Executor::stop() {
  std::vector<std::thread> workers;
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
    for (auto& [id, run] : running_) run->stop.store(true);
    workers.swap(workers_);
  }
  wake_.notify_all();
  for (auto& t : workers) t.join();
}

void Executor::wake_all() {
  {
    std::lock_guard lock(mu_);
    ++submissions_;
  }
  wake_.notify_all();
}

void Executor::submitted() { wake_all(); }

void Executor::cancelled(const std::string& activity_id) {
  observer_->activity_ended(activity_id, ActivityState::kCancelled);
  std::lock_guard lock(mu_);
  for (auto& [id, run] : running_) {
    if (!run->live.count(activity_id)) continue;
    run->cancelled.insert(activity_id);
    // The last live member went: nothing left worth finishing the round for.
    if (std::includes(run->cancelled.begin(), run->cancelled.end(), run->live.begin(), run->live.end()))
      run->stop.store(true);
  }
}

std::string Executor::activity_dir(const std::string& activity_id) const {
  return options_.data_dir + "/activities/" + activity_id;
}

std::string Executor::group_dir(const std::string& group_id) const { return options_.data_dir + "/groups/" + group_id; }

std::optional<int64_t> Executor::plan() {
  std::lock_guard lock(plan_mu_);
  auto ungrouped = store_.list_ungrouped_queued();
  if (!ungrouped.ok()) {
    spdlog::error("planner: {}", ungrouped.status().to_string());
    return std::nullopt;
  }
  if (ungrouped->empty()) return std::nullopt;
  std::vector<Group> live;
  for (GroupPhase phase : {GroupPhase::kConsolidating, GroupPhase::kTraining}) {
    storage::GroupQuery q;
    q.phase = phase;
    q.limit = 1000;
    auto page = store_.list_groups(q);
    if (!page.ok()) {
      spdlog::error("planner: {}", page.status().to_string());
      return std::nullopt;
    }
    live.insert(live.end(), page->items.begin(), page->items.end());
  }
  auto decision = plan_groups(*ungrouped, live, options_.grouping, clock_.now_unix_ms(),
                              [this] { return new_id("grp", rng_); });
  if (!decision.plan.new_groups.empty() || !decision.plan.joins.empty()) {
    auto applied = store_.apply_group_plan(decision.plan, clock_.now_unix_ms());
    if (!applied.ok()) {
      spdlog::error("planner: cannot apply the plan: {}", applied.status().to_string());
    } else {
      int64_t merged = 0;
      for (const auto& g : decision.plan.new_groups) {
        if (g.members.size() > 1) ++merged;
        spdlog::info("group {} ({}, {}) forms with {} activities", g.id, g.policy, to_string(g.phase),
                     g.members.size());
      }
      for (const auto& [gid, m] : decision.plan.joins) spdlog::info("activity {} joins group {}", m.activity_id, gid);
      observer_->groups_formed(merged, static_cast<int64_t>(decision.plan.joins.size()));
      wake_all();
    }
  }
  return decision.replan_at_unix_ms;
}

void Executor::worker(const Device& device) {
  if (options_.torch_threads > 0) fl::set_torch_threads(options_.torch_threads);
  spdlog::info("worker {} trains with {} LibTorch threads", device.name, fl::torch_threads());
  const bool exclusive = options_.grouping.policy == GroupingPolicy::kSequential;
  int lost_races = 0;
  while (true) {
    uint64_t seen;
    {
      std::lock_guard lock(mu_);
      if (stopping_) return;
      seen = submissions_;
    }
    const auto replan_at = plan();
    DeviceInventory* inv = options_.inventory;
    // A drained device claims nothing; resume() wakes the workers.
    Result<std::optional<Group>> claimed = std::optional<Group>();
    std::optional<int64_t> retry_at;
    bool again = false;
    if (!inv || inv->may_claim(device.name)) claimed = claim_for(device, exclusive, retry_at, again);
    if (!claimed.ok()) {
      spdlog::error("executor {}: cannot claim work: {}", device.name, claimed.status().to_string());
    } else if (*claimed) {
      lost_races = 0;
      if (inv) inv->group_claimed(device.name, (*claimed)->id);
      // Under `energy` another idle device may have left a group to this one: let it look again.
      if (dispatcher_->name() == "energy") wake_all();
      train(std::move(**claimed), device);
      if (inv) inv->group_released(device.name);
      wake_all();  // a device is free again (sequential), or a split made children
      continue;
    }
    if (again && ++lost_races < 3) continue;  // another device took the chosen group: ask again
    lost_races = 0;
    // Nothing to do: sleep until an event, a merge window ends, a hold ends, or stop. An event
    // between the claim and here bumped `submissions_`, so it is not missed.
    auto wait = std::chrono::milliseconds(claimed.ok() ? 60'000 : 1'000);
    const int64_t now_ms = clock_.now_unix_ms();
    for (const auto& at : {replan_at, retry_at})
      if (at) wait = std::min(wait, std::chrono::milliseconds(std::max<int64_t>(1, *at - now_ms)));
    std::unique_lock lock(mu_);
    wake_.wait_for(lock, wait, [&] { return stopping_ || submissions_ != seen; });
  }
}

FreeDevice Executor::free_device(const Device& device) const {
  const std::string model = device.torch_device == "cpu" ? "cpu" : options_.gpu_profile;
  auto found = find_power_profile(model);
  const std::string& name = found.ok() ? found->model : std::string("V100");
  for (const PowerProfile& p : builtin_power_profiles())  // the registry lives forever
    if (p.model == name) return {device.name, &p};
  return {device.name, &builtin_power_profiles().front()};
}

Status Executor::fill_context(DispatchInput& in) {
  in.total_devices = std::max<int>(1, static_cast<int>(options_.devices.size()));
  if (dispatcher_->policy().order().name() == "drf") {  // only the fair order reads the shares
    for (GroupPhase phase : {GroupPhase::kConsolidating, GroupPhase::kTraining}) {
      storage::GroupQuery q;
      q.phase = phase;
      q.limit = 1000;
      auto page = store_.list_groups(q);
      if (!page.ok()) return page.status();
      for (const Group& g : page->items) {
        if (g.device.empty()) continue;
        const auto heads = live_heads(g);
        for (const GroupMember& m : g.members)
          if (!m.left_round) in.tenant_devices[m.tenant_id] += 1.0 / static_cast<double>(heads.size());
      }
    }
  }
  std::lock_guard lock(mu_);
  for (const auto& g : in.groups) {
    auto seen = first_seen_ms_.try_emplace(g.id, in.now_unix_ms).first;
    in.first_seen_ms[g.id] = seen->second;
    if (auto r = round_seconds_.find(g.id); r != round_seconds_.end()) in.round_seconds[g.id] = r->second;
  }
  return Status::ok();
}

Result<std::optional<Group>> Executor::claim_for(const Device& device, bool exclusive,
                                                 std::optional<int64_t>& retry_at, bool& again) {
  auto groups = store_.list_claimable_groups(exclusive);
  if (!groups.ok()) return groups.status();
  if (groups->empty()) return std::optional<Group>();
  DispatchInput in;
  in.groups = std::move(*groups);
  in.now_unix_ms = clock_.now_unix_ms();
  in.devices.push_back(free_device(device));
  // Other free devices matter only where candidates are scored by cost (fifo and fair take
  // the first fit, which is the asking device).
  const bool by_cost = dispatcher_->name() == "energy" || dispatcher_->name() == "carbon";
  if (options_.inventory && by_cost)
    for (const DeviceStatus& d : options_.inventory->list()) {
      if (d.name == device.name || d.state != DeviceState::kIdle) continue;
      for (const Device& other : options_.devices)
        if (other.name == d.name) in.devices.push_back(free_device(other));
    }
  if (Status s = fill_context(in); !s.is_ok()) return s;
  const DispatchChoice choice = dispatcher_->choose(in);
  if (options_.board) options_.board->update(choice.considered, choice.waiting);
  if (choice.held > 0) observer_->placement_decided(dispatcher_->name(), "hold", choice.held);
  retry_at = choice.retry_at_ms;
  if (choice.left_to_other) wake_all();
  if (!choice.group_id) return std::optional<Group>();
  auto claimed = store_.claim_group(*choice.group_id, device.name, exclusive, clock_.now_unix_ms());
  if (!claimed.ok()) return claimed.status();
  if (!*claimed) {
    again = true;
    return claimed;
  }
  observer_->placement_decided(dispatcher_->name(), "run", 1);
  if (options_.board) options_.board->clear(*choice.group_id);
  spdlog::debug("placement {}: {} takes group {} at {:.0f} W", dispatcher_->name(), device.name, *choice.group_id,
                choice.limit_watts);
  // A limit below the profile's highest (the energy and carbon policies choose one) is applied
  // to the device for this group; group_released() puts the old limit back.
  const PowerProfile& profile = *in.devices.front().profile;
  if (options_.inventory && profile.has_power_limits() && choice.limit_watts > 0 &&
      choice.limit_watts < profile.max_limit_watts()) {
    const double fraction = choice.limit_watts / profile.max_limit_watts();
    if (Status s = options_.inventory->set_power_limit_fraction(device.name, fraction); !s.is_ok())
      spdlog::warn("placement {}: {} keeps its power limit ({:.0f} % of the highest was chosen): {}",
                   dispatcher_->name(), device.name, fraction * 100, s.message());
  }
  return claimed;
}

std::optional<Dispatcher::Hold> Executor::hold_at_boundary(const Group& group, const Device& device) {
  if (dispatcher_->name() != "carbon") return std::nullopt;
  storage::ClaimableGroup g;
  g.id = group.id;
  g.seq = group.seq;
  g.created_unix_ms = group.created_unix_ms;
  g.round = group.round;
  bool first = true;
  for (const GroupMember& m : group.members) {
    if (m.left_round) continue;
    auto a = store_.get_activity(m.activity_id, storage::Scope::all());
    if (!a.ok() || is_terminal(a->state)) continue;
    g.members.push_back({m.activity_id, m.tenant_id, a->spec.priority, a->spec.deadline_unix_ms,
                         std::max<int64_t>(0, a->spec.rounds - a->progress.rounds_done)});
    g.priority = first ? a->spec.priority : std::max(g.priority, a->spec.priority);
    first = false;
  }
  if (g.members.empty()) return std::nullopt;
  DispatchInput ctx;
  ctx.now_unix_ms = clock_.now_unix_ms();
  {
    std::lock_guard lock(mu_);
    auto seen = first_seen_ms_.try_emplace(g.id, ctx.now_unix_ms).first;
    ctx.first_seen_ms[g.id] = seen->second;
    if (auto r = round_seconds_.find(g.id); r != round_seconds_.end()) ctx.round_seconds[g.id] = r->second;
  }
  return dispatcher_->hold(g, free_device(device), ctx);
}

void Executor::train(Group group, const Device& device) {
  auto run = std::make_shared<Running>();
  {
    std::lock_guard lock(mu_);
    running_[group.id] = run;
    if (stopping_) run->stop.store(true);
  }
  const auto now = [this] { return clock_.now_unix_ms(); };
  auto fail = [&](const std::string& reason) {
    spdlog::warn("group {} failed: {}", group.id, reason);
    // Recorded first, announced after: an observer that reads the store sees the failure.
    if (Status s = store_.finish_group(group.id, GroupPhase::kFailed, reason, now()); !s.is_ok())
      spdlog::error("group {}: cannot record its failure: {}", group.id, s.to_string());
    for (const auto& h : live_heads(group)) observer_->activity_ended(h.key, ActivityState::kFailed);
  };
  const fl::RuntimeOptions runtime{options_.data_dir, device.torch_device};

  [&] {
    std::unique_ptr<fl::FlJob> job;
    if (!group.heads.empty()) {  // resume from the checkpoint
      auto created = fl::FlJob::create(job_config(group, options_, group.heads, group.job_round_offset), runtime);
      if (!created.ok()) return fail("cannot start training: " + created.status().message());
      auto bytes = read_file(group.checkpoint_path);
      if (!bytes.ok() || sha256_hex(*bytes) != group.checkpoint_sha256)
        return fail("its checkpoint " + group.checkpoint_path + " is missing or corrupt");
      if (Status s = (*created)->restore(*bytes); !s.is_ok()) return fail("cannot resume: " + s.message());
      if ((*created)->rounds_done() + group.job_round_offset != group.round)
        return fail("its checkpoint is not of round " + std::to_string(group.round));
      job = std::move(*created);
      spdlog::info("group {} resumes after round {} on {}", group.id, group.round, device.name);
    } else {
      spdlog::info("group {} starts on {}", group.id, device.name);
    }

    bool just_claimed = true;  // the claim's decision covers the first round
    while (!run->stop.load()) {
      // Plan here too, not only in idle workers: with every device busy, a compatible arrival
      // must still be able to join this group while it consolidates.
      plan();
      // Membership as the store has it now: joins and cancels since the last round.
      auto fresh = store_.get_group(group.id, storage::Scope::all());
      if (!fresh.ok()) return fail("cannot read the group: " + fresh.status().message());
      group.members = fresh->members;
      const auto heads = live_heads(group);
      {
        std::lock_guard lock(mu_);
        run->live.clear();
        for (const auto& h : heads) run->live.insert(h.key);
      }
      if (heads.empty()) {
        spdlog::info("group {} is done after round {}", group.id, group.round);
        if (Status s = store_.finish_group(group.id, GroupPhase::kDone, "", now()); !s.is_ok())
          spdlog::error("group {}: {}", group.id, s.to_string());
        return;
      }
      // Round boundary: a draining device lets the group go; so does a group whose tenants
      // have all used up their energy budgets (claimed again when a budget is raised).
      if (options_.inventory && options_.inventory->should_release(device.name)) {
        spdlog::info("device {} drains: group {} waits for another device after round {}", device.name, group.id,
                     group.round);
        break;
      }
      if (auto over = store_.group_over_budget(group.id); over.ok() && *over) {
        spdlog::info("group {} pauses after round {}: its tenants have used their energy budgets", group.id,
                     group.round);
        break;
      }
      if (!just_claimed) {
        if (auto held = hold_at_boundary(group, device)) {
          spdlog::info("group {} waits after round {}: {}", group.id, group.round, held->reason);
          if (options_.board) options_.board->set(group.id, {WaitReason::kCarbon, held->reason});
          observer_->placement_decided(dispatcher_->name(), "hold", 1);
          break;
        }
      }
      just_claimed = false;
      std::vector<std::string> keys;
      for (const auto& h : heads) keys.push_back(h.key);
      if (!job || job->heads() != keys) {
        const auto config = job_config(group, options_, heads, group.round);
        auto next = job ? fl::FlJob::derive(*job, config, runtime) : fl::FlJob::create(config, runtime);
        if (!next.ok()) return fail("cannot build the model: " + next.status().message());
        job = std::move(*next);
      }

      const auto should_stop = [&] { return run->stop.load(std::memory_order_relaxed); };
      if (options_.inventory) options_.inventory->unit_started(device.name, group.id, group.round + 1);
      auto report = job->run_round(should_stop);
      // An abandoned or failed round spent energy too: it goes to the ledger, flagged.
      const auto measured =
          options_.inventory ? options_.inventory->unit_finished(device.name) : std::optional<UnitMeasurement>();
      if (!report.ok()) {
        record_abandoned(group, group.round + 1, heads, measured, "failed");
        return fail(report.status().message());
      }
      if (report->stopped) {  // shutdown, or every member cancelled: the loop decides
        bool shutdown;
        {
          std::lock_guard lock(mu_);
          shutdown = stopping_;
        }
        record_abandoned(group, group.round + 1, heads, measured, shutdown ? "shutdown" : "cancelled");
        continue;
      }

      // Durable files first, then one transaction that points at them.
      auto bytes = job->checkpoint();
      if (!bytes.ok()) return fail(bytes.status().message());
      const std::string ckpt_path = group_dir(group.id) + "/checkpoint.pt";
      if (Status s = write_file_durably(ckpt_path, *bytes); !s.is_ok()) return fail(s.message());
      storage::GroupRoundRecord record;
      record.group_id = group.id;
      record.round = report->round;
      record.heads = heads;
      record.job_round_offset = report->round - job->rounds_done();
      record.checkpoint = {report->round, ckpt_path, sha256_hex(*bytes), static_cast<int64_t>(bytes->size())};
      std::vector<std::pair<std::string, int64_t>> progress;
      for (const auto& h : heads) {
        auto a = store_.get_activity(h.key, storage::Scope::all());
        if (!a.ok() || is_terminal(a->state)) continue;  // cancelled meanwhile
        const int64_t own_round = a->progress.rounds_done + 1;
        record.reports.emplace_back(h.key,
                                    member_report(*report, h.key, own_round, a->spec.rounds, group, device.name).dump());
        progress.emplace_back(h.key, own_round);
        if (own_round < a->spec.rounds) continue;
        auto model = job->export_model(h.key);
        if (!model.ok()) return fail(model.status().message());
        const std::string path = activity_dir(h.key) + "/model.pt";
        if (Status s = write_file_durably(path, *model); !s.is_ok()) return fail(s.message());
        record.finished.emplace_back(
            h.key, storage::StoredFile{own_round, path, sha256_hex(*model), static_cast<int64_t>(model->size())});
      }
      if (!report->affinity.empty()) {
        record.affinity_json = nlohmann::json{{"heads", keys},
                                              {"matrix", report->affinity},
                                              {"lookaheads", report->lookaheads},
                                              {"seconds", report->affinity_seconds}}
                                   .dump();
      }
      if (measured) record.energy = make_energy_unit(group, report->round, heads, *measured, carbon());
      Status recorded = store_.record_group_round(record, now());
      if (recorded.code() == Status::Code::kFailedPrecondition) return;  // no longer live
      if (!recorded.is_ok()) return fail("cannot record round: " + recorded.message());
      group.round = report->round;
      {
        std::lock_guard lock(mu_);
        double& per_round = round_seconds_[group.id];
        per_round = per_round > 0 ? 0.5 * per_round + 0.5 * report->seconds : report->seconds;
      }
      observer_->round_finished(group, device.name, *report);
      if (record.energy) observer_->energy_recorded(*record.energy);
      for (const auto& [id, r] : progress) {
        auto a = store_.get_activity(id, storage::Scope::all());
        if (a.ok()) observer_->activity_progress(id, r, a->spec.rounds);
      }
      for (const auto& [id, file] : record.finished) {
        spdlog::info("activity {} succeeded after {} rounds (group {})", id, file.round, group.id);
        observer_->activity_ended(id, ActivityState::kSucceeded);
      }

      if (group.phase != GroupPhase::kConsolidating || group.round < group.consolidation_rounds) continue;

      // End of consolidation: split the live members by their mean affinity.
      auto after = store_.get_group(group.id, storage::Scope::all());
      if (!after.ok()) return fail("cannot read the group: " + after.status().message());
      group.members = after->members;
      const auto staying = live_heads(group);
      auto affinity = store_.list_affinity(group.id);
      if (!affinity.ok()) return fail("cannot read affinity: " + affinity.status().message());
      const size_t k = staying.size();
      AffinityMatrix sum(k, std::vector<double>(k, 0.0)), count(k, std::vector<double>(k, 0.0));
      for (const auto& rec : *affinity) {
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
      std::vector<std::string> staying_keys;
      for (const auto& h : staying) staying_keys.push_back(h.key);
      nlohmann::json split = {{"tasks", staying_keys}, {"matrix", mean}, {"round", group.round}};
      std::vector<std::vector<int>> parts;
      if (k >= 2) {
        auto plan = plan_split(mean, options_.split);
        if (!plan.ok()) return fail("cannot plan the split: " + plan.status().message());
        parts = plan->groups;
        split["score"] = plan->score;
        split["method"] = plan->method;
        split["partitions_scored"] = plan->partitions_scored;
      } else {
        if (k == 1) parts = {{0}};
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
        if (Status s = store_.end_consolidation(group.id, split.dump(), now()); !s.is_ok())
          return fail("cannot end consolidation: " + s.message());
        group.phase = GroupPhase::kTraining;
        job->set_affinity_every(0);
        spdlog::info("group {} keeps its {} activities together after round {}", group.id, k, group.round);
        continue;
      }
      std::vector<Group> children;
      nlohmann::json child_ids = nlohmann::json::array();
      for (const auto& p : parts) {
        Group child;
        child.id = new_id("grp", rng_);
        child.parent_id = group.id;
        child.phase = GroupPhase::kTraining;
        child.policy = group.policy;
        child.compat_key = group.compat_key;
        child.config_json = group.config_json;
        child.round = group.round;
        child.job_round_offset = group.round;
        for (int i : p) child.heads.push_back(staying[static_cast<size_t>(i)]);
        auto derived = fl::FlJob::derive(*job, job_config(child, options_, child.heads, group.round), runtime);
        if (!derived.ok()) return fail("cannot split the model: " + derived.status().message());
        auto child_bytes = (*derived)->checkpoint();
        if (!child_bytes.ok()) return fail(child_bytes.status().message());
        child.checkpoint_path = group_dir(child.id) + "/checkpoint.pt";
        if (Status s = write_file_durably(child.checkpoint_path, *child_bytes); !s.is_ok()) return fail(s.message());
        child.checkpoint_sha256 = sha256_hex(*child_bytes);
        for (const auto& h : child.heads)
          for (const auto& m : group.members)
            if (m.activity_id == h.key) child.members.push_back({m.activity_id, m.tenant_id, m.task, group.round, {}});
        child_ids.push_back(child.id);
        children.push_back(std::move(child));
      }
      split["child_groups"] = child_ids;
      {
        std::lock_guard lock(mu_);
        const double per_round = round_seconds_[group.id];
        for (const Group& child : children) round_seconds_[child.id] = per_round;
      }
      if (Status s = store_.split_group(group.id, split.dump(), children, now()); !s.is_ok())
        return fail("cannot record the split: " + s.message());
      spdlog::info("group {} splits after round {} into {} groups: {}", group.id, group.round, children.size(),
                   named.dump());
      observer_->group_split(group, children.size());
      return;  // the children are new groups: any worker claims them
    }
    // Stopped: a shutdown leaves the group to the next start; when every member was cancelled
    // the group is done.
    if (auto fresh = store_.get_group(group.id, storage::Scope::all()); fresh.ok() && live_heads(*fresh).empty()) {
      if (Status s = store_.finish_group(group.id, GroupPhase::kDone, "", now()); !s.is_ok())
        spdlog::error("group {}: {}", group.id, s.to_string());
      return;
    }
    if (Status s = store_.release_group(group.id, now()); !s.is_ok())
      spdlog::error("group {}: cannot release it: {}", group.id, s.to_string());
  }();

  std::lock_guard lock(mu_);
  running_.erase(group.id);
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
