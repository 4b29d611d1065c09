#include <nlohmann/json.hpp>

#include "service/json_response.h"
#include "service/metrics_endpoint.h"
#include "service/problem.h"
#include "service/routes.h"
#include "service/version.h"
#include "web/assets.h"

namespace mufl::service {
namespace {

HttpResponse asset_response(const web::Asset& a) {
  HttpResponse r;
  r.content_type = std::string(a.content_type);
  r.body = std::string(a.data);
  r.headers.emplace_back("Cache-Control", "no-cache");
  // The page loads only its own files and talks only to this server.
  r.headers.emplace_back("Content-Security-Policy",
                         "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'");
  r.headers.emplace_back("X-Content-Type-Options", "nosniff");
  return r;
}

}  // namespace

void add_system_routes(Router& router, storage::Store& store, std::function<Status()> training_health) {
  router.add("GET", "/healthz", Access::kPublic, [](const RequestContext&) {
    return json_response(200, {{"status", "ok"}, {"version", kVersion}});
  }, Cost::kQuick);

  // Not ready names its cause; a full disk says so ("storage: ..."), also when only the
  // executor's checkpoint writes met it. Reads keep working meanwhile.
  router.add("GET", "/readyz", Access::kPublic, [&store, training_health](const RequestContext&) {
    Status s = store.check_ready();
    if (s.is_ok() && training_health) s = training_health();
    if (!s.is_ok()) {
      const char* cause = s.code() == Status::Code::kInsufficientStorage ? "storage full: "
                          : s.is_transient()                             ? "storage: "
                                                                         : "";
      HttpResponse r = problem(503, "about:blank", std::string("not ready: ") + cause + s.message());
      r.headers.emplace_back("Retry-After", "5");
      return r;
    }
    return json_response(200, {{"status", "ready"}});
  });

  router.add("GET", "/", Access::kPublic, [](const RequestContext&) {
    return asset_response(*web::find_asset("index.html"));
  });

  router.add("GET", "/assets/{name}", Access::kPublic, [](const RequestContext& ctx) {
    const web::Asset* a = web::find_asset(ctx.param("name"));
    if (!a) return problem(404, "about:blank", "no asset " + ctx.param("name"));
    return asset_response(*a);
  });
}

void add_metrics_route(Router& router, storage::Store& store, Metrics& metrics, const std::string& token) {
  // Public to the router: the metrics token is not a tenant's or the admin's token.
  router.add("GET", "/metrics", Access::kPublic, [&store, &metrics, token](const RequestContext& ctx) {
    if (!token.empty() && !scrape_authorized(ctx.request, token)) return scrape_unauthorized(ctx.request);
    if (auto counts = store.count_activities_by_state(); counts.ok()) metrics.set_activity_counts(*counts);
    if (auto counts = store.count_groups_by_phase(); counts.ok()) metrics.set_group_counts(*counts);
    if (auto tenants = store.list_tenants(); tenants.ok()) metrics.set_tenants(*tenants);
    metrics.before_scrape();
    HttpResponse r;
    r.content_type = "text/plain; version=0.0.4; charset=utf-8";
    r.body = metrics.serialize();
    return r;
  });
}

}  // namespace mufl::service
