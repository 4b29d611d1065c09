#pragma once
// Hourly grid carbon intensity (grams CO2e per kWh), for carbon accounting (/v1/usage) and the
// `carbon` placement policy, live and in the simulator.
//
// Read from an hourly CSV in either of the two formats under data/carbon-intensity/:
// Electricity Maps (`Datetime (UTC)`, ..., `Carbon Intensity gCO₂eq/kWh (direct)`, ...; CRLF)
// or U.S. EIA (`timestamp`, ..., `avg_CI`; LF). An empty value takes the previous hour's (the
// first hour's, when the first rows are empty). The series is treated as periodic over its own
// length, so a year of data answers for any time (the hour of the year is what matters).
//
// Thread safety: immutable once loaded; read from any thread.
#include <cstdint>
#include <string>
#include <vector>

#include "core/result.h"

namespace mufl::scheduler {

class CarbonIntensity {
 public:
  // A constant intensity (the default when no file is configured), `g_per_kwh` >= 0.
  static CarbonIntensity constant(double g_per_kwh);
  // kNotFound for a missing file, kInvalidArgument for a file in neither format, with no
  // usable hour, or with a gap or disorder in its hourly timestamps (the message names the line).
  static Result<CarbonIntensity> load_csv(const std::string& path);

  // Intensity during the hour that contains `unix_seconds`.
  double at(int64_t unix_seconds) const;
  // Mean intensity over [from, to) in unix seconds, weighting each hour by its overlap
  // (at(from) when to <= from). What a unit of work running over that span is charged.
  double mean_over(int64_t from, int64_t to) const;

  int64_t first_hour() const { return first_hour_; }  // unix seconds of the first row's hour
  size_t hours() const { return g_per_kwh_.size(); }
  const std::string& source() const { return source_; }  // file path, or "constant"

 private:
  int64_t first_hour_ = 0;
  std::vector<double> g_per_kwh_;
  std::string source_;
  // Added with the implementation: prefix_[h] = sum of g_per_kwh_[0..h), so that mean_over
  // costs O(1) whatever the span (the simulator charges spans of months).
  std::vector<double> prefix_;
  // Integral of the intensity from first_hour_ to first_hour_ + offset seconds (g/kWh · s).
  double integral_to(int64_t offset) const;
  void build_prefix();
};

}  // namespace mufl::scheduler
