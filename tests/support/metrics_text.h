#pragma once
// Reading one series out of a Prometheus text exposition (a GET /metrics body) in tests.
#include <string>

namespace mufl::testing {

// The value of the series written exactly as `series` (name and labels, as mufld prints them),
// or `missing` when the text has no such line.
inline double metric(const std::string& text, const std::string& series, double missing = -1) {
  const auto at = text.find("\n" + series + " ");
  if (at == std::string::npos) return missing;
  return std::stod(text.substr(at + series.size() + 2));
}

}  // namespace mufl::testing
