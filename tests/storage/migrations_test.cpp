#include "storage/migrations.h"

#include <catch2/catch.hpp>

#include "storage/sqlite_db.h"
#include "storage/sqlite_store.h"
#include "tests/storage/store_fixtures.h"
#include "tests/support/temp_dir.h"

using namespace mufl;
using namespace mufl::storage;

TEST_CASE("migrations: numbered from 1 without gaps") {
  const auto& all = all_migrations();
  REQUIRE_FALSE(all.empty());
  for (size_t i = 0; i < all.size(); ++i) CHECK(all[i].version == static_cast<int>(i + 1));
  CHECK(latest_schema_version() == all.back().version);
}

TEST_CASE("migrations: applied once, and a second run is a no-op") {
  auto conn = Connection::open(":memory:", false, "FULL", 1000);
  REQUIRE(conn.ok());
  CHECK(current_schema_version(**conn) == 0);
  REQUIRE(migrate(**conn, 1).is_ok());
  CHECK(current_schema_version(**conn) == latest_schema_version());
  REQUIRE(migrate(**conn, 2).is_ok());
  auto st = (*conn)->prepare("SELECT COUNT(*) FROM schema_migrations");
  REQUIRE(st.ok());
  REQUIRE(*(*st)->step());
  CHECK((*st)->column_int64(0) == latest_schema_version());
}

TEST_CASE("migrations: a database from a newer mufld is refused, not touched") {
  testing::TempDir dir;
  std::string path = dir.file("newer.db");
  {
    auto conn = Connection::open(path, false, "FULL", 1000);
    REQUIRE(conn.ok());
    REQUIRE(migrate(**conn, 1).is_ok());
    std::string sql = "INSERT INTO schema_migrations(version, name, applied_ms) VALUES (" +
                      std::to_string(latest_schema_version() + 1) + ", 'from the future', 0)";
    REQUIRE((*conn)->exec(sql).is_ok());
  }
  ManualClock clock;
  StoreOptions o;
  o.path = path;
  auto store = SqliteStore::open(o, clock);
  REQUIRE_FALSE(store.ok());
  CHECK(store.status().code() == Status::Code::kFailedPrecondition);
}

TEST_CASE("migrations: from v2, an ungrouped training activity is queued again and its checkpoint dropped") {
  testing::TempDir dir;
  std::string path = dir.file("v2.db");
  {
    auto conn = Connection::open(path, false, "FULL", 1000);
    REQUIRE(conn.ok());
    Connection& c = **conn;
    REQUIRE(c.exec("CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL, "
                   "applied_ms INTEGER NOT NULL)")
                .is_ok());
    for (const Migration& m : all_migrations()) {
      if (m.version > 2) break;
      REQUIRE(c.exec(m.sql).is_ok());
      REQUIRE(c.exec("INSERT INTO schema_migrations VALUES (" + std::to_string(m.version) + ", 'v', 0)").is_ok());
    }
    REQUIRE(current_schema_version(c) == 2);
    const std::string spec =
        R"({"name":"j","dataset":"synthetic","task":"class","rounds":5,"clients":32,"clients_per_round":5,)"
        R"("min_clients":1,"local_epochs":1,"batch_size":32,"learning_rate":0.05,"prox_mu":0.0,)"
        R"("aggregator":"fedavg","partition":{"kind":"iid"},"seed":0,"merge":true,"priority":0})";
    REQUIRE(c.exec("INSERT INTO tenants VALUES ('ten_a', 'alpha', 'h', 10, 1, 1, NULL)").is_ok());
    REQUIRE(c.exec("INSERT INTO activities(id, tenant_id, name, state, spec, created_ms, updated_ms, rounds_done, "
                   "device, started_ms, last_round) VALUES "
                   "('act_run', 'ten_a', 'j', 'training', '" + spec + "', 1, 1, 2, 'cpu:0', 5, '{\"round\":2}'), "
                   "('act_done', 'ten_a', 'j', 'succeeded', '" + spec + "', 2, 2, 5, '', 5, '{\"round\":5}')")
                .is_ok());
    REQUIRE(c.exec("INSERT INTO activity_rounds VALUES ('act_run', 1, '{}', 3), ('act_run', 2, '{}', 4), "
                   "('act_done', 1, '{}', 3)")
                .is_ok());
    REQUIRE(c.exec("INSERT INTO activity_files VALUES ('act_run', 'checkpoint', 2, '/c', 'sha', 1, 4), "
                   "('act_done', 'model', 5, '/m', 'sha', 1, 4)")
                .is_ok());
  }
  ManualClock clock;
  auto store = open_store(path, clock);
  REQUIRE(store->check_ready().is_ok());
  auto run = store->get_activity("act_run", Scope::all());
  REQUIRE(run.ok());
  CHECK(run->state == ActivityState::kQueued);
  CHECK(run->progress.device.empty());
  CHECK(run->progress.rounds_done == 0);
  CHECK(run->progress.last_round_json.empty());
  CHECK(store->list_rounds("act_run", {Scope::all()})->items.empty());
  CHECK_FALSE(store->get_file("act_run", "checkpoint")->has_value());
  auto queued = store->list_ungrouped_queued();
  REQUIRE(queued.ok());
  REQUIRE(queued->size() == 1);
  CHECK((*queued)[0].id == "act_run");
  CHECK(store->activity_groups("act_run")->empty());
  // A finished activity keeps everything.
  auto done = store->get_activity("act_done", Scope::all());
  REQUIRE(done.ok());
  CHECK(done->state == ActivityState::kSucceeded);
  CHECK(done->progress.rounds_done == 5);
  CHECK(done->progress.has_model);
  CHECK(store->list_rounds("act_done", {Scope::all()})->items.size() == 1);
}

