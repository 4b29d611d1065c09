#pragma once
// ClientRegistry: the mufl-client processes of federations (docs/clients.md). Enrolls a client
// with its federation's enrollment token, turns a client token into a Principal, knows when
// each client was last seen (its long poll is the heartbeat) and so whether it is online, and
// revokes clients.
//
// Last seen is kept in memory on every request and written to the store at most once per
// `persist_every_ms` per client, so a thousand polling clients do not cost a write each poll;
// after a restart a client is offline until it calls again.
//
// Thread safety: all methods may be called from any thread. Blocking: calls the Store.
#include <cstdint>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>

#include <nlohmann/json_fwd.hpp>

#include "core/clock.h"
#include "core/federation.h"
#include "core/random.h"
#include "core/result.h"
#include "core/tenant.h"
#include "storage/store.h"

namespace mufl::federation {

struct ClientOptions {
  // A client is `offline` after this long without a request. The long poll waits at most 60 s,
  // so a polling client is never silent for longer than that plus its round trip.
  int64_t offline_after_ms = 90'000;
  // How often a client's last-seen time is written to the store (at most).
  int64_t persist_every_ms = 30'000;
};

struct EnrolledClient {
  Client client;
  Federation federation;
  std::string token;  // the only time the clear token exists outside the client
};

enum class ClientState { kOnline, kOffline, kRevoked };
const char* client_state_name(ClientState s);

class ClientRegistry {
 public:
  ClientRegistry(storage::FederationStore& store, const Clock& clock, RandomSource& rng, ClientOptions options = {});

  // POST /v1/clients with the enrollment token as bearer and body {"name", "train_samples",
  // "test_samples", "data": {"channels", "height", "width", "max_label"}} ("data" optional:
  // when given, samples that do not fit the federation's schema are refused, kInvalidArgument). kUnauthenticated when the token is not a live federation's enrollment
  // token or has expired (saying so); kInvalidArgument naming each bad field; kAlreadyExists
  // when an enrolled client of the federation has the name.
  Result<EnrolledClient> enroll(std::string_view enrollment_token, const nlohmann::json& body);

  // The principal a client token stands for, and the client is seen now. kUnauthenticated when
  // the token is unknown, revoked, or its federation (or the tenant owning it) was deleted.
  // Not cached: one indexed read per request, so a revocation works at the next request.
  Result<Principal> authenticate(std::string_view token);

  // A client's state now.
  ClientState state(const Client& c) const;
  // When the client was last seen: what this process saw, else the stored time.
  int64_t last_seen(const Client& c) const;

  // A page of the federation's clients. No access check: the caller checks the federation.
  Result<storage::ClientPage> list(const storage::ClientQuery& query) const;
  // Revokes a client of the federation. kNotFound.
  Result<Client> revoke(const std::string& federation_id, const std::string& client_id);

 private:
  void seen(const std::string& client_id, int64_t stored_last_seen);

  storage::FederationStore& store_;
  const Clock& clock_;
  RandomSource& rng_;
  ClientOptions options_;

  mutable std::mutex mu_;
  struct Seen {
    int64_t last_ms = 0;       // the newest request
    int64_t persisted_ms = 0;  // what the store holds
  };
  std::unordered_map<std::string, Seen> seen_;  // client id → when
};

// {"id", "name", "state", "train_samples", "test_samples", "last_seen_at", "enrolled_at",
// "revoked_at"}; times in RFC 3339, revoked_at null until revoked.
nlohmann::json client_to_json(const Client& c, const ClientRegistry& registry);

}  // namespace mufl::federation
