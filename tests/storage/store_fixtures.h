#pragma once
// What the storage tests share: opening a SqliteStore on a file (mufld's defaults; the test
// stops at once when the store cannot be opened) and a tenant row to create.
#include <catch2/catch.hpp>
#include <memory>
#include <string>

#include "core/activity.h"
#include "core/clock.h"
#include "core/federation.h"
#include "core/tenant.h"
#include "storage/sqlite_store.h"

namespace mufl::storage {

inline std::unique_ptr<SqliteStore> open_store(const std::string& path, const Clock& clock) {
  StoreOptions o;
  o.path = path;
  auto s = SqliteStore::open(o, clock);
  REQUIRE(s.ok());
  return std::move(*s);
}

// A federation of `owner` (schema 3×32×32, 10 labels), ready for create_federation.
inline Federation make_federation(const std::string& id, const std::string& owner, const std::string& name) {
  Federation f;
  f.id = id;
  f.owner_tenant_id = owner;
  f.name = name;
  f.schema = {3, 32, 32, 10};
  f.enrollment_expires_unix_ms = 9000;
  f.created_unix_ms = f.updated_unix_ms = 1000;
  return f;
}

// A client of federation `fed` holding 500 training and 50 test samples, ready for enroll_client.
inline Client make_client(const std::string& id, const std::string& fed, const std::string& name) {
  Client c;
  c.id = id;
  c.federation_id = fed;
  c.name = name;
  c.train_samples = 500;
  c.test_samples = 50;
  c.created_unix_ms = c.last_seen_unix_ms = 2000;
  return c;
}

inline Tenant make_tenant(const std::string& id, const std::string& name, int64_t max_active = 100) {
  Tenant t;
  t.id = id;
  t.name = name;
  t.quotas.max_active_activities = max_active;
  t.created_unix_ms = t.updated_unix_ms = 1000;
  return t;
}

// A synthetic `class` activity of `tenant` with `rounds` rounds, created at `now_ms`, ready for
// submit_activity.
inline Activity queued_activity(const std::string& id, const std::string& tenant, int64_t rounds = 3,
                                int64_t now_ms = 2000) {
  Activity a;
  a.id = id;
  a.tenant_id = tenant;
  a.spec.name = "job " + id;
  a.spec.dataset = "synthetic";
  a.spec.task = "class";
  a.spec.rounds = rounds;
  a.created_unix_ms = a.updated_unix_ms = now_ms;
  return a;
}

}  // namespace mufl::storage