TEST_CASE("migrations: from v7 the energy ledger keeps its units, shares and ids, and takes abandoned ones") {
  testing::TempDir dir;
  std::string path = dir.file("v7.db");
  {
    auto conn = Connection::open(path, false, "FULL", 1000);
    REQUIRE(conn.ok());
    Connection& c = **conn;
    REQUIRE(c.exec("PRAGMA foreign_keys=ON").is_ok());
    REQUIRE(c.exec("CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL, "
                   "applied_ms INTEGER NOT NULL)")
                .is_ok());
    for (const Migration& m : all_migrations()) {
      if (m.version > 7) break;
      REQUIRE(c.exec(m.sql).is_ok());
      REQUIRE(c.exec("INSERT INTO schema_migrations VALUES (" + std::to_string(m.version) + ", 'v', 0)").is_ok());
    }
    REQUIRE(c.exec("INSERT INTO tenants(id, name, token_hash, max_active_activities, created_ms, updated_ms) "
                   "VALUES ('ten_a', 'alpha', 'h', 10, 1, 1)")
                .is_ok());
    REQUIRE(c.exec("INSERT INTO activities(id, tenant_id, name, state, spec, created_ms, updated_ms) "
                   "VALUES ('act_1', 'ten_a', 'j', 'succeeded', '{}', 1, 1)")
                .is_ok());
    REQUIRE(c.exec("INSERT INTO groups(id, parent_id, phase, policy, compat_key, config, consolidation_rounds, "
                   "round, heads, job_round_offset, checkpoint_path, checkpoint_sha256, device, split, reason, "
                   "created_ms, updated_ms) VALUES ('grp_1', '', 'done', 'mufl', 'k', '{}', 0, 2, '[]', 0, '', '', "
                   "'', '', '', 1, 1)")
                .is_ok());
    REQUIRE(c.exec("INSERT INTO energy_ledger(id, group_id, round, device, meter, start_ms, end_ms, seconds, joules, "
                   "carbon_g_per_kwh, grams_co2e) VALUES (5, 'grp_1', 1, 'cpu:0', 'model', 0, 10, 1, 100, 475, 1), "
                   "(9, 'grp_1', 2, 'cpu:0', 'model', 10, 20, 1, 300, 475, 3)")
                .is_ok());
    REQUIRE(c.exec("INSERT INTO energy_attribution VALUES (5, 'act_1', 'ten_a', 1, 100, 1, 1, 10), "
                   "(9, 'act_1', 'ten_a', 1, 300, 1, 3, 20)")
                .is_ok());
  }
  ManualClock clock;
  auto store = open_store(path, clock);
  auto units = store->list_energy_units("grp_1");
  REQUIRE(units.ok());
  REQUIRE(units->size() == 2);
  CHECK((*units)[1].joules == 300);
  CHECK((*units)[1].abandoned.empty());
  REQUIRE((*units)[1].shares.size() == 1);
  CHECK((*units)[1].shares[0].joules == 300);
  auto energy = store->activity_energy("act_1");
  REQUIRE(energy.ok());
  CHECK(energy->joules == 400);
  CHECK(energy->units == 2);
  // Round 2 again, abandoned: beside the recorded one, with an id after the copied ones.
  EnergyUnit u = (*units)[1];
  u.abandoned = "cancelled";
  u.joules = 7;
  u.shares[0].joules = 7;
  REQUIRE(store->record_abandoned_unit(u).is_ok());
  CHECK(store->list_energy_units("grp_1")->size() == 3);
  CHECK(store->activity_energy("act_1")->abandoned_units == 1);
  // The attribution still points at the ledger: a share of a unit that is not there is refused.
  auto conn = Connection::open(path, false, "FULL", 1000);
  REQUIRE(conn.ok());
  REQUIRE((*conn)->exec("PRAGMA foreign_keys=ON").is_ok());
  CHECK_FALSE((*conn)->exec("INSERT INTO energy_attribution VALUES (999, 'act_1', 'ten_a', 1, 1, 1, 1, 1)").is_ok());
  auto st = (*conn)->prepare("SELECT max(id) FROM energy_ledger");
  REQUIRE(st.ok());
  REQUIRE(*(*st)->step());
  CHECK((*st)->column_int64(0) == 10);
}
