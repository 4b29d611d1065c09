#include "federation/client_registry.h"

#include <nlohmann/json.hpp>

#include "core/ids.h"
#include "core/strings.h"
#include "core/time_format.h"
#include "tenants/json_fields.h"
#include "tenants/token.h"

namespace mufl::federation {
namespace {

constexpr int64_t kMaxSamples = 1'000'000'000'000;  // 10^12: what a count can be, not a limit on data

std::string shape_text(int64_t c, int64_t h, int64_t w) {
  return std::to_string(c) + "x" + std::to_string(h) + "x" + std::to_string(w);
}

// Enrollment's optional {"channels", "height", "width", "max_label"}: what the client's samples
// are. A client whose data cannot train the federation's model is refused before it enrolls.
void check_data_fits(const nlohmann::json& data, const DataSchema& schema, std::vector<FieldError>& errors) {
  tenants::FieldReader r(data, "data.", errors);
  auto c = r.integer("channels", true, 1, 1'000'000);
  auto h = r.integer("height", true, 1, 1'000'000);
  auto w = r.integer("width", true, 1, 1'000'000);
  auto max_label = r.integer("max_label", false, 0, 1'000'000);
  r.finish();
  if (!c || !h || !w) return;
  if (*c != schema.channels || *h != schema.height || *w != schema.width)
    errors.push_back({"data", "the client's samples are " + shape_text(*c, *h, *w) +
                                  ", which does not fit the federation's schema (" +
                                  shape_text(schema.channels, schema.height, schema.width) + ", " +
                                  std::to_string(schema.labels) + " labels)"});
  if (max_label && *max_label >= schema.labels)
    errors.push_back({"data.max_label", "label " + std::to_string(*max_label) +
                                            " does not fit the federation's schema (" +
                                            std::to_string(schema.labels) + " labels)"});
}

}  // namespace

const char* client_state_name(ClientState s) {
  switch (s) {
    case ClientState::kOnline: return "online";
    case ClientState::kOffline: return "offline";
    case ClientState::kRevoked: return "revoked";
  }
  return "unknown";
}

ClientRegistry::ClientRegistry(storage::FederationStore& store, const Clock& clock, RandomSource& rng,
                               ClientOptions options)
    : store_(store), clock_(clock), rng_(rng), options_(options) {}

Result<EnrolledClient> ClientRegistry::enroll(std::string_view enrollment_token, const nlohmann::json& body) {
  if (enrollment_token.empty()) return Status::unauthenticated("enrolling needs the federation's enrollment token");
  auto fed = store_.find_federation_by_enrollment(tenants::sha256_hex(enrollment_token));
  if (fed.status().is_not_found())
    return Status::unauthenticated("the enrollment token is not valid (rotated, or its federation was deleted)");
  if (!fed.ok()) return fed.status();
  const int64_t now = clock_.now_unix_ms();
  if (now >= fed->enrollment_expires_unix_ms)
    return Status::unauthenticated("the enrollment token expired at " + format_rfc3339(fed->enrollment_expires_unix_ms) +
                                   "; ask the federation's owner for a new one");

  std::vector<FieldError> errors;
  tenants::FieldReader r(body, "", errors);
  auto name = r.string("name", true, 1, 64);
  if (name && !is_plain_name(*name)) r.fail("name", "may hold only letters, digits, '.', '_' and '-'");
  auto train = r.integer("train_samples", true, 1, kMaxSamples);
  auto test = r.integer("test_samples", false, 0, kMaxSamples);
  if (const auto* shape = r.object("data", false)) check_data_fits(*shape, fed->schema, errors);
  r.finish();
  if (!errors.empty()) return Status::invalid_argument("the enrollment has invalid fields", std::move(errors));

  Client c;
  c.id = new_id("cli", rng_);
  c.federation_id = fed->id;
  c.name = *name;
  c.train_samples = *train;
  c.test_samples = test.value_or(0);
  c.created_unix_ms = c.last_seen_unix_ms = now;
  std::string token = tenants::generate_token(rng_, tenants::kClientTokenPrefix);
  auto stored = store_.enroll_client(c, tenants::sha256_hex(token));
  if (!stored.ok()) return stored.status();
  seen(stored->id, now);
  return EnrolledClient{std::move(*stored), std::move(*fed), std::move(token)};
}

Result<Principal> ClientRegistry::authenticate(std::string_view token) {
  if (token.empty()) return Status::unauthenticated("a bearer token is required");
  auto client = store_.find_client_by_token(tenants::sha256_hex(token));
  if (client.status().is_not_found())
    return Status::unauthenticated("the client token is not valid (revoked, or its federation was deleted)");
  if (!client.ok()) return client.status();
  seen(client->id, client->last_seen_unix_ms);
  return Principal::client(client->id, client->federation_id);
}

void ClientRegistry::seen(const std::string& client_id, int64_t stored_last_seen) {
  const int64_t now = clock_.now_unix_ms();
  bool persist = false;
  {
    std::lock_guard lock(mu_);
    Seen& s = seen_[client_id];
    s.last_ms = std::max(s.last_ms, now);
    s.persisted_ms = std::max(s.persisted_ms, stored_last_seen);
    if (s.last_ms - s.persisted_ms >= options_.persist_every_ms) {
      s.persisted_ms = s.last_ms;
      persist = true;
    }
  }
  // Best effort: a failed write only makes the stored time older, which the next request fixes.
  if (persist) (void)store_.touch_clients({{client_id, now}});
}

int64_t ClientRegistry::last_seen(const Client& c) const {
  std::lock_guard lock(mu_);
  auto it = seen_.find(c.id);
  return it == seen_.end() ? c.last_seen_unix_ms : std::max(it->second.last_ms, c.last_seen_unix_ms);
}

ClientState ClientRegistry::state(const Client& c) const {
  if (c.revoked_unix_ms) return ClientState::kRevoked;
  std::lock_guard lock(mu_);
  auto it = seen_.find(c.id);
  // Only this process's own sightings count: after a restart a client is online once it calls.
  if (it == seen_.end()) return ClientState::kOffline;
  return clock_.now_unix_ms() - it->second.last_ms <= options_.offline_after_ms ? ClientState::kOnline
                                                                                 : ClientState::kOffline;
}

Result<storage::ClientPage> ClientRegistry::list(const storage::ClientQuery& query) const {
  return store_.list_clients(query);
}

Result<Client> ClientRegistry::revoke(const std::string& federation_id, const std::string& client_id) {
  if (!looks_like_id(client_id, "cli")) return Status::not_found("no client " + client_id);
  return store_.revoke_client(federation_id, client_id, clock_.now_unix_ms());
}

nlohmann::json client_to_json(const Client& c, const ClientRegistry& registry) {
  return {{"id", c.id},
          {"name", c.name},
          {"state", client_state_name(registry.state(c))},
          {"train_samples", c.train_samples},
          {"test_samples", c.test_samples},
          {"last_seen_at", format_rfc3339(registry.last_seen(c))},
          {"enrolled_at", format_rfc3339(c.created_unix_ms)},
          {"revoked_at", c.revoked_unix_ms ? nlohmann::json(format_rfc3339(*c.revoked_unix_ms)) : nlohmann::json()}};
}

}  // namespace mufl::federation
