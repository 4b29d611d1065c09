#include "scheduler/energy/carbon_intensity.h"

#include <charconv>
#include <cmath>
#include <optional>
#include <string_view>

#include "core/file_io.h"
#include "core/strings.h"
#include "core/time_format.h"

namespace mufl::scheduler {
namespace {

constexpr int64_t kHour = 3600;

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\r')) s.remove_suffix(1);
  return s;
}

std::optional<double> parse_number(std::string_view s) {
  double v = 0;
  auto [ptr, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc() || ptr != s.data() + s.size() || !std::isfinite(v)) return std::nullopt;
  return v;
}

// "2024-01-01 00:00:00" (Electricity Maps, UTC without zone) or "2022-01-01 00:00:00+00:00" (EIA).
std::optional<int64_t> parse_hour(std::string_view s) {
  std::string text(s);
  if (text.size() == 19) text += 'Z';
  std::optional<int64_t> ms = parse_rfc3339(text);
  if (!ms) return std::nullopt;
  return *ms / 1000;
}

int64_t floor_div(int64_t a, int64_t b) {
  int64_t q = a / b;
  if ((a % b != 0) && ((a < 0) != (b < 0))) --q;
  return q;
}

}  // namespace

CarbonIntensity CarbonIntensity::constant(double g_per_kwh) {
  CarbonIntensity c;
  c.first_hour_ = 0;
  c.g_per_kwh_ = {g_per_kwh < 0 ? 0 : g_per_kwh};
  c.source_ = "constant";
  c.build_prefix();
  return c;
}

Result<CarbonIntensity> CarbonIntensity::load_csv(const std::string& path) {
  Result<std::string> bytes = read_file(path);
  if (!bytes.ok()) return bytes.status();
  std::string_view text = *bytes;
  if (text.starts_with("\xEF\xBB\xBF")) text.remove_prefix(3);  // UTF-8 byte-order mark

  auto fail = [&](size_t line, const std::string& why) {
    return Status::invalid_argument(path + ":" + std::to_string(line) + ": " + why);
  };

  size_t line_no = 0, pos = 0;
  auto next_line = [&](std::string_view& out) {
    if (pos >= text.size()) return false;
    size_t end = text.find('\n', pos);
    if (end == std::string_view::npos) end = text.size();
    out = text.substr(pos, end - pos);
    if (!out.empty() && out.back() == '\r') out.remove_suffix(1);
    pos = end + 1;
    ++line_no;
    return true;
  };

  std::string_view header;
  if (!next_line(header)) return fail(1, "empty file, expected a header line");
  std::vector<std::string_view> cols = split_fields(header, ',');
  int time_col = -1, value_col = -1;
  for (size_t i = 0; i < cols.size(); ++i) {
    std::string_view c = trim(cols[i]);
    if (c == "Datetime (UTC)" || c == "timestamp") time_col = static_cast<int>(i);
    // Electricity Maps: the direct (not LCA) intensity; EIA: avg_CI.
    if ((c.starts_with("Carbon Intensity") && c.ends_with("(direct)")) || c == "avg_CI")
      value_col = static_cast<int>(i);
  }
  if (time_col < 0 || value_col < 0)
    return fail(1, "not a carbon-intensity file: expected an Electricity Maps header ('Datetime (UTC)', "
                   "'Carbon Intensity gCO\xE2\x82\x82" "eq/kWh (direct)') or an EIA header ('timestamp', 'avg_CI')");

  CarbonIntensity out;
  out.source_ = path;
  std::vector<std::optional<double>> values;
  int64_t prev_hour = 0;
  std::string_view line;
  while (next_line(line)) {
    if (trim(line).empty()) continue;
    std::vector<std::string_view> f = split_fields(line, ',');
    if (f.size() != cols.size())
      return fail(line_no, "expected " + std::to_string(cols.size()) + " fields, found " + std::to_string(f.size()));
    std::optional<int64_t> t = parse_hour(trim(f[static_cast<size_t>(time_col)]));
    if (!t) return fail(line_no, "bad timestamp '" + std::string(f[static_cast<size_t>(time_col)]) + "'");
    if (*t % kHour != 0) return fail(line_no, "timestamp is not on the hour");
    if (values.empty()) {
      out.first_hour_ = *t;
    } else if (*t != prev_hour + kHour) {
      return fail(line_no, *t <= prev_hour ? "timestamp out of order" : "gap in the hourly series");
    }
    prev_hour = *t;
    std::string_view v = trim(f[static_cast<size_t>(value_col)]);
    if (v.empty()) {
      values.push_back(std::nullopt);
      continue;
    }
    std::optional<double> g = parse_number(v);
    if (!g || *g < 0) return fail(line_no, "bad carbon intensity '" + std::string(v) + "'");
    values.push_back(g);
  }
  // Empty values take the previous hour's; leading empties take the first value's.
  std::optional<double> first;
  for (const auto& v : values)
    if (v) {
      first = v;
      break;
    }
  if (!first) return fail(line_no, "no hour with a carbon-intensity value");
  double last = *first;
  out.g_per_kwh_.reserve(values.size());
  for (const auto& v : values) {
    if (v) last = *v;
    out.g_per_kwh_.push_back(last);
  }
  out.build_prefix();
  return out;
}

void CarbonIntensity::build_prefix() {
  prefix_.assign(g_per_kwh_.size() + 1, 0.0);
  for (size_t i = 0; i < g_per_kwh_.size(); ++i) prefix_[i + 1] = prefix_[i] + g_per_kwh_[i];
}

double CarbonIntensity::at(int64_t unix_seconds) const {
  const int64_t n = static_cast<int64_t>(g_per_kwh_.size());
  int64_t h = floor_div(unix_seconds - first_hour_, kHour) % n;
  if (h < 0) h += n;
  return g_per_kwh_[static_cast<size_t>(h)];
}

double CarbonIntensity::integral_to(int64_t offset) const {
  const int64_t n = static_cast<int64_t>(g_per_kwh_.size());
  const int64_t period = n * kHour;
  const int64_t q = floor_div(offset, period);
  const int64_t r = offset - q * period;  // [0, period)
  const int64_t h = r / kHour;
  return static_cast<double>(q) * prefix_[static_cast<size_t>(n)] * kHour +
         prefix_[static_cast<size_t>(h)] * kHour + static_cast<double>(r - h * kHour) * g_per_kwh_[static_cast<size_t>(h)];
}

double CarbonIntensity::mean_over(int64_t from, int64_t to) const {
  if (to <= from) return at(from);
  return (integral_to(to - first_hour_) - integral_to(from - first_hour_)) / static_cast<double>(to - from);
}

}  // namespace mufl::scheduler
