#include "tenants/activity_service.h"

#include <nlohmann/json.hpp>

#include "core/ids.h"
#include "core/time_format.h"
#include "tenants/activity_spec.h"
#include "tenants/token.h"

namespace mufl::tenants {
namespace {

constexpr size_t kMaxIdempotencyKeyLength = 255;

storage::Scope scope_of(const Principal& who) {
  return who.is_admin() ? storage::Scope::all() : storage::Scope::of(who.tenant_id);
}

bool valid_idempotency_key(const std::string& key) {
  if (key.empty() || key.size() > kMaxIdempotencyKeyLength) return false;
  for (unsigned char c : key)
    if (c < 0x21 || c > 0x7e) return false;  // visible ASCII only
  return true;
}

}  // namespace

ActivityService::ActivityService(storage::Store& store, const Catalog& catalog, const Clock& clock,
                                 RandomSource& rng, ActivityHooks hooks)
    : store_(store), catalog_(catalog), clock_(clock), rng_(rng), hooks_(std::move(hooks)) {}

namespace {

// The tenant's bounds on one activity: its priority (quotas.max_priority) and its cost in client
// updates (quotas.max_client_updates). kInvalidArgument naming the field, as a bad value is.
Status check_quotas(const ActivitySpec& spec, const Quotas& quotas) {
  std::vector<FieldError> errors;
  if (spec.priority > quotas.max_priority)
    errors.push_back({"priority", "must not exceed this tenant's quota max_priority (" +
                                      std::to_string(quotas.max_priority) + "); the admin can raise it"});
  // At most kMaxRounds x kMaxClients x kMaxLocalEpochs = 10^10 (activity_spec.h): no overflow.
  const int64_t updates = spec.rounds * spec.clients_per_round * spec.local_epochs;
  if (updates > quotas.max_client_updates)
    errors.push_back({"rounds", "rounds x clients_per_round x local_epochs = " + std::to_string(updates) +
                                    " client updates, above this tenant's quota max_client_updates (" +
                                    std::to_string(quotas.max_client_updates) + ")"});
  if (errors.empty()) return Status::ok();
  return Status::invalid_argument("the activity exceeds this tenant's quotas", std::move(errors));
}

// Whether the model can train `task` on a federation's samples: dense tasks map back to the
// image through a ×4 decoder (fl/model.h), and parity and magnitude need two labels.
Status task_fits_schema(const std::string& task, const DataSchema& schema) {
  const TaskInfo* info = Catalog::builtin().task(task);
  std::string why;
  if (info && info->kind == "dense" && (schema.height % 4 != 0 || schema.width % 4 != 0))
    why = "task '" + task + "' needs image sides that are multiples of 4; the federation's images are " +
          std::to_string(schema.height) + "x" + std::to_string(schema.width);
  if ((task == "parity" || task == "magnitude") && schema.labels < 2)
    why = "task '" + task + "' needs at least two labels; the federation's data has " + std::to_string(schema.labels);
  if (why.empty()) return Status::ok();
  return Status::invalid_argument("the activity request has invalid fields", {{"task", why}});
}

}  // namespace

Result<storage::SubmitResult> ActivityService::submit(const Principal& who, const nlohmann::json& body,
                                                      const std::optional<std::string>& idempotency_key) {
  if (who.is_admin())
    return Status::permission_denied("activities belong to tenants: submit with a tenant's token");
  const int64_t now = clock_.now_unix_ms();
  auto spec = parse_activity_spec(body, catalog_, now);
  std::optional<storage::IdempotencyKey> idem;
  if (idempotency_key) {
    if (!valid_idempotency_key(*idempotency_key)) {
      std::vector<FieldError> errors =
          spec.ok() ? std::vector<FieldError>{} : spec.status().field_errors();
      errors.push_back({"Idempotency-Key", "must be 1 to 255 visible ASCII characters"});
      return Status::invalid_argument("the activity request has invalid fields", std::move(errors));
    }
    idem = storage::IdempotencyKey{*idempotency_key, sha256_hex(body.dump())};
  }
  if (!spec.ok()) return spec.status();
  if (!spec->federation.empty()) {
    auto schema = hooks_.federation_schema ? hooks_.federation_schema(who, spec->federation)
                                           : Result<DataSchema>(Status::not_found("no federations"));
    if (!schema.ok() && schema.status().code() != Status::Code::kNotFound) return schema.status();
    if (!schema.ok())
      return Status::invalid_argument("the activity request has invalid fields",
                                      {{"federation", "no federation " + spec->federation + " that this tenant may use"}});
    spec->schema = *schema;
    if (Status fits = task_fits_schema(spec->task, *schema); !fits.is_ok()) return fits;
  } else if (hooks_.check_dataset) {
    if (Status s = hooks_.check_dataset(spec->dataset); !s.is_ok())
      return Status::failed_precondition("data set '" + spec->dataset + "' is not available on this server: " +
                                         s.message());
  }

  auto tenant = store_.get_tenant(who.tenant_id);
  if (!tenant.ok()) return tenant.status();
  if (Status s = check_quotas(*spec, tenant->quotas); !s.is_ok()) return s;

  Activity a;
  a.id = new_id("act", rng_);
  a.tenant_id = who.tenant_id;
  a.spec = std::move(*spec);
  a.state = ActivityState::kQueued;
  a.created_unix_ms = a.updated_unix_ms = now;
  auto submitted = store_.submit_activity(a, tenant->quotas.max_active_activities, idem);
  if (submitted.ok() && !submitted->replayed && hooks_.on_submitted) hooks_.on_submitted(submitted->activity);
  return submitted;
}

Result<Activity> ActivityService::get(const Principal& who, const std::string& id) {
  if (!looks_like_id(id, "act")) return Status::not_found("no activity " + id);
  return store_.get_activity(id, scope_of(who));
}

Result<storage::ActivityDetail> ActivityService::get_detail(const Principal& who, const std::string& id) {
  if (!looks_like_id(id, "act")) return Status::not_found("no activity " + id);
  return store_.get_activity_detail(id, scope_of(who));
}

Result<storage::ActivityPage> ActivityService::list(const Principal& who, storage::ActivityQuery query) {
  query.scope = scope_of(who);
  return store_.list_activities(query);
}

Result<Activity> ActivityService::cancel(const Principal& who, const std::string& id) {
  if (!looks_like_id(id, "act")) return Status::not_found("no activity " + id);
  auto a = store_.cancel_activity(id, scope_of(who),
                                  who.is_admin() ? "cancelled by the operator" : "cancelled by the tenant",
                                  clock_.now_unix_ms());
  if (a.ok() && a->state == ActivityState::kCancelled && hooks_.on_cancelled) hooks_.on_cancelled(*a);
  return a;
}

Result<storage::RoundPage> ActivityService::rounds(const Principal& who, const std::string& id,
                                                  storage::RoundQuery query) {
  if (!looks_like_id(id, "act")) return Status::not_found("no activity " + id);
  query.scope = scope_of(who);
  return store_.list_rounds(id, query);
}

Result<storage::StoredFile> ActivityService::model(const Principal& who, const std::string& id,
                                                   std::optional<int64_t> cluster) {
  auto a = get(who, id);
  if (!a.ok()) return a.status();
  auto f = store_.get_file(id, "model");
  if (!f.ok()) return f.status();
  if (!*f)
    return Status::failed_precondition("activity " + id + " is " + to_string(a->state) +
                                       "; a model exists once it has succeeded");
  if (!cluster) return **f;
  if (a->spec.client_clusters <= 1) return Status::not_found("activity " + id + " does not cluster its clients");
  auto c = store_.get_file(id, "model.c" + std::to_string(*cluster));
  if (!c.ok()) return c.status();
  if (!*c)
    return Status::not_found("activity " + id + " has no cluster " + std::to_string(*cluster) +
                             " (GET /v1/activities/" + id + " lists its clusters)");
  return **c;
}

nlohmann::json activity_to_json(const Activity& a, int64_t now_ms) {
  nlohmann::json j = spec_to_json(a.spec);
  j["id"] = a.id;
  j["tenant_id"] = a.tenant_id;
  j["state"] = to_string(a.state);
  j["state_reason"] = a.state_reason;
  j["created_at"] = format_rfc3339(a.created_unix_ms);
  j["updated_at"] = format_rfc3339(a.updated_unix_ms);
  const ActivityProgress& p = a.progress;
  nlohmann::json progress = {{"round", p.rounds_done}, {"rounds", a.spec.rounds}};
  progress["device"] = p.device.empty() ? nlohmann::json() : nlohmann::json(p.device);
  progress["started_at"] = p.started_unix_ms ? nlohmann::json(format_rfc3339(p.started_unix_ms)) : nlohmann::json();
  progress["finished_at"] = p.finished_unix_ms ? nlohmann::json(format_rfc3339(p.finished_unix_ms)) : nlohmann::json();
  const int64_t end = p.finished_unix_ms ? p.finished_unix_ms : now_ms;
  progress["elapsed_seconds"] = p.started_unix_ms ? static_cast<double>(end - p.started_unix_ms) / 1000.0 : 0.0;
  auto latest = nlohmann::json::parse(p.last_round_json, nullptr, /*allow_exceptions=*/false);
  progress["latest"] = latest.is_discarded() ? nlohmann::json() : latest;
  // Client clustering: the clusters as the latest round left them ([] until the clustering round).
  if (a.spec.client_clusters > 1) {
    j["clusters"] = latest.is_object() && latest.contains("clusters") ? latest["clusters"] : nlohmann::json::array();
    // Once it has succeeded, each cluster's own model (the plain model_url is the largest's).
    if (p.has_model)
      for (size_t c = 0; c < j["clusters"].size(); ++c)
        j["clusters"][c]["model_url"] = "/v1/activities/" + a.id + "/model?cluster=" + std::to_string(c);
  }
  progress["model_url"] = p.has_model ? nlohmann::json("/v1/activities/" + a.id + "/model") : nlohmann::json();
  j["progress"] = std::move(progress);
  return j;
}

}  // namespace mufl::tenants
