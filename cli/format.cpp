#include "cli/format.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <sstream>

namespace mufl::cli {

using nlohmann::json;

namespace {

const json& field(const json& j, const char* key) {
  static const json kNull;
  if (!j.is_object()) return kNull;
  auto it = j.find(key);
  return it == j.end() ? kNull : *it;
}

std::string text(const json& j, const char* key) { return cell(field(j, key)); }

// "7/20" from a progress object.
std::string rounds_text(const json& progress) {
  return cell(field(progress, "round")) + "/" + cell(field(progress, "rounds"));
}

std::string id_list(const json& ids) {
  if (!ids.is_array() || ids.empty()) return "-";
  std::string out;
  for (const auto& id : ids) out += (out.empty() ? "" : ",") + cell(id.is_object() ? field(id, "id") : id);
  return out;
}

void line(std::ostringstream& out, const std::string& name, const std::string& value) {
  out << name << ":" << std::string(name.size() < 14 ? 14 - name.size() : 1, ' ') << value << "\n";
}

}  // namespace

std::string table(const std::vector<std::string>& header, const std::vector<std::vector<std::string>>& rows) {
  std::vector<size_t> width(header.size(), 0);
  auto measure = [&](const std::vector<std::string>& r) {
    for (size_t i = 0; i < r.size() && i < width.size(); ++i) width[i] = std::max(width[i], r[i].size());
  };
  measure(header);
  for (const auto& r : rows) measure(r);
  std::ostringstream out;
  auto print = [&](const std::vector<std::string>& r) {
    std::string l;
    for (size_t i = 0; i < width.size(); ++i) {
      const std::string& c = i < r.size() ? r[i] : std::string();
      l += c;
      if (i + 1 < width.size()) l += std::string(width[i] - c.size() + 2, ' ');
    }
    while (!l.empty() && l.back() == ' ') l.pop_back();
    out << l << "\n";
  };
  print(header);
  for (const auto& r : rows) print(r);
  return out.str();
}

std::string cell(const json& v) {
  if (v.is_null()) return "-";
  if (v.is_string()) return v.get<std::string>();
  if (v.is_boolean()) return v.get<bool>() ? "true" : "false";
  if (v.is_number_integer()) return std::to_string(v.get<int64_t>());
  if (v.is_number_unsigned()) return std::to_string(v.get<uint64_t>());
  if (v.is_number_float()) {
    const double d = v.get<double>();
    char buf[32];
    if (std::isfinite(d) && d == std::floor(d) && std::fabs(d) < 1e15)
      std::snprintf(buf, sizeof buf, "%.0f", d);
    else
      std::snprintf(buf, sizeof buf, "%.4g", d);
    return buf;
  }
  return v.dump();
}

std::string problem_text(int status, const std::string& body) {
  const json p = json::parse(body, nullptr, /*allow_exceptions=*/false);
  if (!p.is_object() || !p.contains("title")) {
    std::string start = body.substr(0, 200);
    std::replace(start.begin(), start.end(), '\n', ' ');
    return "HTTP " + std::to_string(status) + (start.empty() ? "" : ": " + start);
  }
  std::string out = cell(p["title"]) + " (" + std::to_string(status) + ")";
  if (p.contains("detail") && p["detail"].is_string() && !p["detail"].get<std::string>().empty())
    out += ": " + p["detail"].get<std::string>();
  for (const auto& e : field(p, "errors")) out += "\n  " + text(e, "field") + ": " + text(e, "detail");
  return out;
}

json flat_metrics(const json& metrics) {
  if (!metrics.is_object()) return json::object();
  bool nested = !metrics.empty();
  for (const auto& [k, v] : metrics.items()) nested = nested && v.is_object();
  if (!nested) return metrics;
  if (metrics.size() == 1) return metrics.begin().value();
  json flat = json::object();
  for (const auto& [task, values] : metrics.items())
    for (const auto& [name, v] : values.items()) flat[task + "." + name] = v;
  return flat;
}

std::string metrics_text(const json& metrics) {
  const json flat = flat_metrics(metrics);
  std::vector<std::string> names;
  for (const auto& [k, v] : flat.items()) names.push_back(k);
  // Loss first (also "task.loss"), then the rest in name order (json objects are sorted).
  std::stable_partition(names.begin(), names.end(), [](const std::string& n) {
    return n == "loss" || (n.size() > 5 && n.compare(n.size() - 5, 5, ".loss") == 0);
  });
  std::string out;
  for (const auto& n : names) {
    const json& v = flat[n];
    char buf[32];
    std::string value = v.is_number() ? (std::snprintf(buf, sizeof buf, "%.4f", v.get<double>()), buf) : cell(v);
    out += (out.empty() ? "" : " ") + n + " " + value;
  }
  return out;
}

std::string activities_table(const json& items) {
  std::vector<std::vector<std::string>> rows;
  for (const auto& a : items) {
    const json& progress = field(a, "progress");
    rows.push_back({text(a, "id"), text(a, "name"), text(a, "state"), rounds_text(progress),
                    text(a, "dataset") + "/" + text(a, "task"),
                    metrics_text(field(field(progress, "latest"), "metrics")), text(a, "updated_at")});
  }
  return table({"ID", "NAME", "STATE", "ROUND", "DATASET/TASK", "LATEST", "UPDATED"}, rows);
}

std::string activity_details(const json& a) {
  std::ostringstream out;
  const json& progress = field(a, "progress");
  line(out, "id", text(a, "id"));
  line(out, "name", text(a, "name"));
  std::string state = text(a, "state");
  if (field(a, "state_reason").is_string() && !field(a, "state_reason").get<std::string>().empty())
    state += " (" + text(a, "state_reason") + ")";
  line(out, "state", state);
  line(out, "dataset/task", text(a, "dataset") + "/" + text(a, "task"));
  line(out, "round", rounds_text(progress));
  line(out, "device", text(progress, "device"));
  line(out, "elapsed", text(progress, "elapsed_seconds") + " s");
  const std::string latest = metrics_text(field(field(progress, "latest"), "metrics"));
  line(out, "latest", latest.empty() ? "-" : latest);
  line(out, "groups", id_list(field(a, "groups")));
  const json& energy = field(a, "energy");
  if (energy.is_object())
    line(out, "energy", text(energy, "joules") + " J, " + text(energy, "device_seconds") + " device-s, " +
                            text(energy, "grams_co2e") + " g CO2e");
  if (!field(a, "paused").is_null()) line(out, "paused", text(a, "paused"));
  if (!field(a, "waiting").is_null()) line(out, "waiting", text(a, "waiting") + " [" + text(a, "waiting_reason") + "]");
  line(out, "model", text(progress, "model_url"));
  line(out, "created", text(a, "created_at"));
  line(out, "updated", text(a, "updated_at"));
  return out.str();
}

std::string groups_table(const json& items) {
  std::vector<std::vector<std::string>> rows;
  for (const auto& g : items) {
    std::string acts = id_list(field(g, "activities"));
    const json& others = field(g, "other_activities");
    if (others.is_number() && others.get<int64_t>() > 0) acts += " +" + cell(others) + " other";
    rows.push_back({text(g, "id"), text(g, "phase"), text(g, "round"), text(g, "device"), text(g, "waiting_reason"),
                    acts, text(g, "parent")});
  }
  return table({"ID", "PHASE", "ROUND", "DEVICE", "WAITING", "ACTIVITIES", "PARENT"}, rows);
}

std::string group_details(const json& g) {
  std::ostringstream out;
  line(out, "id", text(g, "id"));
  line(out, "phase", text(g, "phase"));
  line(out, "policy", text(g, "policy"));
  line(out, "round", text(g, "round") + " (consolidation " + text(g, "consolidation_rounds") + ")");
  line(out, "device", text(g, "device"));
  line(out, "parent", text(g, "parent"));
  if (!field(g, "reason").is_null()) line(out, "reason", text(g, "reason"));
  if (!field(g, "waiting").is_null()) line(out, "waiting", text(g, "waiting") + " [" + text(g, "waiting_reason") + "]");
  std::vector<std::vector<std::string>> members;
  for (const auto& m : field(g, "activities"))
    members.push_back({text(m, "id"), text(m, "task"), text(m, "joined_round"), text(m, "left_round")});
  out << "\nactivities:\n" << table({"ID", "TASK", "JOINED", "LEFT"}, members);
  const json& others = field(g, "other_activities");
  if (others.is_number() && others.get<int64_t>() > 0) out << "(+" << cell(others) << " of other tenants)\n";
  const json& affinity = field(g, "affinity");
  const json& tasks = field(affinity, "tasks");
  if (tasks.is_array() && !tasks.empty()) {
    std::vector<std::string> header = {"AFFINITY i->j"};
    for (const auto& t : tasks) header.push_back(text(t, "activity_id"));
    std::vector<std::vector<std::string>> rows;
    const json& matrix = field(affinity, "matrix");
    for (size_t i = 0; i < tasks.size(); ++i) {
      std::vector<std::string> row = {text(tasks[i], "activity_id")};
      if (matrix.is_array() && i < matrix.size())
        for (const auto& v : matrix[i]) row.push_back(cell(v));
      rows.push_back(row);
    }
    out << "\naffinity (" << text(affinity, "rounds_measured") << " rounds measured):\n" << table(header, rows);
  }
  const json& split = field(g, "split");
  if (split.is_object()) {
    out << "\nsplit at round " << text(split, "round") << " (" << text(split, "method") << ", score "
        << text(split, "score") << "):\n";
    const json& groups = field(split, "groups");
    const json& children = field(split, "child_groups");
    for (size_t i = 0; groups.is_array() && i < groups.size(); ++i)
      out << "  " << (children.is_array() && i < children.size() ? cell(children[i]) : "-") << ": "
          << id_list(groups[i]) << "\n";
  }
  return out.str();
}

std::string devices_table(const json& doc) {
  std::vector<std::vector<std::string>> rows;
  for (const auto& d : field(doc, "items")) {
    const json& unit = field(d, "work_unit");
    std::string work = unit.is_object() ? text(unit, "group_id") + " round " + text(unit, "round") : "-";
    rows.push_back({text(d, "name"), text(d, "kind"), text(d, "state"), work, text(d, "power_watts"),
                    text(d, "energy_joules"), text(d, "meter")});
  }
  std::string out = table({"NAME", "KIND", "STATE", "WORK UNIT", "POWER W", "ENERGY J", "METER"}, rows);
  const json& policy = field(doc, "policy");
  if (policy.is_object()) out += "policy: " + text(policy, "name") + "\n";
  return out;
}

std::string usage_table(const json& doc) {
  std::vector<std::vector<std::string>> rows;
  auto row = [](const std::string& label, const json& t) {
    return std::vector<std::string>{label, text(t, "device_seconds"), text(t, "joules"), text(t, "grams_co2e"),
                                    text(t, "work_units")};
  };
  for (const auto& d : field(doc, "days")) rows.push_back(row(text(d, "date"), d));
  rows.push_back(row("total", field(doc, "total")));
  std::string out = "tenant " + text(doc, "tenant_id") + ", " + text(doc, "from") + " to " + text(doc, "to") + "\n";
  return out + table({"DATE", "DEVICE S", "JOULES", "G CO2E", "WORK UNITS"}, rows);
}

std::string progress_line(const Progress& p, int bar_width) {
  std::string out = p.id + " ";
  if (bar_width > 0) {
    const double share = p.rounds > 0 ? std::clamp(static_cast<double>(p.round) / static_cast<double>(p.rounds), 0.0, 1.0) : 0.0;
    const int filled = static_cast<int>(std::lround(share * bar_width));
    out += "[" + std::string(static_cast<size_t>(filled), '#') + std::string(static_cast<size_t>(bar_width - filled), '-') + "] ";
  } else {
    out += "round ";
  }
  out += std::to_string(p.round) + "/" + std::to_string(p.rounds) + " " + p.state;
  const std::string m = metrics_text(p.metrics);
  if (!m.empty()) out += " " + m;
  return out;
}

json progress_json(const Progress& p) {
  return {{"activity_id", p.id}, {"state", p.state}, {"round", p.round}, {"rounds", p.rounds},
          {"metrics", flat_metrics(p.metrics)}};
}

}  // namespace mufl::cli
