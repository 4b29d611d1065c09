#include "scheduler/energy/reported_meter.h"

#include <cmath>

namespace mufl::scheduler {

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
