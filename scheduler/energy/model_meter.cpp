#include "scheduler/energy/model_meter.h"

#include <algorithm>

namespace mufl::scheduler {

ModelMeter::ModelMeter(PowerProfile profile, const Clock& clock, double scale, std::optional<double> limit_watts)
    : profile_(std::move(profile)),
      clock_(clock),
      scale_(std::clamp(scale, 1e-9, 1.0)),
      limit_watts_(limit_watts ? *limit_watts : profile_.max_limit_watts()),
      last_ns_(clock.monotonic_ns()) {}

double ModelMeter::watts_locked() const { return scale_ * profile_.watts_at(busy_ ? 1.0 : 0.0, limit_watts_); }

void ModelMeter::advance_locked() {
  const int64_t now = clock_.monotonic_ns();
  if (now > last_ns_) joules_ += watts_locked() * static_cast<double>(now - last_ns_) / 1e9;
  last_ns_ = std::max(last_ns_, now);  // a clock that steps back adds nothing
}

double ModelMeter::energy_joules() {
  std::lock_guard lock(mu_);
  advance_locked();
  return joules_;
}

double ModelMeter::power_watts() {
  std::lock_guard lock(mu_);
  return watts_locked();
}

void ModelMeter::set_busy(bool busy) {
  std::lock_guard lock(mu_);
  advance_locked();
  busy_ = busy;
}

std::optional<PowerLimits> ModelMeter::power_limits() {
  if (!profile_.has_power_limits()) return std::nullopt;
  std::lock_guard lock(mu_);
  return PowerLimits{profile_.min_limit_watts(), profile_.max_limit_watts(), limit_watts_};
}

Status ModelMeter::set_power_limit(double watts) {
  std::lock_guard lock(mu_);
  advance_locked();
  limit_watts_ = std::clamp(watts, profile_.min_limit_watts(), profile_.max_limit_watts());
  return Status::ok();
}

}  // namespace mufl::scheduler
