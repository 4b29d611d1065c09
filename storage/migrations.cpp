#include "storage/migrations.h"

#include "storage/sqlite_db.h"
#include "storage/transaction.h"

namespace mufl::storage {

const std::vector<Migration>& all_migrations() {
  static const std::vector<Migration> migrations = {
      {1, "tenants and activities", R"sql(
CREATE TABLE tenants (
  id                    TEXT PRIMARY KEY,
  name                  TEXT NOT NULL,
  token_hash            TEXT NOT NULL UNIQUE,   -- hex SHA-256 of the bearer token
  max_active_activities INTEGER NOT NULL,
  created_ms            INTEGER NOT NULL,
  updated_ms            INTEGER NOT NULL,
  deleted_ms            INTEGER                 -- set when deleted; the row stays for history
);
CREATE UNIQUE INDEX tenants_live_name ON tenants(name) WHERE deleted_ms IS NULL;

CREATE TABLE activities (
  seq          INTEGER PRIMARY KEY AUTOINCREMENT,  -- creation order; pagination cursor
  id           TEXT NOT NULL UNIQUE,
  tenant_id    TEXT NOT NULL REFERENCES tenants(id),
  name         TEXT NOT NULL,
  state        TEXT NOT NULL CHECK (state IN ('queued','consolidating','splitting','training',
                                              'succeeded','failed','cancelled')),
  state_reason TEXT NOT NULL DEFAULT '',
  spec         TEXT NOT NULL,                      -- JSON, every field filled in
  created_ms   INTEGER NOT NULL,
  updated_ms   INTEGER NOT NULL
);
CREATE INDEX activities_tenant_seq ON activities(tenant_id, seq);
CREATE INDEX activities_state_seq ON activities(state, seq);
CREATE INDEX activities_tenant_state ON activities(tenant_id, state);

CREATE TABLE idempotency_keys (
  tenant_id    TEXT NOT NULL REFERENCES tenants(id),
  key          TEXT NOT NULL,
  request_hash TEXT NOT NULL,                      -- hex SHA-256 of the canonical request body
  activity_id  TEXT NOT NULL REFERENCES activities(id),
  created_ms   INTEGER NOT NULL,
  PRIMARY KEY (tenant_id, key)
);
)sql"},
      {2, "training progress, rounds, checkpoints and models", R"sql(
ALTER TABLE activities ADD COLUMN rounds_done INTEGER NOT NULL DEFAULT 0;
ALTER TABLE activities ADD COLUMN device      TEXT NOT NULL DEFAULT '';
ALTER TABLE activities ADD COLUMN started_ms  INTEGER NOT NULL DEFAULT 0;
ALTER TABLE activities ADD COLUMN finished_ms INTEGER NOT NULL DEFAULT 0;
ALTER TABLE activities ADD COLUMN last_round  TEXT NOT NULL DEFAULT '';   -- JSON of the latest round

-- One row per finished round: the history GET /v1/activities/{id}/rounds serves.
CREATE TABLE activity_rounds (
  activity_id TEXT NOT NULL REFERENCES activities(id),
  round       INTEGER NOT NULL,                 -- 1-based
  report      TEXT NOT NULL,                    -- JSON
  created_ms  INTEGER NOT NULL,
  PRIMARY KEY (activity_id, round)
);

-- Files that belong to an activity: its latest checkpoint and its final model. The file is
-- written (temp file, fsync, rename) before its row, so a row always names a complete file.
CREATE TABLE activity_files (
  activity_id TEXT NOT NULL REFERENCES activities(id),
  kind        TEXT NOT NULL CHECK (kind IN ('checkpoint', 'model')),
  round       INTEGER NOT NULL,                 -- rounds done when it was written
  path        TEXT NOT NULL,
  sha256      TEXT NOT NULL,                    -- hex, checked before the file is used
  bytes       INTEGER NOT NULL,
  created_ms  INTEGER NOT NULL,
  PRIMARY KEY (activity_id, kind)
);
)sql"},
      {3, "groups: merged training, members, affinity", R"sql(
-- A group trains one model for its member activities (core/group.h). seq is the creation
-- order and the pagination cursor, as for activities.
CREATE TABLE groups (
  seq                  INTEGER PRIMARY KEY AUTOINCREMENT,
  id                   TEXT NOT NULL UNIQUE,
  parent_id            TEXT NOT NULL DEFAULT '',   -- the group it was split from; '' for a merge
  phase                TEXT NOT NULL CHECK (phase IN ('consolidating','training','split','done','failed')),
  policy               TEXT NOT NULL,
  compat_key           TEXT NOT NULL,
  config               TEXT NOT NULL,              -- JSON object: the shared training settings
  consolidation_rounds INTEGER NOT NULL,
  round                INTEGER NOT NULL DEFAULT 0, -- lineage rounds done
  heads                TEXT NOT NULL DEFAULT '[]', -- JSON [{"key","task"}] of the checkpointed job
  job_round_offset     INTEGER NOT NULL DEFAULT 0,
  checkpoint_path      TEXT NOT NULL DEFAULT '',
  checkpoint_sha256    TEXT NOT NULL DEFAULT '',   -- hex, checked before the file is used
  device               TEXT NOT NULL DEFAULT '',   -- where it trains now; '' when it waits
  split                TEXT NOT NULL DEFAULT '',   -- JSON object: the split decision; '' before it
  reason               TEXT NOT NULL DEFAULT '',   -- why it failed
  created_ms           INTEGER NOT NULL,
  updated_ms           INTEGER NOT NULL
);
CREATE INDEX groups_phase_seq ON groups(phase, seq);

-- Every member a group ever had; left_round is NULL while the member still trains in it.
-- Join order is the rowid order.
CREATE TABLE group_members (
  group_id     TEXT NOT NULL REFERENCES groups(id),
  activity_id  TEXT NOT NULL REFERENCES activities(id),
  tenant_id    TEXT NOT NULL REFERENCES tenants(id),
  task         TEXT NOT NULL,
  joined_round INTEGER NOT NULL,
  left_round   INTEGER,
  PRIMARY KEY (group_id, activity_id)
);
CREATE INDEX group_members_activity ON group_members(activity_id);
CREATE INDEX group_members_tenant ON group_members(tenant_id, group_id);

-- Task affinity a consolidating group measured, per round.
CREATE TABLE group_affinity (
  group_id TEXT NOT NULL REFERENCES groups(id),
  round    INTEGER NOT NULL,
  affinity TEXT NOT NULL,                          -- JSON {"heads": [...], "matrix": [[...]], ...}
  PRIMARY KEY (group_id, round)
);

-- The group that holds the activity, or last held it (it keeps the id after it leaves);
-- '' until it joins one. Its whole history is in group_members.
ALTER TABLE activities ADD COLUMN group_id TEXT NOT NULL DEFAULT '';

-- Activities the old per-activity executor started (running, or queued again after an
-- interruption) start over in the group executor: they go back to the queue and the planner
-- groups them. Their per-activity checkpoints are abandoned (a group checkpoint holds a merged
-- model, not one activity's), so their progress and round history restart from round 0; the
-- abandoned checkpoint files stay on disk, unreferenced. Finished activities keep everything.
DELETE FROM activity_rounds WHERE activity_id IN
  (SELECT id FROM activities WHERE state IN ('queued','consolidating','splitting','training'));
DELETE FROM activity_files WHERE kind = 'checkpoint' AND activity_id IN
  (SELECT id FROM activities WHERE state IN ('queued','consolidating','splitting','training'));
UPDATE activities
   SET state = 'queued', device = '', rounds_done = 0, last_round = '',
       state_reason = 'starts over in a group: its per-activity checkpoint was abandoned on upgrade'
 WHERE group_id = '' AND (state IN ('consolidating','splitting','training') OR (state = 'queued' AND rounds_done > 0));
)sql"},
      {4, "a running count of each tenant's active activities", R"sql(
-- The quota check reads this count instead of counting the tenant's activities on every
-- submission (with 10,000 queued activities that count cost about 2 ms per POST). Triggers
-- keep it right whatever changes a state: submit, cancel, group training, tenant deletion.
ALTER TABLE tenants ADD COLUMN active_activities INTEGER NOT NULL DEFAULT 0;
UPDATE tenants SET active_activities =
  (SELECT count(*) FROM activities a
    WHERE a.tenant_id = tenants.id AND a.state NOT IN ('succeeded','failed','cancelled'));
CREATE TRIGGER activities_active_on_insert AFTER INSERT ON activities
  WHEN NEW.state NOT IN ('succeeded','failed','cancelled')
BEGIN
  UPDATE tenants SET active_activities = active_activities + 1 WHERE id = NEW.tenant_id;
END;
CREATE TRIGGER activities_active_on_update AFTER UPDATE OF state ON activities
  WHEN (OLD.state NOT IN ('succeeded','failed','cancelled')) != (NEW.state NOT IN ('succeeded','failed','cancelled'))
BEGIN
  UPDATE tenants
     SET active_activities = active_activities +
         (CASE WHEN NEW.state NOT IN ('succeeded','failed','cancelled') THEN 1 ELSE -1 END)
   WHERE id = NEW.tenant_id;
END;
CREATE TRIGGER activities_active_on_delete AFTER DELETE ON activities
  WHEN OLD.state NOT IN ('succeeded','failed','cancelled')
BEGIN
  UPDATE tenants SET active_activities = active_activities - 1 WHERE id = OLD.tenant_id;
END;
)sql"},
      {5, "energy ledger, energy budgets and device shares, drained devices", R"sql(
-- Energy budgets (NULL: unlimited) and device shares (NULL: no limit) per tenant, and the joules
-- its shares of the ledger add up to, kept here so the budget check is O(1).
ALTER TABLE tenants ADD COLUMN energy_budget_joules REAL;
ALTER TABLE tenants ADD COLUMN max_devices INTEGER;
ALTER TABLE tenants ADD COLUMN energy_used_joules REAL NOT NULL DEFAULT 0;

-- One row per work unit: one group round on one device, as its meter measured it. Written in
-- the transaction that records the round.
CREATE TABLE energy_ledger (
  id               INTEGER PRIMARY KEY AUTOINCREMENT,
  group_id         TEXT NOT NULL REFERENCES groups(id),
  round            INTEGER NOT NULL,               -- lineage round
  device           TEXT NOT NULL,
  meter            TEXT NOT NULL,                  -- nvml, rapl, model
  start_ms         INTEGER NOT NULL,
  end_ms           INTEGER NOT NULL,
  seconds          REAL NOT NULL,
  joules           REAL NOT NULL,
  carbon_g_per_kwh REAL NOT NULL,                  -- grid intensity over [start, end)
  grams_co2e       REAL NOT NULL,
  UNIQUE (group_id, round)
);

-- Each unit's shares: the activities that trained in it, with their tenants
-- (docs/energy.md, "Ledger and attribution"). end_ms is the unit's, for per-day usage.
CREATE TABLE energy_attribution (
  unit_id        INTEGER NOT NULL REFERENCES energy_ledger(id),
  activity_id    TEXT NOT NULL REFERENCES activities(id),
  tenant_id      TEXT NOT NULL REFERENCES tenants(id),
  share          REAL NOT NULL,
  joules         REAL NOT NULL,
  device_seconds REAL NOT NULL,
  grams_co2e     REAL NOT NULL,
  end_ms         INTEGER NOT NULL,
  PRIMARY KEY (unit_id, activity_id)
);
CREATE INDEX energy_attribution_activity ON energy_attribution(activity_id);
CREATE INDEX energy_attribution_tenant_end ON energy_attribution(tenant_id, end_ms);

-- Devices the admin drained; a row with drained = 0 was resumed.
CREATE TABLE devices (
  name       TEXT PRIMARY KEY,
  drained    INTEGER NOT NULL,
  updated_ms INTEGER NOT NULL
);
)sql"},
      {6, "events: the stored event stream of GET /v1/events", R"sql(
-- One row per change a client may watch (docs/events.md). id is the stream's Last-Event-ID:
-- AUTOINCREMENT, so an id is never reused, not even after its row was pruned. data holds the
-- type's fields as a JSON object (id, type and time are added when the event is served).
CREATE TABLE events (
  id          INTEGER PRIMARY KEY AUTOINCREMENT,
  time_ms     INTEGER NOT NULL,
  tenant_id   TEXT,                            -- NULL: a device event, which every tenant sees
  activity_id TEXT NOT NULL DEFAULT '',
  group_id    TEXT NOT NULL DEFAULT '',
  type        TEXT NOT NULL,
  data        TEXT NOT NULL
);
CREATE INDEX events_time ON events(time_ms);             -- retention
CREATE INDEX events_activity ON events(activity_id, id); -- ?activity=

-- Activity states and finished rounds change in many transactions (submit, cancel, grouping,
-- split, success, failure, tenant deletion, restart); triggers write their events in each of
-- them, so no code path can forget one. time is the change's updated_ms / created_ms.
CREATE TRIGGER events_activity_submitted AFTER INSERT ON activities
BEGIN
  INSERT INTO events(time_ms, tenant_id, activity_id, group_id, type, data)
  VALUES (NEW.created_ms, NEW.tenant_id, NEW.id, NEW.group_id, 'activity.state',
          json_object('activity_id', NEW.id, 'state', NEW.state, 'previous', NULL, 'reason', NEW.state_reason));
END;
CREATE TRIGGER events_activity_state AFTER UPDATE OF state ON activities WHEN OLD.state != NEW.state
BEGIN
  INSERT INTO events(time_ms, tenant_id, activity_id, group_id, type, data)
  VALUES (NEW.updated_ms, NEW.tenant_id, NEW.id, NEW.group_id, 'activity.state',
          json_object('activity_id', NEW.id, 'state', NEW.state, 'previous', OLD.state, 'reason', NEW.state_reason));
END;
-- metrics: the activity's own task's entry of the report's metrics ({"loss":…,"accuracy":…}).
CREATE TRIGGER events_round_finished AFTER INSERT ON activity_rounds
BEGIN
  INSERT INTO events(time_ms, tenant_id, activity_id, group_id, type, data)
  SELECT NEW.created_ms, a.tenant_id, a.id, g.gid, 'round.finished',
         json_object('activity_id', a.id, 'group_id', g.gid, 'round', NEW.round,
                     'rounds', json_extract(a.spec, '$.rounds'),
                     'phase', coalesce((SELECT phase FROM groups WHERE id = g.gid), ''),
                     'metrics', json(coalesce(json_extract(NEW.report, '$.metrics."' || json_extract(a.spec, '$.task') || '"'),
                                              '{}')))
    FROM activities a,
         (SELECT coalesce(json_extract(NEW.report, '$.group_id'),
                          (SELECT group_id FROM activities WHERE id = NEW.activity_id)) AS gid) g
   WHERE a.id = NEW.activity_id;
END;
)sql"},
      {7, "tenants: weight in the fair placement policy", R"sql(
-- quotas.fair_share_weight: the fair policy divides the tenant's dominant share by it.
ALTER TABLE tenants ADD COLUMN fair_share_weight REAL NOT NULL DEFAULT 1;
)sql"},
      {8, "energy ledger: rounds abandoned by a shutdown, a cancel or a failure", R"sql(
-- Rounds abandoned by a shutdown, a cancel or a failure used energy too: the ledger keeps
-- them, with why, beside the recorded rounds. An abandoned round may run again (after a
-- restart), so (group_id, round) is unique only among recorded rounds. SQLite cannot drop a
-- UNIQUE constraint: both tables are rebuilt (the attribution first, as it points at the
-- ledger), their rows copied with their ids.
CREATE TABLE energy_ledger_v8 (
  id               INTEGER PRIMARY KEY AUTOINCREMENT,
  group_id         TEXT NOT NULL REFERENCES groups(id),
  round            INTEGER NOT NULL,               -- lineage round
  device           TEXT NOT NULL,
  meter            TEXT NOT NULL,                  -- nvml, rapl, model
  start_ms         INTEGER NOT NULL,
  end_ms           INTEGER NOT NULL,
  seconds          REAL NOT NULL,
  joules           REAL NOT NULL,
  carbon_g_per_kwh REAL NOT NULL,                  -- grid intensity over [start, end)
  grams_co2e       REAL NOT NULL,
  abandoned        TEXT                            -- NULL: a recorded round; else shutdown, cancelled or failed
    CHECK (abandoned IS NULL OR abandoned IN ('shutdown', 'cancelled', 'failed'))
);
INSERT INTO energy_ledger_v8(id, group_id, round, device, meter, start_ms, end_ms, seconds, joules,
                             carbon_g_per_kwh, grams_co2e)
  SELECT id, group_id, round, device, meter, start_ms, end_ms, seconds, joules, carbon_g_per_kwh, grams_co2e
    FROM energy_ledger;
CREATE TABLE energy_attribution_v8 (
  unit_id        INTEGER NOT NULL REFERENCES energy_ledger_v8(id),
  activity_id    TEXT NOT NULL REFERENCES activities(id),
  tenant_id      TEXT NOT NULL REFERENCES tenants(id),
  share          REAL NOT NULL,
  joules         REAL NOT NULL,
  device_seconds REAL NOT NULL,
  grams_co2e     REAL NOT NULL,
  end_ms         INTEGER NOT NULL,
  PRIMARY KEY (unit_id, activity_id)
);
INSERT INTO energy_attribution_v8 SELECT unit_id, activity_id, tenant_id, share, joules, device_seconds, grams_co2e,
                                         end_ms FROM energy_attribution;
DROP TABLE energy_attribution;
DROP TABLE energy_ledger;
ALTER TABLE energy_ledger_v8 RENAME TO energy_ledger;
ALTER TABLE energy_attribution_v8 RENAME TO energy_attribution;
CREATE UNIQUE INDEX energy_ledger_recorded_round ON energy_ledger(group_id, round) WHERE abandoned IS NULL;
CREATE INDEX energy_ledger_group ON energy_ledger(group_id, round);
CREATE INDEX energy_attribution_activity ON energy_attribution(activity_id);
CREATE INDEX energy_attribution_tenant_end ON energy_attribution(tenant_id, end_ms);
)sql"},
      {9, "events: device.changed when a group takes or lets go of a device", R"sql(
-- A group takes a device at a claim and lets it go in many transactions (release at a round
-- boundary, split, success, failure, cancel, restart): triggers write the device's new state
-- in each of them, as the admin's drain and resume do (SqliteStore::set_device_drained). The
-- event names no group: every tenant sees device events, and a group may be another tenant's.
CREATE TRIGGER events_device_released AFTER UPDATE OF device ON groups
  WHEN OLD.device != '' AND OLD.device != NEW.device
BEGIN
  INSERT INTO events(time_ms, tenant_id, activity_id, group_id, type, data)
  VALUES (NEW.updated_ms, NULL, '', '', 'device.changed',
          json_object('device', OLD.device,
                      'state', CASE WHEN EXISTS(SELECT 1 FROM devices WHERE name = OLD.device AND drained = 1)
                                    THEN 'drained' ELSE 'idle' END,
                      'reason', 'let its group go'));
END;
CREATE TRIGGER events_device_claimed AFTER UPDATE OF device ON groups
  WHEN NEW.device != '' AND OLD.device != NEW.device
BEGIN
  INSERT INTO events(time_ms, tenant_id, activity_id, group_id, type, data)
  VALUES (NEW.updated_ms, NULL, '', '', 'device.changed',
          json_object('device', NEW.device,
                      'state', CASE WHEN EXISTS(SELECT 1 FROM devices WHERE name = NEW.device AND drained = 1)
                                    THEN 'draining' ELSE 'busy' END,
                      'reason', 'took a group'));
END;
)sql"},
      {10, "tenants: quotas max_priority and max_client_updates", R"sql(
-- quotas.max_priority bounds an activity's priority; quotas.max_client_updates its cost.
ALTER TABLE tenants ADD COLUMN max_priority INTEGER NOT NULL DEFAULT 0;
ALTER TABLE tenants ADD COLUMN max_client_updates INTEGER NOT NULL DEFAULT 1000000;
)sql"},
      {11, "group checkpoints per round; the readiness probe", R"sql(
-- Every group checkpoint the database trusts, one file per round (the newest two of each
-- group are kept): the newest is groups.checkpoint_*; the one before is the fallback when the
-- newest turns out damaged. heads and job_round_offset describe the job it holds.
CREATE TABLE group_checkpoints (
  group_id         TEXT NOT NULL REFERENCES groups(id),
  round            INTEGER NOT NULL,
  path             TEXT NOT NULL,
  sha256           TEXT NOT NULL,
  bytes            INTEGER NOT NULL,
  heads            TEXT NOT NULL,
  job_round_offset INTEGER NOT NULL,
  created_ms       INTEGER NOT NULL,
  PRIMARY KEY (group_id, round)
);
INSERT INTO group_checkpoints(group_id, round, path, sha256, bytes, heads, job_round_offset, created_ms)
  SELECT id, round, checkpoint_path, checkpoint_sha256, 0, heads, job_round_offset, updated_ms
  FROM groups WHERE checkpoint_path != '' AND heads != '[]';
-- One row written by /readyz after a write failed for a full disk: a write that succeeds
-- again says that space is back.
CREATE TABLE readiness_probe (
  id         INTEGER PRIMARY KEY CHECK (id = 1),
  checked_ms INTEGER NOT NULL
);
)sql"},
      {12, "why a member left its group", R"sql(
-- Why a member left (left_round set): 'split' (the affinity split), 'guard' (its loss fell
-- behind while merged), 'finished', 'cancelled', 'failed'; '' while it trains and for rows
-- written before this column.
ALTER TABLE group_members ADD COLUMN left_reason TEXT NOT NULL DEFAULT '';
)sql"},
      {13, "federations of real clients, and their clients", R"sql(
-- A population of mufl-client processes that keep their own data (docs/clients.md).
CREATE TABLE federations (
  seq               INTEGER PRIMARY KEY AUTOINCREMENT,  -- creation order
  id                TEXT NOT NULL UNIQUE,
  owner_tenant_id   TEXT NOT NULL DEFAULT '',          -- '' when the admin created it
  name              TEXT NOT NULL,
  channels          INTEGER NOT NULL,                  -- the data schema: C x H x W, labels
  height            INTEGER NOT NULL,
  width             INTEGER NOT NULL,
  labels            INTEGER NOT NULL,
  enroll_hash       TEXT NOT NULL UNIQUE,              -- hex SHA-256 of the enrollment token
  enroll_expires_ms INTEGER NOT NULL,
  created_ms        INTEGER NOT NULL,
  updated_ms        INTEGER NOT NULL,
  deleted_ms        INTEGER                            -- set when deleted; the row stays
);
CREATE UNIQUE INDEX federations_live_name ON federations(owner_tenant_id, name) WHERE deleted_ms IS NULL;

-- Tenants other than the owner that may submit activities to a federation.
CREATE TABLE federation_tenants (
  federation_id TEXT NOT NULL REFERENCES federations(id),
  tenant_id     TEXT NOT NULL REFERENCES tenants(id),
  PRIMARY KEY (federation_id, tenant_id)
);
CREATE INDEX federation_tenants_tenant ON federation_tenants(tenant_id);

CREATE TABLE clients (
  seq           INTEGER PRIMARY KEY AUTOINCREMENT,  -- enrollment order; the list's cursor
  id            TEXT NOT NULL UNIQUE,
  federation_id TEXT NOT NULL REFERENCES federations(id),
  name          TEXT NOT NULL,
  token_hash    TEXT NOT NULL UNIQUE,               -- hex SHA-256 of the client token
  train_samples INTEGER NOT NULL,
  test_samples  INTEGER NOT NULL,
  created_ms    INTEGER NOT NULL,
  last_seen_ms  INTEGER NOT NULL,
  revoked_ms    INTEGER                             -- set when revoked: the token stops working
);
CREATE UNIQUE INDEX clients_live_name ON clients(federation_id, name) WHERE revoked_ms IS NULL;
CREATE INDEX clients_federation_seq ON clients(federation_id, seq);
)sql"},
      {14, "work leases of federation rounds", R"sql(
-- One client's part of one group round (storage/lease_store.h, docs/clients.md).
CREATE TABLE leases (
  seq           INTEGER PRIMARY KEY AUTOINCREMENT,  -- creation order
  id            TEXT NOT NULL UNIQUE,
  group_id      TEXT NOT NULL,
  round         INTEGER NOT NULL,                   -- lineage round (1-based)
  attempt       INTEGER NOT NULL,                   -- draw of the round (0-based)
  client_id     TEXT NOT NULL REFERENCES clients(id),
  client_index  INTEGER NOT NULL,                   -- the client's number in the round: its seed
  assignment    TEXT NOT NULL,                      -- JSON sent to the client
  deadline_ms   INTEGER NOT NULL,
  state         TEXT NOT NULL CHECK (state IN ('open','reported','expired','abandoned')),
  report        TEXT NOT NULL DEFAULT '',           -- JSON, once reported
  update_path   TEXT NOT NULL DEFAULT '',           -- the update's file (safetensors), once reported
  update_sha256 TEXT NOT NULL DEFAULT '',
  created_ms    INTEGER NOT NULL,
  updated_ms    INTEGER NOT NULL
);
CREATE INDEX leases_round ON leases(group_id, round, attempt);
CREATE INDEX leases_open ON leases(state) WHERE state = 'open';
)sql"},
      {15, "client energy in the ledger; federation lanes are not devices", R"sql(
-- A federation round's unit: the server's joules (sampling, aggregation) stay in `joules`; the
-- clients' own joules, as they reported them, go beside it (docs/energy.md, "Client energy").
ALTER TABLE energy_ledger ADD COLUMN client_joules REAL NOT NULL DEFAULT 0;
ALTER TABLE energy_ledger ADD COLUMN client_meters TEXT NOT NULL DEFAULT '';
ALTER TABLE energy_attribution ADD COLUMN client_joules REAL NOT NULL DEFAULT 0;
-- A federation lane ("federation:N") is not a device: taking and letting go of one is no
-- device.changed event.
DROP TRIGGER events_device_released;
DROP TRIGGER events_device_claimed;
CREATE TRIGGER events_device_released AFTER UPDATE OF device ON groups
  WHEN OLD.device != '' AND OLD.device != NEW.device AND OLD.device NOT LIKE 'federation:%'
BEGIN
  INSERT INTO events(time_ms, tenant_id, activity_id, group_id, type, data)
  VALUES (NEW.updated_ms, NULL, '', '', 'device.changed',
          json_object('device', OLD.device,
                      'state', CASE WHEN EXISTS(SELECT 1 FROM devices WHERE name = OLD.device AND drained = 1)
                                    THEN 'drained' ELSE 'idle' END,
                      'reason', 'let its group go'));
END;
CREATE TRIGGER events_device_claimed AFTER UPDATE OF device ON groups
  WHEN NEW.device != '' AND OLD.device != NEW.device AND NEW.device NOT LIKE 'federation:%'
BEGIN
  INSERT INTO events(time_ms, tenant_id, activity_id, group_id, type, data)
  VALUES (NEW.updated_ms, NULL, '', '', 'device.changed',
          json_object('device', NEW.device,
                      'state', CASE WHEN EXISTS(SELECT 1 FROM devices WHERE name = NEW.device AND drained = 1)
                                    THEN 'draining' ELSE 'busy' END,
                      'reason', 'took a group'));
END;
)sql"},
      {16, "the cluster's worker jobs", R"sql(
-- One row per mufl-worker job mufld has open on a Slurm cluster, so that a restarted mufld
-- can adopt the ones Slurm still runs (docs/cluster.md). The token itself is never stored.
CREATE TABLE cluster_workers (
  seq          INTEGER PRIMARY KEY AUTOINCREMENT,
  id           TEXT NOT NULL UNIQUE,
  token_sha256 TEXT NOT NULL,
  group_id     TEXT NOT NULL,
  device       TEXT NOT NULL,
  slurm_job_id TEXT NOT NULL,
  created_ms   INTEGER NOT NULL
);
)sql"},
      {17, "client clustering: a model file per cluster", R"sql(
-- A clustered activity's model of each cluster of clients ("model.c0", "model.c1", …) beside
-- its "model" (the largest cluster's). SQLite cannot change a CHECK in place: the table is
-- built again with the wider one, and its rows copied.
CREATE TABLE activity_files_new (
  activity_id TEXT NOT NULL REFERENCES activities(id),
  kind        TEXT NOT NULL CHECK (kind IN ('checkpoint', 'model') OR kind GLOB 'model.c[0-9]*'),
  round       INTEGER NOT NULL,
  path        TEXT NOT NULL,
  sha256      TEXT NOT NULL,
  bytes       INTEGER NOT NULL,
  created_ms  INTEGER NOT NULL,
  PRIMARY KEY (activity_id, kind)
);
INSERT INTO activity_files_new SELECT activity_id, kind, round, path, sha256, bytes, created_ms FROM activity_files;
DROP TABLE activity_files;
ALTER TABLE activity_files_new RENAME TO activity_files;
)sql"},
  };
  return migrations;
}

int latest_schema_version() { return all_migrations().back().version; }

int current_schema_version(Connection& conn) {
  auto stmt = conn.prepare(
      "SELECT coalesce(max(version), 0) FROM schema_migrations");
  if (!stmt.ok()) return 0;  // table missing: nothing applied yet
  auto row = (*stmt)->step();
  return row.ok() && *row ? static_cast<int>((*stmt)->column_int64(0)) : 0;
}

Status migrate(Connection& conn, int64_t now_unix_ms) {
  if (Status s = conn.exec(
          "CREATE TABLE IF NOT EXISTS schema_migrations ("
          " version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_ms INTEGER NOT NULL)");
      !s.is_ok())
    return s;
  int current = current_schema_version(conn);
  if (current > latest_schema_version())
    return Status::failed_precondition("database schema version " + std::to_string(current) +
                                       " is newer than this mufld (" + std::to_string(latest_schema_version()) +
                                       "); upgrade mufld");
  for (const Migration& m : all_migrations()) {
    if (m.version <= current) continue;
    Transaction txn(conn);  // rolls back unless committed, also when something throws
    if (Status s = txn.begin(Transaction::Mode::kWrite); !s.is_ok()) return s;
    Status s = conn.exec(m.sql);
    if (s.is_ok()) {
      auto ins = conn.prepare("INSERT INTO schema_migrations(version, name, applied_ms) VALUES(?,?,?)");
      s = ins.ok() ? (*ins)->bind(1, int64_t{m.version}).bind(2, m.name).bind(3, now_unix_ms).run() : ins.status();
    }
    if (!s.is_ok())
      return Status::internal("migration " + std::to_string(m.version) + " (" + m.name + "): " + s.message());
    if (Status c = txn.commit(); !c.is_ok()) return c;
  }
  return Status::ok();
}

}  // namespace mufl::storage
