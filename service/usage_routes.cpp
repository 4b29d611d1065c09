// GET /v1/usage?from=&to=[&tenant=]: a tenant's device-seconds, joules and grams CO2e per UTC
// day, from its shares of the energy ledger (docs/energy.md). A tenant gets its own; the admin
// names the tenant.
#include <nlohmann/json.hpp>

#include "core/time_format.h"
#include "service/json_response.h"
#include "service/problem.h"
#include "service/routes.h"

namespace mufl::service {
namespace {

constexpr int64_t kDayMs = 86'400'000;
constexpr int64_t kMaxDays = 366;
constexpr int64_t kDefaultDays = 30;

// "2026-01-31" → Unix ms of its midnight (UTC); nullopt for anything else.
std::optional<int64_t> parse_day(const std::string& s) {
  if (s.size() != 10 || s[4] != '-' || s[7] != '-') return std::nullopt;
  return parse_rfc3339(s + "T00:00:00Z");
}

std::string format_day(int64_t unix_ms) { return format_rfc3339(unix_ms).substr(0, 10); }

nlohmann::json totals_json(const storage::EnergyTotals& t) {
  return {{"device_seconds", t.device_seconds},
          {"joules", t.joules},
          {"grams_co2e", t.grams_co2e},
          {"work_units", t.units},
          {"abandoned_units", t.abandoned_units},
          {"client_joules", t.client_joules}};
}

}  // namespace

void add_usage_routes(Router& router, storage::Store& store, const EnergyOptions& energy, const Clock& clock) {
  router.add("GET", "/v1/usage", Access::kAnyone, [&store, energy, &clock](const RequestContext& ctx) {
    std::vector<FieldError> errors;
    std::optional<int64_t> from, to;
    std::string tenant = ctx.principal.tenant_id;
    bool tenant_given = false;
    for (const auto& [key, value] : ctx.request.query) {
      if (key == "from" || key == "to") {
        auto day = parse_day(value);
        if (!day)
          errors.push_back({key, "must be a UTC date YYYY-MM-DD, e.g. 2026-01-31"});
        else
          (key == "from" ? from : to) = day;
      } else if (key == "tenant") {
        tenant_given = true;
        if (value.empty()) errors.push_back({"tenant", "must be a tenant id"});
        // A tenant may name only itself; another tenant's id reads as unknown (404 below).
        tenant = value;
      } else {
        errors.push_back({key, "unknown query parameter; this route takes from, to and tenant"});
      }
    }
    if (ctx.principal.is_admin() && !tenant_given)
      errors.push_back({"tenant", "is required with the admin token: whose usage?"});
    const int64_t today = clock.now_unix_ms() / kDayMs * kDayMs;
    if (!to) to = from ? std::min(*from + (kDefaultDays - 1) * kDayMs, today) : today;
    if (!from) from = *to - (kDefaultDays - 1) * kDayMs;
    if (errors.empty() && *from > *to) errors.push_back({"from", "must not be after to"});
    if (errors.empty() && (*to - *from) / kDayMs + 1 > kMaxDays)
      errors.push_back({"to", "the range may span at most " + std::to_string(kMaxDays) + " days"});
    if (!errors.empty())
      return problem_from_status(Status::invalid_argument("the query has invalid parameters", std::move(errors)));
    if (!ctx.principal.is_admin() && tenant != ctx.principal.tenant_id)
      return problem_from_status(Status::not_found("no tenant " + tenant));
    auto t = store.get_tenant(tenant);
    if (!t.ok()) return problem_from_status(t.status());

    auto days = store.tenant_usage(tenant, *from, *to + kDayMs);
    if (!days.ok()) return problem_from_status(days.status());
    nlohmann::json rows = nlohmann::json::array();
    storage::EnergyTotals total;
    for (const auto& d : *days) {
      nlohmann::json row = totals_json(d.totals);
      row["date"] = d.day;
      rows.push_back(row);
      total.device_seconds += d.totals.device_seconds;
      total.joules += d.totals.joules;
      total.grams_co2e += d.totals.grams_co2e;
      total.units += d.totals.units;
      total.abandoned_units += d.totals.abandoned_units;
      total.client_joules += d.totals.client_joules;
    }
    nlohmann::json carbon = {{"source", energy.carbon_source}};
    if (energy.carbon_source == "constant") {
      carbon["g_per_kwh"] = energy.carbon_constant_g_per_kwh;
      carbon["note"] = energy.carbon_note;
    }
    return json_response(200, {{"tenant_id", tenant},
                               {"from", format_day(*from)},
                               {"to", format_day(*to)},
                               {"days", rows},
                               {"total", totals_json(total)},
                               {"carbon", carbon}});
  });
}

}  // namespace mufl::service
