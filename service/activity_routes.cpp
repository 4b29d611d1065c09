#include <nlohmann/json.hpp>

#include "service/json_response.h"
#include "service/page_query.h"
#include "service/problem.h"
#include "service/routes.h"
#include "tenants/activity_spec.h"
#include "tenants/json_fields.h"
#include "core/file_io.h"

#include <cstdio>

namespace mufl::service {
namespace {

constexpr int kDefaultPageSize = 50;

// Reads ?state=&limit=&cursor= strictly: unknown parameters and bad values are 400s.
Result<storage::ActivityQuery> parse_list_query(const HttpRequest& req) {
  storage::ActivityQuery q;
  q.limit = kDefaultPageSize;
  std::vector<FieldError> errors;
  for (const auto& [key, value] : req.query) {
    if (key == "state") {
      auto s = parse_activity_state(value);
      if (s)
        q.state = s;
      else
        errors.push_back({"state", "unknown state '" + value +
                                       "'; one of queued, consolidating, splitting, training, succeeded, "
                                       "failed, cancelled"});
    } else if (key == "limit") {
      if (auto n = read_page_limit(value, errors)) q.limit = *n;
    } else if (key == "cursor") {
      if (auto c = read_page_cursor(value, errors)) q.before_seq = *c;
    } else {
      errors.push_back({key, "unknown query parameter; this route takes state, limit and cursor"});
    }
  }
  if (!errors.empty()) return Status::invalid_argument("the query has invalid parameters", std::move(errors));
  return q;
}

constexpr int kDefaultRoundsPage = 100;

// Reads ?limit=&cursor= of GET /v1/activities/{id}/rounds strictly, as parse_list_query.
Result<storage::RoundQuery> parse_rounds_query(const HttpRequest& req) {
  storage::RoundQuery q;
  q.limit = kDefaultRoundsPage;
  std::vector<FieldError> errors;
  for (const auto& [key, value] : req.query) {
    if (key == "limit") {
      if (auto n = read_page_limit(value, errors)) q.limit = *n;
    } else if (key == "cursor") {
      if (auto c = read_page_cursor(value, errors)) q.after_round = *c;
    } else {
      errors.push_back({key, "unknown query parameter; this route takes limit and cursor"});
    }
  }
  if (!errors.empty()) return Status::invalid_argument("the query has invalid parameters", std::move(errors));
  return q;
}

// Reads ?cluster= of GET /v1/activities/{id}/model: a client cluster's number, or none.
Result<std::optional<int64_t>> parse_model_query(const HttpRequest& req) {
  std::optional<int64_t> cluster;
  std::vector<FieldError> errors;
  for (const auto& [key, value] : req.query) {
    if (key != "cluster") {
      errors.push_back({key, "unknown query parameter; this route takes cluster"});
    } else if (value.empty() || value.size() > 2 || value.find_first_not_of("0123456789") != std::string::npos ||
               std::stoll(value) >= tenants::kMaxClientClusters) {
      errors.push_back({"cluster", "must be a cluster's number, an integer from 0 to " +
                                       std::to_string(tenants::kMaxClientClusters - 1)});
    } else {
      cluster = std::stoll(value);
    }
  }
  if (!errors.empty()) return Status::invalid_argument("the query has invalid parameters", std::move(errors));
  return cluster;
}

// The file's bytes, after checking them against the SHA-256 recorded with it.
Result<std::string> read_verified_file(const storage::StoredFile& f) {
  auto bytes = read_file(f.path);
  if (!bytes.ok()) return Status::internal("the model file " + f.path + " cannot be read: " + bytes.status().message());
  if (sha256_hex(*bytes) != f.sha256) return Status::internal("the model file " + f.path + " is corrupt");
  return bytes;
}

// Why an active activity does not train though it could: its tenant has used up its energy
// budget. Null otherwise. (In a group with another tenant's activities that still have budget,
// it trains on with them: docs/energy.md, "Budgets".)
nlohmann::json paused_reason(const Activity& a, const Tenant& t) {
  const auto& budget = t.quotas.energy_budget_joules;
  if (is_terminal(a.state) || !budget || t.energy_used_joules < *budget) return nullptr;
  char text[160];
  std::snprintf(text, sizeof text, "energy budget of %.0f J used (%.0f J)", *budget, t.energy_used_joules);
  return text;
}

}  // namespace

void add_activity_routes(Router& router, tenants::ActivityService& activities, const Catalog& catalog,
                         const Clock& clock, const scheduler::WaitingExplainer* waiting) {
  router.add("GET", "/v1/catalog", Access::kAnyone,
             [json = dump_json(catalog.to_json())](const RequestContext&) {
               HttpResponse r;
               r.body = json;
               return r;
             }, Cost::kQuick);

  router.add("POST", "/v1/activities", Access::kAnyone, [&activities, &clock](const RequestContext& ctx) {
    auto body = tenants::parse_json_object(ctx.request.body);
    if (!body.ok()) return problem_from_status(body.status());
    std::optional<std::string> key;
    if (auto h = ctx.request.header("idempotency-key")) key = std::string(*h);
    auto submitted = activities.submit(ctx.principal, *body, key);
    if (!submitted.ok()) return problem_from_status(submitted.status());
    HttpResponse r = json_response(201, tenants::activity_to_json(submitted->activity, clock.now_unix_ms()));
    r.headers.emplace_back("Location", "/v1/activities/" + submitted->activity.id);
    if (submitted->replayed) r.headers.emplace_back("Idempotent-Replayed", "true");
    return r;
  });

  router.add("GET", "/v1/activities", Access::kAnyone, [&activities, &clock](const RequestContext& ctx) {
    auto query = parse_list_query(ctx.request);
    if (!query.ok()) return problem_from_status(query.status());
    auto page = activities.list(ctx.principal, *query);
    if (!page.ok()) return problem_from_status(page.status());
    nlohmann::json items = nlohmann::json::array();
    for (const auto& a : page->items) items.push_back(tenants::activity_to_json(a, clock.now_unix_ms()));
    nlohmann::json next = page->next_before_seq ? nlohmann::json(std::to_string(*page->next_before_seq))
                                                : nlohmann::json();
    return json_response(200, {{"items", items}, {"next_cursor", next}});
  }, Cost::kQuick);

  router.add("GET", "/v1/activities/{id}", Access::kAnyone, [&activities, &clock, waiting](const RequestContext& ctx) {
    // Everything below comes from one read snapshot (Store::get_activity_detail).
    auto d = activities.get_detail(ctx.principal, ctx.param("id"));
    if (!d.ok()) return problem_from_status(d.status());
    const Activity& a = d->activity;
    auto json = tenants::activity_to_json(a, clock.now_unix_ms());
    // The groups it has trained in, oldest first (merge, then the group it was split into).
    json["groups"] = d->groups;
    // Its shares of the energy ledger (docs/energy.md) and whether its budget stops it.
    json["energy"] = {{"joules", d->energy.joules},
                      {"device_seconds", d->energy.device_seconds},
                      {"grams_co2e", d->energy.grams_co2e},
                      {"work_units", d->energy.units},
                      {"abandoned_units", d->energy.abandoned_units},
                      {"client_joules", d->energy.client_joules}};
    json["paused"] = d->tenant ? paused_reason(a, *d->tenant) : nlohmann::json();
    // Why its group waits for a device (scheduler/placement/waiting.h: budget, carbon deferral, …).
    json["waiting"] = nullptr;
    json["waiting_reason"] = nullptr;
    if (waiting && !is_terminal(a.state) && d->waiting_group && a.progress.device.empty()) {
      const scheduler::WaitNote note = waiting->explain(*d->waiting_group);
      json["waiting"] = note.text;
      json["waiting_reason"] = to_string(note.reason);
    }
    return json_response(200, json);
  }, Cost::kQuick);

  router.add("DELETE", "/v1/activities/{id}", Access::kAnyone, [&activities, &clock](const RequestContext& ctx) {
    auto a = activities.cancel(ctx.principal, ctx.param("id"));
    return a.ok() ? json_response(200, tenants::activity_to_json(*a, clock.now_unix_ms())) : problem_from_status(a.status());
  });

  router.add("GET", "/v1/activities/{id}/rounds", Access::kAnyone, [&activities](const RequestContext& ctx) {
    auto query = parse_rounds_query(ctx.request);
    if (!query.ok()) return problem_from_status(query.status());
    auto page = activities.rounds(ctx.principal, ctx.param("id"), *query);
    if (!page.ok()) return problem_from_status(page.status());
    nlohmann::json items = nlohmann::json::array();
    for (const auto& r : page->items) {
      auto report = nlohmann::json::parse(r.report_json, nullptr, /*allow_exceptions=*/false);
      items.push_back(report.is_discarded() ? nlohmann::json{{"round", r.round}} : report);
    }
    nlohmann::json next = page->next_after_round ? nlohmann::json(std::to_string(*page->next_after_round))
                                                 : nlohmann::json();
    return json_response(200, {{"items", items}, {"next_cursor", next}});
  }, Cost::kQuick);

  router.add("GET", "/v1/activities/{id}/model", Access::kAnyone, [&activities](const RequestContext& ctx) {
    auto cluster = parse_model_query(ctx.request);
    if (!cluster.ok()) return problem_from_status(cluster.status());
    auto file = activities.model(ctx.principal, ctx.param("id"), *cluster);
    if (!file.ok()) return problem_from_status(file.status());
    auto bytes = read_verified_file(*file);
    if (!bytes.ok()) return problem_from_status(bytes.status());
    HttpResponse r;
    r.content_type = "application/octet-stream";
    r.body = std::move(*bytes);
    r.headers.emplace_back("Content-Disposition", "attachment; filename=\"" + ctx.param("id") + ".pt\"");
    r.headers.emplace_back("X-Content-SHA256", file->sha256);
    return r;
  });
}

}  // namespace mufl::service
