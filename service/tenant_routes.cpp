#include <nlohmann/json.hpp>

#include "service/json_response.h"
#include "service/problem.h"
#include "service/routes.h"
#include "tenants/json_fields.h"

namespace mufl::service {

void add_tenant_routes(Router& router, tenants::TenantRegistry& registry, std::function<void()> on_quotas_changed) {
  router.add("POST", "/v1/tenants", Access::kAdmin, [&registry](const RequestContext& ctx) {
    auto body = tenants::parse_json_object(ctx.request.body);
    if (!body.ok()) return problem_from_status(body.status());
    auto created = registry.create(*body);
    if (!created.ok()) return problem_from_status(created.status());
    nlohmann::json j = tenants::tenant_to_json(created->tenant);
    j["token"] = created->token;
    HttpResponse r = json_response(201, j);
    r.headers.emplace_back("Location", "/v1/tenants/" + created->tenant.id);
    r.headers.emplace_back("Cache-Control", "no-store");  // the reply holds a secret
    return r;
  });

  router.add("GET", "/v1/tenants", Access::kAdmin, [&registry](const RequestContext&) {
    auto list = registry.list();
    if (!list.ok()) return problem_from_status(list.status());
    nlohmann::json items = nlohmann::json::array();
    for (const auto& t : *list) items.push_back(tenants::tenant_to_json(t));
    return json_response(200, {{"items", items}});
  });

  router.add("GET", "/v1/tenants/{id}", Access::kAdmin, [&registry](const RequestContext& ctx) {
    auto t = registry.get(ctx.param("id"));
    return t.ok() ? json_response(200, tenants::tenant_to_json(*t)) : problem_from_status(t.status());
  });

  router.add("PATCH", "/v1/tenants/{id}", Access::kAdmin, [&registry, on_quotas_changed](const RequestContext& ctx) {
    auto body = tenants::parse_json_object(ctx.request.body);
    if (!body.ok()) return problem_from_status(body.status());
    auto t = registry.update(ctx.param("id"), *body);
    if (!t.ok()) return problem_from_status(t.status());
    if (on_quotas_changed) on_quotas_changed();  // a raised energy budget resumes paused work
    return json_response(200, tenants::tenant_to_json(*t));
  });

  router.add("DELETE", "/v1/tenants/{id}", Access::kAdmin, [&registry](const RequestContext& ctx) {
    Status s = registry.remove(ctx.param("id"));
    if (!s.is_ok()) return problem_from_status(s);
    HttpResponse r;
    r.status = 204;
    return r;
  });

  // Who the token belongs to: lets a client (the dashboard) check a pasted token.
  router.add("GET", "/v1/me", Access::kAnyone, [&registry](const RequestContext& ctx) {
    if (ctx.principal.is_admin()) return json_response(200, {{"kind", "admin"}});
    auto t = registry.get(ctx.principal.tenant_id);
    if (!t.ok()) return problem_from_status(t.status());
    return json_response(200, {{"kind", "tenant"}, {"tenant", tenants::tenant_to_json(*t)}});
  }, Cost::kQuick);
}

}  // namespace mufl::service
