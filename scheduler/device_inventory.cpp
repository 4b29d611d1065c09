#include "scheduler/device_inventory.h"

#include <spdlog/spdlog.h>

#include <algorithm>


namespace mufl::scheduler {
namespace {
bool is_cuda(const Device& d) { return d.torch_device.rfind("cuda", 0) == 0; }
}  // namespace

const char* to_string(DeviceState s) {
  switch (s) {
    case DeviceState::kIdle: return "idle";
    case DeviceState::kBusy: return "busy";
    case DeviceState::kDraining: return "draining";
    case DeviceState::kDrained: return "drained";
    case DeviceState::kUnavailable: return "unavailable";
  }
  return "idle";
}

DeviceInventory::DeviceInventory(std::vector<MeteredDevice> devices, const Clock& clock,
                                 const std::set<std::string>& drained)
    : clock_(clock), drained_at_start_(drained) {
  add_devices(std::move(devices));
}

std::vector<Device> DeviceInventory::devices() {
  std::lock_guard lock(mu_);
  std::vector<Device> out;
  for (const auto& s : slots_) out.push_back(s.device);
  return out;
}

std::vector<Device> DeviceInventory::add_devices(std::vector<MeteredDevice> devices) {
  std::lock_guard lock(mu_);
  std::vector<Device> added;
  for (auto& d : devices) {
    if (find_locked(d.device.name)) continue;
    Slot s;
    s.device = d.device;
    s.meter = std::move(d.meter);
    s.profile = std::move(d.profile);
    if (drained_at_start_.count(s.device.name)) s.state = DeviceState::kDrained;
    added.push_back(s.device);
    slots_.push_back(std::move(s));
  }
  return added;
}

Status DeviceInventory::set_available(const std::string& name, bool available) {
  std::lock_guard lock(mu_);
  Slot* s = find_locked(name);
  if (!s) return Status::not_found("no device " + name);
  s->available = available;
  return Status::ok();
}

DeviceInventory::~DeviceInventory() {
  {
    std::lock_guard lock(sampler_mu_);
    stopping_ = true;
  }
  sampler_cv_.notify_all();
  if (sampler_.joinable()) sampler_.join();
}

DeviceInventory::Slot* DeviceInventory::find_locked(const std::string& name) {
  for (auto& s : slots_)
    if (s.device.name == name) return &s;
  return nullptr;
}

DeviceStatus DeviceInventory::status_locked(Slot& s) {
  DeviceStatus st;
  st.name = s.device.name;
  st.kind = is_cuda(s.device) ? "cuda" : "cpu";
  st.host = s.device.host;
  st.gres = s.device.gres;
  st.state = s.state == DeviceState::kIdle && !s.available ? DeviceState::kUnavailable : s.state;
  if ((s.state == DeviceState::kBusy || s.state == DeviceState::kDraining) && !s.group_id.empty())
    st.unit = WorkUnitRef{s.group_id, s.round};
  st.energy_joules = s.meter->energy_joules();
  st.power_watts = s.meter->power_watts();
  st.meter = s.meter->name();
  st.profile = s.profile;
  st.power_limits = s.meter->power_limits();
  return st;
}

std::vector<DeviceStatus> DeviceInventory::list() {
  std::lock_guard lock(mu_);
  std::vector<DeviceStatus> out;
  for (auto& s : slots_) out.push_back(status_locked(s));
  return out;
}

std::vector<DeviceState> DeviceInventory::states() {
  std::lock_guard lock(mu_);
  std::vector<DeviceState> out;
  for (const auto& s : slots_)
    out.push_back(s.state == DeviceState::kIdle && !s.available ? DeviceState::kUnavailable : s.state);
  return out;
}

Result<DeviceStatus> DeviceInventory::get(const std::string& name) {
  std::lock_guard lock(mu_);
  Slot* s = find_locked(name);
  if (!s) return Status::not_found("no device " + name);
  return status_locked(*s);
}

Result<DeviceStatus> DeviceInventory::drain(const std::string& name) {
  std::lock_guard lock(mu_);
  Slot* s = find_locked(name);
  if (!s) return Status::not_found("no device " + name);
  if (s->state == DeviceState::kIdle) s->state = DeviceState::kDrained;
  if (s->state == DeviceState::kBusy) s->state = DeviceState::kDraining;
  return status_locked(*s);
}

Result<DeviceStatus> DeviceInventory::resume(const std::string& name) {
  Result<DeviceStatus> out = Status::not_found("no device " + name);
  std::function<void()> listener;
  {
    std::lock_guard lock(mu_);
    Slot* s = find_locked(name);
    if (!s) return out;
    if (s->state == DeviceState::kDrained) s->state = DeviceState::kIdle;
    if (s->state == DeviceState::kDraining) s->state = DeviceState::kBusy;
    out = status_locked(*s);
    listener = resume_listener_;
  }
  if (listener) listener();
  return out;
}

void DeviceInventory::set_resume_listener(std::function<void()> listener) {
  std::lock_guard lock(mu_);
  resume_listener_ = std::move(listener);
}

bool DeviceInventory::may_claim(const std::string& name) {
  std::lock_guard lock(mu_);
  Slot* s = find_locked(name);
  return s && s->available && (s->state == DeviceState::kIdle || s->state == DeviceState::kBusy);
}

bool DeviceInventory::should_release(const std::string& name) {
  std::lock_guard lock(mu_);
  Slot* s = find_locked(name);
  return s && (s->state == DeviceState::kDraining || !s->available);
}

void DeviceInventory::group_claimed(const std::string& name, const std::string& group_id) {
  std::lock_guard lock(mu_);
  Slot* s = find_locked(name);
  if (!s) return;
  if (s->state == DeviceState::kIdle) s->state = DeviceState::kBusy;
  if (s->state == DeviceState::kDrained) s->state = DeviceState::kDraining;  // drained between may_claim and claim
  s->group_id = group_id;
  s->round = 0;
}

void DeviceInventory::group_released(const std::string& name) {
  std::lock_guard lock(mu_);
  Slot* s = find_locked(name);
  if (!s) return;
  if (s->restore_limit_watts) {
    if (Status st = s->meter->set_power_limit(*s->restore_limit_watts); !st.is_ok())
      spdlog::warn("energy: {}: cannot restore its power limit of {:.0f} W: {}", name, *s->restore_limit_watts,
                   st.message());
    s->restore_limit_watts.reset();
  }
  if (s->state == DeviceState::kBusy) s->state = DeviceState::kIdle;
  if (s->state == DeviceState::kDraining) s->state = DeviceState::kDrained;
  s->group_id.clear();
  s->round = 0;
}

Status DeviceInventory::set_power_limit_fraction(const std::string& name, double fraction) {
  std::lock_guard lock(mu_);
  Slot* s = find_locked(name);
  if (!s) return Status::not_found("no device " + name);
  const auto limits = s->meter->power_limits();
  if (!limits) return Status::failed_precondition(name + " has no power limit that can be set");
  const double watts = std::clamp(fraction * limits->max_watts, limits->min_watts, limits->max_watts);
  Status st = s->meter->set_power_limit(watts);
  if (st.is_ok() && !s->restore_limit_watts) s->restore_limit_watts = limits->current_watts;
  return st;
}

void DeviceInventory::unit_started(const std::string& name, const std::string& group_id, int64_t round) {
  std::lock_guard lock(mu_);
  Slot* s = find_locked(name);
  if (!s) return;
  s->meter->set_busy(true);
  s->group_id = group_id;
  s->round = round;
  s->in_unit = true;
  s->unit_start_joules = s->meter->energy_joules();
  s->unit_start_ns = clock_.monotonic_ns();
  s->unit_start_ms = clock_.now_unix_ms();
}

std::optional<UnitMeasurement> DeviceInventory::unit_finished(const std::string& name) {
  std::lock_guard lock(mu_);
  Slot* s = find_locked(name);
  if (!s || !s->in_unit) return std::nullopt;
  UnitMeasurement m;
  m.device = s->device.name;
  m.meter = s->meter->name();
  m.joules = std::max(0.0, s->meter->energy_joules() - s->unit_start_joules);
  s->meter->set_busy(false);
  m.seconds = static_cast<double>(clock_.monotonic_ns() - s->unit_start_ns) / 1e9;
  m.start_unix_ms = s->unit_start_ms;
  m.end_unix_ms = std::max(s->unit_start_ms, clock_.now_unix_ms());
  s->in_unit = false;
  return m;
}

Status DeviceInventory::add_reported_energy(const std::string& name, double joules, const std::string& meter,
                                            double seconds) {
  std::lock_guard lock(mu_);
  Slot* s = find_locked(name);
  if (!s) return Status::not_found("no device " + name);
  return s->meter->add_reported(joules, meter, seconds);
}

void DeviceInventory::sample_all() {
  std::lock_guard lock(mu_);
  for (auto& s : slots_) s.meter->energy_joules();
}

void DeviceInventory::start_sampler(int64_t period_ms) {
  std::lock_guard lock(sampler_mu_);
  if (sampler_.joinable()) return;
  sampler_ = std::thread([this, period_ms] {
    std::unique_lock lock(sampler_mu_);
    while (!sampler_cv_.wait_for(lock, std::chrono::milliseconds(period_ms), [this] { return stopping_; })) {
      lock.unlock();
      sample_all();
      lock.lock();
    }
  });
}

}  // namespace mufl::scheduler
