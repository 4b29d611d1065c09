#pragma once
// Tenant: a team that submits activities with its own bearer token.
#include <cstdint>
#include <optional>
#include <string>

namespace mufl {

struct Quotas {
  // How many activities may be active (not succeeded, failed or cancelled) at once.
  int64_t max_active_activities = 100;
  // Joules the tenant's work may use in all (its shares in the energy ledger). Once used up,
  // its activities pause until the budget is raised. nullopt: unlimited.
  std::optional<double> energy_budget_joules;
  // How many devices the tenant's activities may occupy at once (a group on a device counts
  // for every tenant with a live activity in it). nullopt: no limit.
  std::optional<int64_t> max_devices;
  // The tenant's weight in the `fair` placement policy (weighted DRF): its dominant share is
  // divided by it, so under contention a tenant of weight 2 gets about twice the devices of a
  // tenant of weight 1. In (0, 1000]; default 1.
  double fair_share_weight = 1;
  // The highest `priority` the tenant's activities may ask for (the fifo policy runs higher
  // priorities first, so an unbounded one lets a tenant go before every other). In [0, 1000];
  // default 0: a tenant may lower its own work's priority, and only the admin lets it raise it.
  int64_t max_priority = 0;
  // The most client updates one activity may cost: rounds × clients_per_round × local_epochs.
  // Default 1,000,000 (e.g. 1,000 rounds of 100 clients with 10 local epochs each).
  int64_t max_client_updates = 1'000'000;
  bool operator==(const Quotas&) const = default;
};

struct Tenant {
  std::string id;    // "ten_…"
  std::string name;  // unique among live tenants, 1–64 of [A-Za-z0-9._-]
  Quotas quotas;
  double energy_used_joules = 0;  // the tenant's shares of every work unit so far (energy ledger)
  int64_t created_unix_ms = 0;
  int64_t updated_unix_ms = 0;
};

// Who is calling: the operator (admin token), one tenant, or one enrolled federation client
// (docs/clients.md). Exactly one of them.
struct Principal {
  enum class Kind { kAdmin, kTenant, kClient };
  Kind kind = Kind::kTenant;
  std::string tenant_id;      // kTenant only
  std::string client_id;      // kClient only
  std::string federation_id;  // kClient only: the federation the client is enrolled in
  bool is_admin() const { return kind == Kind::kAdmin; }
  bool is_client() const { return kind == Kind::kClient; }
  static Principal admin() { return Principal{Kind::kAdmin, {}, {}, {}}; }
  static Principal tenant(std::string id) { return Principal{Kind::kTenant, std::move(id), {}, {}}; }
  static Principal client(std::string id, std::string federation) {
    return Principal{Kind::kClient, {}, std::move(id), std::move(federation)};
  }
};

}  // namespace mufl
