// /v1/devices: the devices mufld trains on, with their state, work unit, power and energy;
// POST /v1/devices/{name}/drain and /resume for the admin. A tenant sees the group a device
// runs only when the group has (or had) one of its activities, as in /v1/groups.
#include <nlohmann/json.hpp>

#include "scheduler/energy/carbon_intensity.h"
#include "service/json_response.h"
#include "service/problem.h"
#include "service/routes.h"
#include "tenants/json_fields.h"

namespace mufl::service {
namespace {

nlohmann::json device_json(const scheduler::DeviceStatus& d, const Principal& who, storage::Store& store) {
  nlohmann::json unit;
  if (d.unit) {
    const bool visible =
        who.is_admin() || store.get_group(d.unit->group_id, storage::Scope::of(who.tenant_id)).ok();
    if (visible)
      unit = {{"group_id", d.unit->group_id},
              {"round", d.unit->round > 0 ? nlohmann::json(d.unit->round) : nlohmann::json()}};
  }
  nlohmann::json limits;
  if (d.power_limits)
    limits = {{"min", d.power_limits->min_watts}, {"max", d.power_limits->max_watts},
              {"current", d.power_limits->current_watts}};
  return {{"name", d.name},
          {"kind", d.kind},
          {"host", d.host.empty() ? nlohmann::json() : nlohmann::json(d.host)},
          {"gres", d.gres.empty() ? nlohmann::json() : nlohmann::json(d.gres)},
          {"state", scheduler::to_string(d.state)},
          {"work_unit", unit},
          {"power_watts", d.power_watts},
          {"energy_joules", d.energy_joules},
          {"meter", d.meter},
          {"profile", d.profile.empty() ? nlohmann::json() : nlohmann::json(d.profile)},
          {"power_limit_watts", limits}};
}

// The placement policy in force with the options it reads (docs/scheduling.md).
nlohmann::json policy_json(const scheduler::Dispatcher* d) {
  if (!d) return nullptr;
  const scheduler::DispatchOptions& o = d->options();
  nlohmann::json j = {{"name", d->name()}, {"prior_round_seconds", o.prior_round_seconds}};
  if (d->name() == "energy") j["eta"] = o.eta;
  if (d->name() == "carbon") {
    j["carbon_horizon_hours"] = o.carbon_horizon_hours;
    j["carbon_source"] = o.carbon ? o.carbon->source() : "";
  }
  return j;
}

// Drain and resume take no body, or an empty JSON object.
Status check_empty_body(const HttpRequest& req) {
  if (req.body.empty()) return Status::ok();
  auto body = tenants::parse_json_object(req.body);
  if (!body.ok()) return body.status();
  std::vector<FieldError> errors;
  tenants::FieldReader r(*body, "", errors);
  r.finish();
  if (!errors.empty()) return Status::invalid_argument("this route takes no fields", std::move(errors));
  return Status::ok();
}

}  // namespace

void add_device_routes(Router& router, storage::Store& store, scheduler::DeviceInventory* inventory,
                       const Clock& clock, const scheduler::Dispatcher* dispatcher) {
  router.add("GET", "/v1/devices", Access::kAnyone, [&store, inventory, dispatcher](const RequestContext& ctx) {
    std::vector<FieldError> errors;
    for (const auto& [key, value] : ctx.request.query) errors.push_back({key, "unknown query parameter; this route takes none"});
    if (!errors.empty())
      return problem_from_status(Status::invalid_argument("the query has invalid parameters", std::move(errors)));
    nlohmann::json items = nlohmann::json::array();
    if (inventory)
      for (const auto& d : inventory->list()) items.push_back(device_json(d, ctx.principal, store));
    return json_response(200, {{"items", items}, {"policy", policy_json(dispatcher)}});
  });

  for (const bool drain : {true, false}) {
    router.add("POST", drain ? "/v1/devices/{name}/drain" : "/v1/devices/{name}/resume", Access::kAdmin,
               [&store, &clock, inventory, drain](const RequestContext& ctx) {
                 const std::string& name = ctx.param("name");
                 if (!inventory || !inventory->get(name).ok())
                   return problem_from_status(Status::not_found("no device " + name));
                 if (Status s = check_empty_body(ctx.request); !s.is_ok()) return problem_from_status(s);
                 // Stored first: a restart keeps what the admin was told.
                 if (Status s = store.set_device_drained(name, drain, clock.now_unix_ms()); !s.is_ok())
                   return problem_from_status(s);
                 auto d = drain ? inventory->drain(name) : inventory->resume(name);
                 if (!d.ok()) return problem_from_status(d.status());
                 return json_response(200, device_json(*d, ctx.principal, store));
               });
  }
}

}  // namespace mufl::service
