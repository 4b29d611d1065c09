#pragma once
// What the storage tests share: opening a SqliteStore on a file (mufld's defaults; the test
// stops at once when the store cannot be opened) and a tenant row to create.
#include <catch2/catch.hpp>
#include <memory>
#include <string>

#include "core/activity.h"
#include "core/clock.h"
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
