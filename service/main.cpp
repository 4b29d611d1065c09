// mufld: the mufl service. Parses flags, opens the state, and serves HTTP until SIGTERM.
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

#include <cstdio>
#include <filesystem>
#include <iostream>

#include "core/clock.h"
#include "core/random.h"
#include "service/admin_token.h"
#include "service/app.h"
#include "service/config.h"
#include "service/http_server.h"
#include "service/version.h"
#include "storage/sqlite_store.h"
#include "tenants/token.h"

extern char** environ;

namespace {

int fail(const std::string& what) {
  spdlog::critical("{}", what);
  return 1;
}

}  // namespace

int main(int argc, char** argv) {
  using namespace mufl;
  auto args = service::parse_args(argc, argv, environ);
  if (!args.ok()) {
    std::cerr << "mufld: " << args.status().message() << "\n";
    return 2;
  }
  if (args->exit_now) {
    std::cout << args->output;
    return 0;
  }
  const service::Config& cfg = args->config;

  spdlog::set_default_logger(spdlog::stderr_color_mt("mufld"));
  spdlog::set_level(spdlog::level::from_str(cfg.log_level));
  spdlog::set_pattern("%Y-%m-%dT%H:%M:%S.%eZ %^%l%$ %v", spdlog::pattern_time_type::utc);

  std::error_code ec;
  std::filesystem::create_directories(cfg.data_dir, ec);
  if (ec) return fail("cannot create data dir " + cfg.data_dir + ": " + ec.message());

  auto admin = service::load_or_create_admin_token(cfg.data_dir, cfg.admin_token, SecureRandom::instance());
  if (!admin.ok()) return fail("admin token: " + admin.status().message());

  storage::StoreOptions store_options;
  store_options.path = cfg.db_path;
  store_options.synchronous = cfg.db_sync == "full" ? "FULL" : "NORMAL";
  store_options.readers = cfg.threads;
  auto store = storage::SqliteStore::open(store_options, SystemClock::instance());
  if (!store.ok()) return fail("database " + cfg.db_path + ": " + store.status().message());

  service::App app(**store, SystemClock::instance(), SecureRandom::instance(), tenants::sha256_hex(admin->token));

  service::HttpServerOptions http;
  http.host = cfg.listen_host;
  http.port = cfg.listen_port;
  http.io_threads = cfg.threads;
  http.handler_threads = cfg.threads;
  http.server_name = std::string("mufld/") + service::kVersion;
  service::HttpServer server(http, [&app](service::HttpRequest&& r) { return app.handle(std::move(r)); });
  if (Status s = server.listen(); !s.is_ok()) return fail(s.message());

  spdlog::info("mufld {} serving http://{}:{} (data dir {}, database {}, {} threads)", service::kVersion,
               cfg.listen_host, server.port(), cfg.data_dir, cfg.db_path, cfg.threads);
  spdlog::info("admin token: {}", admin->source == "MUFL_ADMIN_TOKEN" ? "from MUFL_ADMIN_TOKEN"
                                                                      : "in " + admin->source);
  // One machine-readable line on stdout, for scripts and tests that start mufld on port 0.
  std::printf("mufld listening on %s:%u\n", cfg.listen_host.c_str(), static_cast<unsigned>(server.port()));
  std::fflush(stdout);

  server.run();
  spdlog::info("mufld stopped cleanly");
  return 0;
}
