#include "scheduler/energy/power_profile.h"

#include <algorithm>
#include <cctype>
#include <stdexcept>

namespace mufl::scheduler {
namespace {

// One measured GPU, as scripts/make-power-profiles writes it into power_profile_table.inc.
struct MeasuredGpu {
  const char* model;
  int configurations;  // Zeus workload configurations averaged at every limit
  double relative_speed;
  std::vector<PowerLimitPoint> points;
};

const std::vector<MeasuredGpu>& measured_gpus() {
  static const std::vector<MeasuredGpu> table = {
#include "scheduler/energy/power_profile_table.inc"
  };
  return table;
}

// Idle draw: the Zeus traces measure only busy power, and NVIDIA's datasheets state only the
// maximum (TDP). These are typical idle readings of nvidia-smi for a GPU with no process at the
// lowest performance state (uncertain to about ±50 %); docs/energy.md lists them.
double idle_watts_of(const std::string& measured_model) {
  if (measured_model == "A40") return 30;
  if (measured_model == "P100") return 30;
  if (measured_model == "RTX6000") return 20;
  if (measured_model == "V100") return 35;
  return 30;
}

PowerProfile from_measured(const MeasuredGpu& gpu) {
  PowerProfile p;
  p.model = gpu.model;
  p.source = "zeus-nsdi23";
  p.idle_watts = idle_watts_of(gpu.model);
  p.points = gpu.points;
  p.relative_speed = gpu.relative_speed;
  return p;
}

// A trace GPU with the measured curve of `base` under a new name (same chip family).
PowerProfile alias(const PowerProfile& base, std::string model) {
  PowerProfile p = base;
  p.model = std::move(model);
  p.source = "zeus-nsdi23:" + base.model;
  return p;
}

// A smaller chip of the same architecture: limits and power scaled by the TDP ratio, the
// relative-time curve kept, points below the chip's own minimum power limit dropped, speed
// scaled by the FP32 throughput ratio of the two datasheets.
PowerProfile scaled(const PowerProfile& base, std::string model, double tdp_ratio, double min_limit,
                    double speed_ratio, double idle_watts) {
  PowerProfile p;
  p.model = std::move(model);
  p.source = "zeus-nsdi23:" + base.model + "-scaled";
  p.idle_watts = idle_watts;
  for (const PowerLimitPoint& q : base.points) {
    PowerLimitPoint s{q.limit_watts * tdp_ratio, q.busy_watts * tdp_ratio, q.relative_time};
    if (s.limit_watts + 1e-9 >= min_limit) p.points.push_back(s);
  }
  // Renormalise so that the highest kept limit has relative_time 1.
  const double top = p.points.back().relative_time;
  for (PowerLimitPoint& q : p.points) q.relative_time /= top;
  p.relative_speed = base.relative_speed * speed_ratio;
  return p;
}

std::vector<PowerProfile> build_profiles() {
  std::vector<PowerProfile> out;
  for (const MeasuredGpu& gpu : measured_gpus()) out.push_back(from_measured(gpu));
  auto measured = [&](const char* name) -> const PowerProfile& {
    for (const PowerProfile& p : out)
      if (p.model == name) return p;
    throw std::logic_error("power_profile_table.inc lacks " + std::string(name));
  };
  const PowerProfile v100 = measured("V100");
  const PowerProfile a40 = measured("A40");
  const PowerProfile rtx6000 = measured("RTX6000");
  // Trace GPU models (Alibaba 2023) mapped onto the measured ones; docs/energy.md says why.
  out.push_back(alias(v100, "V100M16"));
  out.push_back(alias(v100, "V100M32"));
  out.push_back(alias(v100, "G2"));  // undisclosed; 8-GPU training nodes, taken as V100-class
  out.push_back(alias(a40, "G3"));   // undisclosed; taken as Ampere (A40-class)
  // T4: Turing like the RTX 6000; 70 W TDP against 260 W, power limit 60–70 W, FP32 8.1 against
  // 16.3 TFLOPS; idle about 10 W.
  out.push_back(scaled(rtx6000, "T4", 70.0 / 260.0, 60.0, 8.1 / 16.3, 10));
  // A10: the A40's GA102 chip at 150 W against 300 W, limit 100–150 W, FP32 31.2 against 37.4
  // TFLOPS; idle about 15 W.
  out.push_back(scaled(a40, "A10", 150.0 / 300.0, 100.0, 31.2 / 37.4, 15));
  // A CPU slot of 2 threads: the 65 W bench/mufl charged per busy slot, 10 W idle share
  // (assumed); its power cannot be capped, so one point.
  PowerProfile cpu;
  cpu.model = "cpu";
  cpu.source = "spec";
  cpu.idle_watts = 10;
  cpu.points = {{65, 65, 1}};
  cpu.relative_speed = 1;
  out.push_back(std::move(cpu));
  return out;
}

bool iequals(std::string_view a, std::string_view b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
           return std::tolower(static_cast<unsigned char>(x)) == std::tolower(static_cast<unsigned char>(y));
         });
}

// Linear interpolation of `field` over the points, clamped to the measured range.
template <typename Field>
double interpolate(const std::vector<PowerLimitPoint>& points, double limit, Field field) {
  if (limit <= points.front().limit_watts) return field(points.front());
  if (limit >= points.back().limit_watts) return field(points.back());
  for (size_t i = 1; i < points.size(); ++i) {
    const PowerLimitPoint& hi = points[i];
    if (limit <= hi.limit_watts) {
      const PowerLimitPoint& lo = points[i - 1];
      const double span = hi.limit_watts - lo.limit_watts;
      const double w = span > 0 ? (limit - lo.limit_watts) / span : 1.0;
      return field(lo) + w * (field(hi) - field(lo));
    }
  }
  return field(points.back());
}

}  // namespace

double PowerProfile::busy_watts_at(double limit_watts) const {
  return interpolate(points, limit_watts, [](const PowerLimitPoint& p) { return p.busy_watts; });
}

double PowerProfile::relative_time_at(double limit_watts) const {
  return interpolate(points, limit_watts, [](const PowerLimitPoint& p) { return p.relative_time; });
}

double PowerProfile::watts_at(double utilisation, double limit_watts) const {
  const double u = std::clamp(utilisation, 0.0, 1.0);
  return idle_watts + u * (busy_watts_at(limit_watts) - idle_watts);
}

const std::vector<PowerProfile>& builtin_power_profiles() {
  static const std::vector<PowerProfile> profiles = build_profiles();
  return profiles;
}

Result<PowerProfile> find_power_profile(std::string_view model) {
  for (const PowerProfile& p : builtin_power_profiles())
    if (iequals(p.model, model)) return p;
  return Status::not_found("no power profile for device model '" + std::string(model) + "'");
}

}  // namespace mufl::scheduler
