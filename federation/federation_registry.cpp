#include "federation/federation_registry.h"

#include <algorithm>

#include <nlohmann/json.hpp>

#include "core/ids.h"
#include "core/strings.h"
#include "core/time_format.h"
#include "tenants/json_fields.h"
#include "tenants/token.h"

namespace mufl::federation {
namespace {

constexpr size_t kMaxListedTenants = 1000;

std::optional<std::string> read_name(tenants::FieldReader& r, bool required) {
  auto name = r.string("name", required, 1, 64);
  if (name && !is_plain_name(*name)) {
    r.fail("name", "may hold only letters, digits, '.', '_' and '-'");
    return std::nullopt;
  }
  return name;
}

std::optional<DataSchema> read_schema(const nlohmann::json& obj, std::vector<FieldError>& errors) {
  tenants::FieldReader r(obj, "schema.", errors);
  auto channels = r.integer("channels", true, 1, kMaxChannels);
  auto height = r.integer("height", true, kMinSide, kMaxSide);
  auto width = r.integer("width", true, kMinSide, kMaxSide);
  auto labels = r.integer("labels", true, 1, kMaxLabels);
  r.finish();
  if (!channels || !height || !width || !labels) return std::nullopt;
  return DataSchema{*channels, *height, *width, *labels};
}

// The tenants list without duplicates and without the owner (who needs no listing).
std::vector<std::string> clean_tenants(std::vector<std::string> tenants, const std::string& owner) {
  std::sort(tenants.begin(), tenants.end());
  tenants.erase(std::unique(tenants.begin(), tenants.end()), tenants.end());
  std::erase(tenants, owner);
  return tenants;
}

// A store's kNotFound about a listed tenant is the caller's mistake: a 400 naming the field.
Status tenants_error(const Status& s) {
  if (s.is_not_found() && s.message().rfind("no tenant ", 0) == 0)
    return Status::invalid_argument("the federation request has invalid fields", {{"tenants", s.message()}});
  return s;
}

int64_t read_ttl(tenants::FieldReader& r) {
  auto ttl = r.integer("enrollment_ttl_seconds", false, kMinEnrollmentTtlSeconds, kMaxEnrollmentTtlSeconds);
  return ttl.value_or(kDefaultEnrollmentTtlSeconds);
}

}  // namespace

bool owns(const Principal& who, const Federation& f) {
  return who.is_admin() || (!who.is_client() && who.tenant_id == f.owner_tenant_id && !f.owner_tenant_id.empty());
}

FederationRegistry::FederationRegistry(storage::FederationStore& store, const Clock& clock, RandomSource& rng)
    : store_(store), clock_(clock), rng_(rng) {}

Result<FederationWithToken> FederationRegistry::create(const Principal& who, const nlohmann::json& body) {
  std::vector<FieldError> errors;
  tenants::FieldReader r(body, "", errors);
  auto name = read_name(r, true);
  std::optional<DataSchema> schema;
  if (const auto* s = r.object("schema", true)) schema = read_schema(*s, errors);
  auto listed = r.string_list("tenants", false, kMaxListedTenants, 64);
  int64_t ttl = read_ttl(r);
  r.finish();
  if (!errors.empty()) return Status::invalid_argument("the federation request has invalid fields", std::move(errors));

  Federation f;
  f.id = new_id("fed", rng_);
  f.name = *name;
  f.owner_tenant_id = who.is_admin() ? "" : who.tenant_id;
  f.schema = *schema;
  f.tenants = clean_tenants(listed.value_or(std::vector<std::string>{}), f.owner_tenant_id);
  f.created_unix_ms = f.updated_unix_ms = clock_.now_unix_ms();
  f.enrollment_expires_unix_ms = f.created_unix_ms + ttl * 1000;
  std::string token = tenants::generate_token(rng_, tenants::kEnrollmentTokenPrefix);
  auto stored = store_.create_federation(f, tenants::sha256_hex(token));
  if (!stored.ok()) return tenants_error(stored.status());
  return FederationWithToken{std::move(*stored), std::move(token)};
}

Result<std::vector<Federation>> FederationRegistry::list(const Principal& who) const {
  return store_.list_federations(who.is_admin() ? storage::Scope::all() : storage::Scope::of(who.tenant_id));
}

Result<Federation> FederationRegistry::get(const Principal& who, const std::string& id) const {
  if (!looks_like_id(id, "fed")) return Status::not_found("no federation " + id);
  return store_.get_federation(id, who.is_admin() ? storage::Scope::all() : storage::Scope::of(who.tenant_id));
}

Result<Federation> FederationRegistry::get_owned(const Principal& who, const std::string& id) const {
  auto f = get(who, id);
  if (!f.ok()) return f;
  if (!owns(who, *f)) return Status::permission_denied("only the federation's owner or the admin may do this");
  return f;
}

Result<Federation> FederationRegistry::update(const Principal& who, const std::string& id, const nlohmann::json& body) {
  auto current = get_owned(who, id);
  if (!current.ok()) return current;
  std::vector<FieldError> errors;
  tenants::FieldReader r(body, "", errors);
  auto name = read_name(r, false);
  auto listed = r.string_list("tenants", false, kMaxListedTenants, 64);
  if (body.contains("schema")) {
    (void)r.object("schema", false);  // known, so finish() does not call it unknown too
    r.fail("schema", "cannot change: the clients' data has the schema it has; create another federation");
  }
  r.finish();
  if (!errors.empty()) return Status::invalid_argument("the federation update has invalid fields", std::move(errors));
  auto tenants = listed ? clean_tenants(*listed, current->owner_tenant_id) : current->tenants;
  auto updated = store_.update_federation(id, name.value_or(current->name), tenants, clock_.now_unix_ms());
  if (!updated.ok()) return tenants_error(updated.status());
  return updated;
}

Result<FederationWithToken> FederationRegistry::rotate_enrollment_token(const Principal& who, const std::string& id,
                                                                        const nlohmann::json& body) {
  auto current = get_owned(who, id);
  if (!current.ok()) return current.status();
  std::vector<FieldError> errors;
  tenants::FieldReader r(body, "", errors);
  int64_t ttl = read_ttl(r);
  r.finish();
  if (!errors.empty()) return Status::invalid_argument("the rotation request has invalid fields", std::move(errors));
  const int64_t now = clock_.now_unix_ms();
  std::string token = tenants::generate_token(rng_, tenants::kEnrollmentTokenPrefix);
  auto rotated = store_.rotate_enrollment_token(id, tenants::sha256_hex(token), now + ttl * 1000, now);
  if (!rotated.ok()) return rotated.status();
  return FederationWithToken{std::move(*rotated), std::move(token)};
}

Status FederationRegistry::remove(const Principal& who, const std::string& id) {
  auto current = get_owned(who, id);
  if (!current.ok()) return current.status();
  return store_.delete_federation(id, clock_.now_unix_ms());
}

nlohmann::json schema_to_json(const DataSchema& s) {
  return {{"channels", s.channels}, {"height", s.height}, {"width", s.width}, {"labels", s.labels}};
}

nlohmann::json federation_summary_json(const Federation& f) {
  return {{"id", f.id}, {"name", f.name}, {"schema", schema_to_json(f.schema)}};
}

nlohmann::json federation_to_json(const Federation& f) {
  nlohmann::json j = federation_summary_json(f);
  j["owner"] = f.owner_tenant_id.empty() ? nlohmann::json() : nlohmann::json(f.owner_tenant_id);
  j["tenants"] = f.tenants;
  j["enrollment_expires_at"] = format_rfc3339(f.enrollment_expires_unix_ms);
  j["created_at"] = format_rfc3339(f.created_unix_ms);
  j["updated_at"] = format_rfc3339(f.updated_unix_ms);
  return j;
}

}  // namespace mufl::federation
