// The Prometheus rules and the Grafana dashboard in deploy/ against what the real mufld
// exports: every mufl series an expression names must be one mufld serves, or a recording
// rule that deploy/prometheus/mufl-rules.yml defines. (CTest runs promtool on the rules
// themselves: tests/CMakeLists.txt, "promtool: ...".)
//
// Which names count as exported: a family with no series yet (a labelled counter nothing
// has incremented, e.g. mufl_fl_rounds_total before the first round, or every device and
// tenant series under --devices none) prints no `# TYPE` line at all, so a scrape alone
// misses them. The known names are therefore the `# TYPE` lines of a live scrape united
// with the table in docs/metrics.md, and the test checks that table against the families
// service/metrics.cpp registers, both ways, so neither can drift from the code.
#include <catch2/catch.hpp>

#include <fstream>
#include <nlohmann/json.hpp>
#include <regex>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "tests/support/http_client.h"
#include "tests/support/mufld_process.h"
#include "tests/support/temp_dir.h"

using namespace mufl::testing;
using nlohmann::json;

namespace {

const std::string kAdmin = "e2e-admin-token";

std::string read_source(const std::string& relative) {
  std::ifstream in(std::string(MUFL_SOURCE_DIR) + "/" + relative);
  INFO(relative);
  REQUIRE(in);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// Adds `name`, and for a histogram (or summary) the series Prometheus stores for it.
void add_family(std::set<std::string>& names, const std::string& name, const std::string& kind) {
  names.insert(name);
  if (kind == "histogram") names.insert(name + "_bucket");
  if (kind == "histogram" || kind == "summary") {
    names.insert(name + "_sum");
    names.insert(name + "_count");
  }
}

// The series a /metrics body declares, from its `# TYPE name kind` lines.
std::set<std::string> scraped_names(const std::string& text) {
  std::set<std::string> names;
  std::regex type_line(R"(^# TYPE ([a-zA-Z_:][a-zA-Z0-9_:]*) (\w+)\s*$)");
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) {
    std::smatch m;
    if (std::regex_match(line, m, type_line)) add_family(names, m[1], m[2]);
  }
  return names;
}

// The families docs/metrics.md's table lists (`| \`name\` | kind | ...`), base names only
// when `with_series` is false.
std::set<std::string> documented_names(const std::string& md, bool with_series) {
  std::set<std::string> names;
  std::regex row(R"(^\| `(mufl_[a-z0-9_]+)` \| (counter|gauge|histogram|summary) \|)");
  std::istringstream in(md);
  for (std::string line; std::getline(in, line);) {
    std::smatch m;
    if (!std::regex_search(line, m, row)) continue;
    if (with_series)
      add_family(names, m[1], m[2]);
    else
      names.insert(m[1]);
  }
  return names;
}

// The family names service/metrics.cpp registers (`.Name("mufl_...")`).
std::set<std::string> registered_names(const std::string& cpp) {
  std::set<std::string> names;
  std::regex name(R"re(\.Name\("(mufl_[a-z0-9_]+)"\))re");
  for (std::sregex_iterator it(cpp.begin(), cpp.end(), name), end; it != end; ++it) names.insert((*it)[1]);
  return names;
}

size_t indent_of(const std::string& line) { return line.find_first_not_of(' '); }

// The `expr:` values of a rules file: one-line values, and block scalars (`expr: |` or `>-`)
// whose lines are indented deeper than the key. Enough YAML for rules files, no more.
std::vector<std::string> rule_expressions(const std::string& yaml) {
  std::vector<std::string> exprs;
  std::vector<std::string> lines;
  std::istringstream in(yaml);
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  std::regex key(R"(^(\s*)(?:- )?expr:\s*(.*?)\s*$)");
  for (size_t i = 0; i < lines.size(); ++i) {
    std::smatch m;
    if (!std::regex_match(lines[i], m, key)) continue;
    std::string value = m[2];
    if (!value.empty() && (value[0] == '|' || value[0] == '>')) {
      const size_t key_indent = indent_of(lines[i]);
      value.clear();
      while (i + 1 < lines.size() &&
             (lines[i + 1].find_first_not_of(' ') == std::string::npos || indent_of(lines[i + 1]) > key_indent))
        value += lines[++i] + "\n";
    } else if (value.size() >= 2 && (value.front() == '\'' || value.front() == '"') && value.back() == value.front()) {
      value = value.substr(1, value.size() - 2);
    }
    exprs.push_back(value);
  }
  return exprs;
}

// The names `record:` lines define.
std::set<std::string> recorded_names(const std::string& yaml) {
  std::set<std::string> names;
  std::regex record(R"(^\s*(?:- )?record:\s*([a-zA-Z_:][a-zA-Z0-9_:]*)\s*$)");
  std::istringstream in(yaml);
  for (std::string line; std::getline(in, line);) {
    std::smatch m;
    if (std::regex_match(line, m, record)) names.insert(m[1]);
  }
  return names;
}

// Every string under an "expr" key anywhere in a dashboard (panel targets), and the query
// strings of its query variables.
void dashboard_expressions(const json& j, std::vector<std::string>& out) {
  if (j.is_object()) {
    for (const auto& [k, v] : j.items()) {
      if ((k == "expr" || k == "query" || k == "definition") && v.is_string())
        out.push_back(v.get<std::string>());
      else
        dashboard_expressions(v, out);
    }
  } else if (j.is_array()) {
    for (const auto& v : j) dashboard_expressions(v, out);
  }
}

// The identifiers in PromQL `expr` that name a mufl series (contain "mufl", outside quoted
// label values) and are not in `known`, in order of appearance.
std::vector<std::string> unknown_series(const std::string& expr, const std::set<std::string>& known) {
  static const std::regex quoted(R"re("(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'|`[^`]*`)re");
  static const std::regex ident(R"([a-zA-Z_:][a-zA-Z0-9_:]*)");
  const std::string bare = std::regex_replace(expr, quoted, "\"\"");
  std::vector<std::string> unknown;
  for (std::sregex_iterator it(bare.begin(), bare.end(), ident), end; it != end; ++it) {
    const std::string name = it->str();
    if (name.find("mufl") != std::string::npos && !known.count(name)) unknown.push_back(name);
  }
  return unknown;
}

}  // namespace

TEST_CASE("deploy: the series checker reports names mufld does not export") {
  const std::set<std::string> known = {"mufl_fl_rounds_total", "mufl_http_request_duration_seconds_bucket",
                                       "device:mufl_fl_rounds:rate5m"};
  CHECK(unknown_series("sum by (device) (rate(mufl_fl_rounds_total[5m]))", known).empty());
  CHECK(unknown_series("device:mufl_fl_rounds:rate5m > 1", known).empty());
  CHECK(unknown_series(R"(histogram_quantile(0.99, sum by (le) (rate(mufl_http_request_duration_seconds_bucket{route="/mufl_x"}[5m]))))",
                       known)
            .empty());
  // A near miss (no _total), a histogram's base name, and an undefined recording rule.
  CHECK(unknown_series("rate(mufl_fl_rounds[5m])", known) == std::vector<std::string>{"mufl_fl_rounds"});
  CHECK(unknown_series("mufl_http_request_duration_seconds", known) ==
        std::vector<std::string>{"mufl_http_request_duration_seconds"});
  CHECK(unknown_series("device:mufl_fl_rounds:rate1m + mufl_tenant_energy_quota_joules", known) ==
        std::vector<std::string>{"device:mufl_fl_rounds:rate1m", "mufl_tenant_energy_quota_joules"});

  const std::string yaml =
      "groups:\n"
      "  - name: g\n"
      "    rules:\n"
      "      - record: a:mufl_x:rate5m\n"
      "        expr: sum(rate(mufl_x_total[5m]))\n"
      "      - alert: A\n"
      "        expr: |\n"
      "          mufl_y\n"
      "            > 0\n"
      "        for: 5m\n"
      "      - alert: B\n"
      "        expr: 'mufl_z == 1'\n";
  CHECK(rule_expressions(yaml) == std::vector<std::string>{"sum(rate(mufl_x_total[5m]))", "          mufl_y\n            > 0\n",
                                                           "mufl_z == 1"});
  CHECK(recorded_names(yaml) == std::set<std::string>{"a:mufl_x:rate5m"});

  std::set<std::string> scraped = scraped_names(
      "# HELP mufl_a_seconds x\n# TYPE mufl_a_seconds histogram\nmufl_a_seconds_count 0\n# TYPE mufl_b gauge\n");
  CHECK(scraped == std::set<std::string>{"mufl_a_seconds", "mufl_a_seconds_bucket", "mufl_a_seconds_count",
                                         "mufl_a_seconds_sum", "mufl_b"});
}

TEST_CASE("deploy: the rules and the dashboard use only series mufld exports") {
  TempDir dir;
  MufldProcess mufld(MUFLD_PATH, dir.path(), kAdmin, {"--devices", "none"});
  HttpClient c("127.0.0.1", mufld.port());
  REQUIRE(c.get("/healthz").status == 200);  // so the HTTP families have a series to show
  auto m = c.get("/metrics");
  REQUIRE(m.status == 200);

  const std::set<std::string> scraped = scraped_names(m.body);
  REQUIRE(scraped.count("mufl_http_request_duration_seconds_bucket") == 1);

  // docs/metrics.md lists exactly what service/metrics.cpp registers, and every family the
  // scrape shows.
  const std::string md = read_source("docs/metrics.md");
  CHECK(documented_names(md, false) == registered_names(read_source("service/metrics.cpp")));
  std::set<std::string> known = documented_names(md, true);
  for (const auto& name : scraped) {
    INFO("scraped but not in docs/metrics.md: " << name);
    CHECK((name.rfind("mufl_", 0) != 0 || known.count(name) == 1));
  }
  known.insert(scraped.begin(), scraped.end());

  const std::string rules = read_source("deploy/prometheus/mufl-rules.yml");
  const std::set<std::string> recorded = recorded_names(rules);
  CHECK(recorded.size() >= 4);
  known.insert(recorded.begin(), recorded.end());

  const std::vector<std::string> rule_exprs = rule_expressions(rules);
  CHECK(rule_exprs.size() >= recorded.size() + 4);  // the recording rules and at least four alerts
  for (const auto& e : rule_exprs) {
    INFO("mufl-rules.yml: " << e);
    CHECK(unknown_series(e, known) == std::vector<std::string>{});
  }

  const json dashboard = json::parse(read_source("deploy/grafana/mufl-dashboard.json"));
  REQUIRE(dashboard["panels"].is_array());
  CHECK(dashboard["panels"].size() >= 10);
  std::vector<std::string> dash_exprs;
  dashboard_expressions(dashboard, dash_exprs);
  CHECK(dash_exprs.size() >= dashboard["panels"].size());
  for (const auto& e : dash_exprs) {
    INFO("mufl-dashboard.json: " << e);
    CHECK(unknown_series(e, known) == std::vector<std::string>{});
  }
  // Every panel reads the datasource variable, so the dashboard works wherever it is loaded.
  for (const auto& p : dashboard["panels"]) {
    INFO(p.value("title", ""));
    CHECK(p["datasource"]["uid"] == "${DS_PROMETHEUS}");
  }
}
