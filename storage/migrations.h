#pragma once
// Numbered schema migrations. The schema changes only by appending a migration here; an
// applied migration is never edited (its number and SQL are part of every database made).
#include <string>
#include <vector>

#include "core/status.h"

namespace mufl::storage {

class Connection;

struct Migration {
  int version;       // 1, 2, 3 … without gaps
  const char* name;  // recorded in schema_migrations for people
  const char* sql;
};

// Every migration this build knows, in order.
const std::vector<Migration>& all_migrations();

// The version a fully migrated database has.
int latest_schema_version();

// Applies the migrations the database lacks, each in its own transaction, and records them in
// schema_migrations. Returns kFailedPrecondition when the database is newer than this build
// (it was migrated by a later mufld), an SQLite error otherwise.
Status migrate(Connection& conn, int64_t now_unix_ms);

// The highest applied version (0 for an empty database).
int current_schema_version(Connection& conn);

}  // namespace mufl::storage
