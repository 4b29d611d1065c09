// The fuzz target of the HTTP edge: bytes → the server's own parser (service/http_parse.h) →
// the whole App over an in-memory store, as mufld runs it minus the socket. libFuzzer calls it
// (scripts/fuzz, built with clang's -fsanitize=fuzzer); tests/fuzz/replay_main.cpp calls it for
// every file of the seed corpus in the normal test suite.
//
// Input: the first byte picks the caller (0: no token, 1: the admin, 2: a tenant, 3: another
// tenant, each added as an Authorization header unless the request has one); the rest is what
// a client writes on one connection, possibly several pipelined requests. The invariants are the
// issue's: nothing throws, every reply is a status in 100..599 and not a 500 (the store is in
// memory, so no 500 is legitimate), every problem+json reply is valid JSON and valid UTF-8.
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "core/clock.h"
#include "core/random.h"
#include "core/utf8.h"
#include "service/app.h"
#include "service/http_parse.h"
#include "service/response_stream.h"
#include "storage/sqlite_store.h"
#include "tenants/token.h"

namespace {

using namespace mufl;

const std::string kAdmin = "fuzz-admin-token";

struct World {
  ManualClock clock;
  SeededRandom rng{7};
  std::unique_ptr<storage::SqliteStore> store;
  std::unique_ptr<service::App> app;
  std::string tenant_token[2];

  World() {
    storage::StoreOptions o;
    o.path = ":memory:";
    auto opened = storage::SqliteStore::open(o, clock);
    if (!opened.ok()) std::abort();
    store = std::move(*opened);
    app = std::make_unique<service::App>(*store, clock, rng, tenants::sha256_hex(kAdmin));
    for (int i = 0; i < 2; ++i) {
      service::HttpRequest r;
      r.method = "POST";
      r.path = "/v1/tenants";
      r.headers.emplace_back("authorization", "Bearer " + kAdmin);
      r.body = nlohmann::json{{"name", "fuzz-" + std::to_string(i)}}.dump();
      auto res = app->handle(std::move(r));
      tenant_token[i] = nlohmann::json::parse(res.body)["token"];
    }
  }
};

World& world() {
  static World* w = new World();  // never destroyed: libFuzzer exits without unwinding
  return *w;
}

void check(bool ok) {
  if (!ok) std::abort();  // an invariant broke: libFuzzer saves the input as a crash
}

void serve(service::HttpRequest&& request, uint8_t caller) {
  World& w = world();
  if (!request.header("authorization") && caller % 4 != 0) {
    const std::string& token = caller % 4 == 1 ? kAdmin : w.tenant_token[caller % 4 - 2];
    request.headers.emplace_back("authorization", "Bearer " + token);
  }
  const std::string line = request.method + " " + request.path;
  service::HttpResponse res = w.app->handle(std::move(request));
  static const bool verbose = std::getenv("MUFL_FUZZ_VERBOSE") != nullptr;  // for corpus upkeep
  if (verbose) std::fprintf(stderr, "%s -> %d\n", sanitize_utf8(line).c_str(), res.status);
  check(res.status >= 100 && res.status < 600 && res.status != 500);
  if (res.stream) res.stream->cancel();
  if (res.content_type == "application/problem+json") {
    check(is_valid_utf8(res.body));
    check(nlohmann::json::accept(res.body));
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const uint8_t caller = data[0];
  std::string_view bytes(reinterpret_cast<const char*>(data + 1), size - 1);
  for (int requests = 0; requests < 8 && !bytes.empty(); ++requests) {
    auto parsed = service::parse_http_request(bytes, 64 * 1024);
    if (parsed.kind == service::ParseResult::Kind::kError) {
      check(parsed.error.status >= 400 && parsed.error.status < 500);
      check(nlohmann::json::accept(parsed.error.body));
      return 0;
    }
    if (parsed.kind != service::ParseResult::Kind::kRequest) return 0;
    serve(std::move(parsed.request), caller);
    if (!parsed.keep_alive || parsed.consumed == 0) return 0;
    bytes.remove_prefix(parsed.consumed);
  }
  return 0;
}
