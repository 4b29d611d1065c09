#include "scheduler/energy/reported_meter.h"

#include <algorithm>
#include <cmath>

namespace mufl::scheduler {

ReportedMeter::ReportedMeter(std::string name, std::optional<PowerProfile> profile)
    : name_(std::move(name)), profile_(std::move(profile)) {
  if (profile_) limit_watts_ = profile_->max_limit_watts();
}

std::optional<PowerLimits> ReportedMeter::power_limits() {
  std::lock_guard lock(mu_);
  if (!profile_ || !profile_->has_power_limits()) return std::nullopt;
  return PowerLimits{profile_->min_limit_watts(), profile_->max_limit_watts(), limit_watts_};
}

Status ReportedMeter::set_power_limit(double watts) {
  std::lock_guard lock(mu_);
  if (!profile_ || !profile_->has_power_limits())
    return Status::failed_precondition("this GPU's power profile has no power limits to choose from");
  if (!std::isfinite(watts)) return Status::invalid_argument("a power limit must be finite");
  limit_watts_ = std::clamp(watts, profile_->min_limit_watts(), profile_->max_limit_watts());
  return Status::ok();
}

std::string ReportedMeter::name() const {
  std::lock_guard lock(mu_);
  return name_;
}

double ReportedMeter::energy_joules() {
  std::lock_guard lock(mu_);
  return joules_;
}

double ReportedMeter::power_watts() {
  std::lock_guard lock(mu_);
  return busy_ ? last_watts_ : 0.0;
}

void ReportedMeter::set_busy(bool busy) {
  std::lock_guard lock(mu_);
  busy_ = busy;
}

Status ReportedMeter::add_reported(double joules, const std::string& meter, double seconds) {
  if (!std::isfinite(joules) || joules < 0 || !std::isfinite(seconds) || seconds < 0)
    return Status::invalid_argument("a reported energy must be finite and >= 0");
  std::lock_guard lock(mu_);
  joules_ += joules;
  if (seconds > 0) last_watts_ = joules / seconds;
  if (!meter.empty()) name_ = meter;
  return Status::ok();
}

}  // namespace mufl::scheduler
