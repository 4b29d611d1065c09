// docs/openapi.yaml must document every route the server registers (and nothing it does not).
// The file follows a fixed layout — paths at two spaces, methods at four — so a line scan suffices.
#include <catch2/catch.hpp>

#include <fstream>
#include <set>

#include "core/clock.h"
#include "core/random.h"
#include "service/app.h"
#include "storage/sqlite_store.h"

using namespace mufl;

namespace {

// {"GET /v1/activities/{id}", …} from the paths section of the spec.
std::set<std::string> documented_operations(const std::string& file) {
  std::ifstream in(file);
  REQUIRE(in.good());
  std::set<std::string> ops;
  std::string line, path;
  bool in_paths = false;
  static const std::set<std::string> kMethods = {"get", "put", "post", "delete", "patch", "head", "options"};
  while (std::getline(in, line)) {
    if (!line.empty() && line[0] != ' ' && line[0] != '#') {
      in_paths = line.rfind("paths:", 0) == 0;
      continue;
    }
    if (!in_paths) continue;
    if (line.size() > 3 && line.rfind("  /", 0) == 0 && line.back() == ':') {
      path = line.substr(2, line.size() - 3);
    } else if (line.size() > 5 && line.rfind("    ", 0) == 0 && line[4] != ' ' && line.back() == ':') {
      std::string m = line.substr(4, line.size() - 5);
      if (kMethods.count(m)) {
        for (char& c : m) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
        ops.insert(m + " " + path);
      }
    }
  }
  return ops;
}

}  // namespace

TEST_CASE("openapi: every registered route is documented, and only those") {
  ManualClock clock;
  SeededRandom rng(1);
  storage::StoreOptions o;
  o.path = ":memory:";
  auto store = storage::SqliteStore::open(o, clock);
  REQUIRE(store.ok());
  service::App app(**store, clock, rng, "hash");

  std::set<std::string> registered;
  for (const auto& r : app.router().routes()) registered.insert(r.method + " " + r.path_template);
  REQUIRE(registered.size() >= 15);

  const auto documented = documented_operations(std::string(MUFL_SOURCE_DIR) + "/docs/openapi.yaml");
  for (const auto& op : registered) {
    INFO("registered but not in docs/openapi.yaml: " << op);
    CHECK(documented.count(op) == 1);
  }
  for (const auto& op : documented) {
    INFO("documented but not registered: " << op);
    CHECK(registered.count(op) == 1);
  }
}
