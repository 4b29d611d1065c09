#pragma once
// Federation and Client: a population of real mufl-client processes that keep their own data
// (docs/clients.md). A federation's data schema says what every client's samples look like; the
// model's first convolution and its heads follow it.
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace mufl {

// What one sample is: an image C×H×W and a label in [0, labels).
struct DataSchema {
  int64_t channels = 1;
  int64_t height = 28;
  int64_t width = 28;
  int64_t labels = 10;
  bool operator==(const DataSchema&) const = default;
};

struct Federation {
  int64_t seq = 0;            // creation order; the list's cursor
  std::string id;             // "fed_…"
  std::string name;           // 1–64 of [A-Za-z0-9._-], unique among the owner's live federations
  std::string owner_tenant_id;  // "" when the admin created it
  DataSchema schema;
  // Other tenants that may submit activities to it. They see its id, name and schema only.
  std::vector<std::string> tenants;
  int64_t enrollment_expires_unix_ms = 0;  // the enrollment token works until then
  int64_t created_unix_ms = 0;
  int64_t updated_unix_ms = 0;
};

struct Client {
  int64_t seq = 0;
  std::string id;  // "cli_…"
  std::string federation_id;
  std::string name;  // 1–64 of [A-Za-z0-9._-], unique among the federation's enrolled clients
  int64_t train_samples = 0;  // what the client said it holds at enrollment
  int64_t test_samples = 0;
  int64_t created_unix_ms = 0;
  int64_t last_seen_unix_ms = 0;  // as stored; the registry keeps a fresher one in memory
  std::optional<int64_t> revoked_unix_ms;  // set once revoked: its token no longer works
};

}  // namespace mufl
