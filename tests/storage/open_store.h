#pragma once
// The storage tests' way to open a SqliteStore on a file: mufld's defaults, and the test stops
// at once when the store cannot be opened.
#include <catch2/catch.hpp>
#include <memory>
#include <string>

#include "core/clock.h"
#include "storage/sqlite_store.h"

namespace mufl::storage {

inline std::unique_ptr<SqliteStore> open_store(const std::string& path, const Clock& clock) {
  StoreOptions o;
  o.path = path;
  auto s = SqliteStore::open(o, clock);
  REQUIRE(s.ok());
  return std::move(*s);
}

}  // namespace mufl::storage
