#include "scheduler/sim/cluster_trace.h"

#include <charconv>
#include <cmath>
#include <string_view>

#include "core/file_io.h"
#include "core/strings.h"

namespace mufl::scheduler {
namespace {

// A CSV file split into a header map and rows, with the line number of each row.
class Csv {
 public:
  Status open(const std::string& path, const std::vector<std::string>& required) {
    path_ = path;
    Result<std::string> bytes = read_file(path);
    if (!bytes.ok()) return bytes.status();
    text_ = std::move(*bytes);
    std::string_view t = text_;
    if (t.starts_with("\xEF\xBB\xBF")) t.remove_prefix(3);
    size_t line_no = 0, pos = 0;
    while (pos < t.size()) {
      size_t end = t.find('\n', pos);
      if (end == std::string_view::npos) end = t.size();
      std::string_view line = t.substr(pos, end - pos);
      if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
      pos = end + 1;
      ++line_no;
      if (line_no == 1) {
        header_ = split_fields(line, ',');
        continue;
      }
      if (line.empty()) continue;
      lines_.push_back({line_no, line});
    }
    if (header_.empty()) return error(1, "empty file, expected a header line");
    for (const std::string& col : required)
      if (column(col) < 0) return error(1, "missing column '" + col + "'");
    return Status::ok();
  }

  int column(std::string_view name) const {
    for (size_t i = 0; i < header_.size(); ++i)
      if (header_[i] == name) return static_cast<int>(i);
    return -1;
  }
  Status error(size_t line, const std::string& why) const {
    return Status::invalid_argument(path_ + ":" + std::to_string(line) + ": " + why);
  }
  size_t width() const { return header_.size(); }
  const std::vector<std::pair<size_t, std::string_view>>& lines() const { return lines_; }

 private:
  std::string path_;
  std::string text_;
  std::vector<std::string_view> header_;
  std::vector<std::pair<size_t, std::string_view>> lines_;
};

// A row's fields by column name, with number parsing that reports the line.
struct Row {
  const Csv& csv;
  size_t line;
  std::vector<std::string_view> fields;

  std::string_view text(const char* col) const { return fields[static_cast<size_t>(csv.column(col))]; }
  Result<double> number(const char* col, bool allow_empty = false) const {
    std::string_view s = text(col);
    if (s.empty()) {
      if (allow_empty) return 0.0;
      return csv.error(line, std::string("empty ") + col);
    }
    double v = 0;
    auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
    if (ec != std::errc() || p != s.data() + s.size() || !std::isfinite(v) || v < 0)
      return csv.error(line, std::string("bad ") + col + " '" + std::string(s) + "'");
    return v;
  }
  Result<int64_t> integer(const char* col) const {
    Result<double> v = number(col);
    if (!v.ok()) return v.status();
    if (*v != std::floor(*v)) return csv.error(line, std::string("bad ") + col + " '" + std::string(text(col)) + "' (not a whole number)");
    return static_cast<int64_t>(*v);
  }
};

}  // namespace

int64_t TracePod::duration_s() const {
  const int64_t start = scheduled_s ? *scheduled_s : creation_s;
  return std::max<int64_t>(1, deletion_s - start);
}

Result<std::vector<TracePod>> read_trace_pods(const std::string& path) {
  Csv csv;
  Status s = csv.open(path, {"name", "cpu_milli", "memory_mib", "num_gpu", "gpu_milli", "gpu_spec", "qos",
                             "pod_phase", "creation_time", "deletion_time", "scheduled_time"});
  if (!s.is_ok()) return s;
  std::vector<TracePod> pods;
  pods.reserve(csv.lines().size());
  for (const auto& [line, text] : csv.lines()) {
    Row r{csv, line, split_fields(text, ',')};
    if (r.fields.size() != csv.width())
      return csv.error(line, "expected " + std::to_string(csv.width()) + " fields, found " + std::to_string(r.fields.size()));
    TracePod p;
    p.name = std::string(r.text("name"));
    if (p.name.empty()) return csv.error(line, "empty name");
    auto cpu = r.number("cpu_milli"), mem = r.number("memory_mib");
    auto gpu = r.integer("num_gpu"), milli = r.integer("gpu_milli");
    auto created = r.integer("creation_time"), deleted = r.integer("deletion_time");
    for (const Status& st : {cpu.status(), mem.status(), gpu.status(), milli.status(), created.status(), deleted.status()})
      if (!st.is_ok()) return st;
    p.cpu_milli = *cpu;
    p.memory_mib = *mem;
    if (*gpu > 64) return csv.error(line, "num_gpu " + std::to_string(*gpu) + " out of range 0..64");
    if (*milli > 1000) return csv.error(line, "gpu_milli " + std::to_string(*milli) + " out of range 0..1000");
    p.num_gpu = static_cast<int>(*gpu);
    p.gpu_milli = static_cast<int>(*milli);
    if (p.num_gpu == 1 && p.gpu_milli == 0) p.gpu_milli = 1000;
    for (std::string_view m : split_fields(r.text("gpu_spec"), '|'))
      if (!m.empty()) p.gpu_spec.emplace_back(m);
    p.qos = std::string(r.text("qos"));
    p.phase = std::string(r.text("pod_phase"));
    p.creation_s = *created;
    p.deletion_s = *deleted;
    if (!r.text("scheduled_time").empty()) {
      auto sched = r.integer("scheduled_time");
      if (!sched.ok()) return sched.status();
      p.scheduled_s = *sched;
    }
    if (p.deletion_s < p.creation_s) return csv.error(line, "deletion_time before creation_time");
    pods.push_back(std::move(p));
  }
  return pods;
}

Result<std::vector<TraceNode>> read_trace_nodes(const std::string& path) {
  Csv csv;
  Status s = csv.open(path, {"sn", "cpu_milli", "memory_mib", "gpu", "model"});
  if (!s.is_ok()) return s;
  std::vector<TraceNode> nodes;
  for (const auto& [line, text] : csv.lines()) {
    Row r{csv, line, split_fields(text, ',')};
    if (r.fields.size() != csv.width())
      return csv.error(line, "expected " + std::to_string(csv.width()) + " fields, found " + std::to_string(r.fields.size()));
    TraceNode n;
    n.name = std::string(r.text("sn"));
    if (n.name.empty()) return csv.error(line, "empty sn");
    auto cpu = r.number("cpu_milli"), mem = r.number("memory_mib");
    auto gpu = r.integer("gpu");
    for (const Status& st : {cpu.status(), mem.status(), gpu.status()})
      if (!st.is_ok()) return st;
    if (*gpu > 64) return csv.error(line, "gpu " + std::to_string(*gpu) + " out of range 0..64");
    n.cpu_milli = *cpu;
    n.memory_mib = *mem;
    n.gpus = static_cast<int>(*gpu);
    n.model = std::string(r.text("model"));
    if (n.gpus > 0 && n.model.empty()) return csv.error(line, "empty model for a node with GPUs");
    nodes.push_back(std::move(n));
  }
  return nodes;
}

}  // namespace mufl::scheduler
