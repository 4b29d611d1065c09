#include "scheduler/executor.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <nlohmann/json.hpp>

#include "core/file_io.h"
#include "core/ids.h"
#include "scheduler/energy/energy_ledger.h"
#include "scheduler/cluster/cluster_devices.h"
#include "scheduler/energy/power_profile.h"

namespace mufl::scheduler {

Executor::Executor(storage::Store& store, const Clock& clock, ExecutorOptions options, ExecutorObserver* observer)
    : store_(store), clock_(clock), options_(std::move(options)), observer_(observer ? observer : &no_observer_) {
  devices_ = options_.devices;
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
  started_ = true;
  for (const auto& d : devices_) workers_.emplace_back([this, d] { worker(d); });
  // Lanes only beside devices: a node with none (--devices none) trains nothing.
  for (int i = 0; i < (devices_.empty() ? 0 : options_.federation_lanes); ++i) {
    const Device lane{storage::kFederationLanePrefix + std::to_string(i), "cpu"};
    workers_.emplace_back([this, lane] { worker(lane); });
  }
  return Status::ok();
}

bool Executor::is_lane(const Device& device) {
  return device.name.rfind(storage::kFederationLanePrefix, 0) == 0;
}

UnitMeasurement Executor::lane_measurement(const Device& lane, const fl::RoundReport& report, int64_t start_ms) const {
  static const double busy_watts = [] {
    auto cpu = find_power_profile("cpu");
    return cpu.ok() ? cpu->busy_watts_at(cpu->max_limit_watts()) : 0.0;
  }();
  UnitMeasurement m;
  m.device = lane.name;
  m.meter = "model";
  m.start_unix_ms = start_ms;
  m.end_unix_ms = now_ms();
  m.seconds = std::max(0.0, report.seconds - report.client_wait_seconds);
  m.joules = busy_watts * m.seconds;
  return m;
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

void Executor::add_devices(const std::vector<Device>& devices) {
  std::lock_guard lock(mu_);
  for (const Device& d : devices) {
    if (std::any_of(devices_.begin(), devices_.end(), [&](const Device& known) { return known.name == d.name; }))
      continue;
    devices_.push_back(d);
    if (started_ && !stopping_) workers_.emplace_back([this, d] { worker(d); });
  }
}

std::vector<Device> Executor::all_devices() const {
  std::lock_guard lock(mu_);
  return devices_;
}

TrainingBackend* Executor::backend_for(const Device& device) const {
  if (device.on_cluster()) return options_.cluster_backend ? options_.cluster_backend(device) : nullptr;
  return options_.backend ? options_.backend : &local_training();
}

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
  if (Status s = fl::set_torch_threads(options_.torch_threads); !s.is_ok())
    spdlog::warn("worker {}: {}", device.name, s.message());
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
    // Devices plan; a lane takes what they planned (they wake it).
    const auto replan_at = is_lane(device) ? std::nullopt : plan();
    DeviceInventory* inv = inventory_for(device);
    // A drained device claims nothing; resume() wakes the workers.
    Result<std::optional<Group>> claimed = std::optional<Group>();
    std::optional<int64_t> retry_at;
    bool again = false;
    // A drained device claims nothing, nor one whose rounds have nowhere to run.
    if ((!inv || inv->may_claim(device.name)) && backend_for(device))
      claimed = claim_for(device, exclusive, retry_at, again);
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
  const std::string model = power_profile_of(device, options_.gpu_profile);
  auto found = find_power_profile(model);
  const std::string& name = found.ok() ? found->model : std::string("V100");
  for (const PowerProfile& p : builtin_power_profiles())  // the registry lives forever
    if (p.model == name) return {device.name, &p, device.on_cluster()};
  return {device.name, &builtin_power_profiles().front(), device.on_cluster()};
}

Status Executor::fill_context(DispatchInput& in) {
  in.total_devices = std::max<int>(1, static_cast<int>(all_devices().size()));
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
  skip_backed_off(*groups, retry_at);
  // Lanes take the groups on federations, devices the others (all of them without lanes).
  const bool lane = is_lane(device);
  std::erase_if(*groups, [&](const storage::ClaimableGroup& g) {
    return lane ? g.federation.empty() : !g.federation.empty() && options_.federation_lanes > 0;
  });
  if (groups->empty()) return std::optional<Group>();
  DispatchInput in;
  in.groups = std::move(*groups);
  in.now_unix_ms = clock_.now_unix_ms();
  in.devices.push_back(free_device(device));
  // Other free devices matter only where candidates are scored by cost (fifo and fair take
  // the first fit, which is the asking device).
  const bool by_cost = dispatcher_->name() == "energy" || dispatcher_->name() == "carbon";
  if (inventory_for(device) && by_cost) {
    const std::vector<Device> devices = all_devices();
    for (const DeviceStatus& d : options_.inventory->list()) {
      if (d.name == device.name || d.state != DeviceState::kIdle) continue;
      for (const Device& other : devices)
        if (other.name == d.name && backend_for(other)) in.devices.push_back(free_device(other));
    }
  }
  if (Status s = fill_context(in); !s.is_ok()) return s;
  const DispatchChoice choice = dispatcher_->choose(in);
  if (options_.board) options_.board->update(choice.considered, choice.waiting);
  if (choice.held > 0) observer_->placement_decided(dispatcher_->name(), "hold", choice.held);
  if (choice.retry_at_ms && (!retry_at || *choice.retry_at_ms < *retry_at)) retry_at = choice.retry_at_ms;
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
  if (inventory_for(device) && profile.has_power_limits() && choice.limit_watts > 0 &&
      choice.limit_watts < profile.max_limit_watts()) {
    const double fraction = choice.limit_watts / profile.max_limit_watts();
    if (Status s = options_.inventory->set_power_limit_fraction(device.name, fraction); !s.is_ok())
      spdlog::warn("placement {}: {} keeps its power limit ({:.0f} % of the highest was chosen): {}",
                   dispatcher_->name(), device.name, fraction * 100, s.message());
  }
  return claimed;
}

int64_t Executor::storage_delay_ms(int failures) const {
  int64_t delay = std::max<int64_t>(1, options_.storage_retry_ms);
  for (int i = 1; i < failures && delay < options_.storage_retry_max_ms; ++i) delay *= 2;
  return std::min(delay, std::max<int64_t>(1, options_.storage_retry_max_ms));
}

void Executor::back_off(const std::string& group_id, const std::string& reason, Status::Code code) {
  int64_t retry_at;
  int failures;
  {
    std::lock_guard lock(mu_);
    Backoff& b = backoff_[group_id];
    failures = ++b.failures;
    b.retry_at_ms = clock_.now_unix_ms() + storage_delay_ms(b.failures);
    b.reason = reason;
    retry_at = b.retry_at_ms;
    storage_trouble_ = reason;
    storage_trouble_code_ = code;
  }
  spdlog::warn("group {} waits for storage (failure {}): {}; retried in {} ms", group_id, failures, reason,
               retry_at - clock_.now_unix_ms());
  if (options_.board)
    options_.board->set(group_id, {WaitReason::kStorage, "a storage error stopped its last round (" + reason +
                                                             "); it is retried from its last checkpoint"});
}

void Executor::storage_recovered(const std::string& group_id) {
  std::lock_guard lock(mu_);
  backoff_.erase(group_id);
  storage_trouble_.clear();
  storage_trouble_code_ = Status::Code::kOk;
}

void Executor::skip_backed_off(std::vector<storage::ClaimableGroup>& groups, std::optional<int64_t>& retry_at) {
  const int64_t now = clock_.now_unix_ms();
  std::lock_guard lock(mu_);
  std::erase_if(groups, [&](const storage::ClaimableGroup& g) {
    auto b = backoff_.find(g.id);
    if (b == backoff_.end() || b->second.retry_at_ms <= now) return false;
    if (!retry_at || b->second.retry_at_ms < *retry_at) retry_at = b->second.retry_at_ms;
    return true;
  });
}

Status Executor::storage_health() const {
  std::lock_guard lock(mu_);
  if (storage_trouble_code_ == Status::Code::kOk) return Status::ok();
  if (storage_trouble_code_ == Status::Code::kInsufficientStorage)
    return Status::insufficient_storage("training stopped: " + storage_trouble_);
  return Status::unavailable("training stopped: " + storage_trouble_);
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

}  // namespace mufl::scheduler
