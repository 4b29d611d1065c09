// mufld: the mufl service. Parses flags, opens the state, and serves HTTP until SIGTERM.
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>
#include <sys/resource.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <iostream>
#include <memory>
#include <set>
#include <thread>

#include "core/clock.h"
#include "core/crash_point_env.h"
#include "core/file_io.h"
#include "core/random.h"
#include "fl/fl_job.h"
#include "scheduler/cluster/cluster_backend.h"
#include "scheduler/cluster/cluster_watch.h"
#include "scheduler/device_inventory.h"
#include "scheduler/devices.h"
#include "scheduler/energy/carbon_intensity.h"
#include "scheduler/energy/energy_ledger.h"
#include "scheduler/executor.h"
#include "scheduler/placement/dispatch.h"
#include "service/admin_token.h"
#include "service/app.h"
#include "service/config.h"
#include "service/event_retention.h"
#include "service/http_server.h"
#include "service/metrics_endpoint.h"
#include "service/version.h"
#include "storage/sqlite_store.h"
#include "tenants/token.h"

extern char** environ;

namespace {

int fail(const std::string& what) {
  spdlog::critical("{}", what);
  return 1;
}

// Every open event stream holds a socket: lift the soft descriptor limit (often 1024) to the
// hard one, so that a thousand subscribers fit.
void raise_fd_limit() {
  rlimit lim{};
  if (getrlimit(RLIMIT_NOFILE, &lim) != 0 || lim.rlim_cur >= lim.rlim_max) return;
  lim.rlim_cur = lim.rlim_max;
  if (setrlimit(RLIMIT_NOFILE, &lim) != 0) spdlog::warn("cannot raise the open-file limit");
}

// Whether `host` (an IP address, as --listen takes it) is a loopback address.
bool is_loopback(const std::string& host) { return host == "::1" || host.rfind("127.", 0) == 0; }

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

  raise_fd_limit();

  std::error_code ec;
  std::filesystem::create_directories(cfg.data_dir, ec);
  if (ec) return fail("cannot create data dir " + cfg.data_dir + ": " + ec.message());

  auto admin = service::load_or_create_admin_token(cfg.data_dir, cfg.admin_token, SecureRandom::instance());
  if (!admin.ok()) return fail("admin token: " + admin.status().message());

  storage::StoreOptions store_options;
  store_options.path = cfg.db_path;
  store_options.synchronous = cfg.db_sync == "full" ? "FULL" : "NORMAL";
  store_options.readers = cfg.threads;
  store_options.detail_cache_entries = static_cast<size_t>(cfg.read_cache_entries);
  auto store = storage::SqliteStore::open(store_options, SystemClock::instance());
  if (!store.ok()) return fail("database " + cfg.db_path + ": " + store.status().message());

  auto devices = scheduler::parse_devices(cfg.devices, fl::cuda_device_count());
  if (!devices.ok()) return fail(devices.status().message());
  int cpu_slots = 0;
  for (const auto& d : *devices) cpu_slots += d.torch_device == "cpu";
  const int cores = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  const int torch_threads = cfg.torch_threads > 0 ? cfg.torch_threads : std::max(1, cores / std::max(1, cpu_slots));
  if (Status s = fl::set_torch_threads(torch_threads); !s.is_ok()) spdlog::warn("{}", s.message());

  // Meters best first, drained devices as the admin left them, and the carbon intensity.
  scheduler::MeterOptions meter_options;
  meter_options.mode = cfg.energy_meter;
  meter_options.gpu_profile = cfg.gpu_power_profile;
  auto metered = scheduler::make_metered_devices(*devices, meter_options, SystemClock::instance());
  if (!metered.ok()) return fail(metered.status().message());
  auto drained = (*store)->list_drained_devices();
  if (!drained.ok()) return fail("database: " + drained.status().message());
  scheduler::DeviceInventory inventory(std::move(*metered), SystemClock::instance(),
                                       std::set<std::string>(drained->begin(), drained->end()));
  inventory.start_sampler(5'000);  // keeps RAPL counters from wrapping unseen
  auto carbon = cfg.carbon_file.empty()
                    ? Result<scheduler::CarbonIntensity>(scheduler::CarbonIntensity::constant(scheduler::kDefaultCarbonGPerKwh))
                    : scheduler::CarbonIntensity::load_csv(cfg.carbon_file);
  if (!carbon.ok()) return fail("--carbon-file: " + carbon.status().message());
  // The placement policy (validated by parse_args; the intensity is the one the ledger uses).
  scheduler::DispatchOptions dispatch_options;
  dispatch_options.policy = cfg.policy;
  dispatch_options.eta = cfg.energy_eta;
  dispatch_options.carbon_horizon_hours = cfg.carbon_horizon_hours;
  dispatch_options.prior_round_seconds = cfg.round_seconds_prior;
  dispatch_options.carbon = &*carbon;
  auto dispatcher = scheduler::Dispatcher::create(dispatch_options);
  if (!dispatcher.ok()) return fail("--policy: " + dispatcher.status().message());
  if (cfg.policy == "carbon" && cfg.carbon_file.empty())
    spdlog::warn("--policy carbon without --carbon-file: the intensity is constant, so nothing is ever deferred");
  scheduler::PlacementBoard board;
  service::EnergyOptions energy;
  energy.inventory = &inventory;
  energy.dispatcher = &*dispatcher;
  // Why groups wait (GET /v1/groups, /v1/activities/{id}, /metrics): the store, the policy's notes,
  // the devices.
  scheduler::WaitingExplainer waiting(**store, &board, &inventory, cfg.grouping == "sequential");
  energy.waiting = &waiting;
  energy.carbon_source = cfg.carbon_file.empty() ? "constant" : cfg.carbon_file;

  // The executor exists after the App (it reports to the App's metrics); the hooks reach it
  // through this pointer, set before the server accepts the first request.
  // Declared before the executor, so that they outlive it: its workers' jobs cancel their
  // Slurm jobs as the executor stops, on every path out of main.
  std::unique_ptr<scheduler::SlurmClient> slurm_jobs;
  std::unique_ptr<scheduler::ClusterBackend> cluster_backend;
  std::unique_ptr<scheduler::Executor> executor;
  energy.on_quotas_changed = [&executor] { executor->submitted(); };
  energy.training_health = [&executor] { return executor ? executor->storage_health() : Status::ok(); };
  tenants::ActivityHooks hooks;
  hooks.check_dataset = [&cfg](const std::string& dataset) { return fl::check_dataset_available(cfg.data_dir, dataset); };
  hooks.on_submitted = [&executor](const Activity&) { executor->submitted(); };
  hooks.on_cancelled = [&executor](const Activity& a) { executor->cancelled(a.id); };
  service::EventStreamOptions event_options;
  event_options.max_per_tenant = static_cast<size_t>(cfg.max_streams_per_tenant);
  event_options.keepalive =
      std::chrono::milliseconds(std::max<int64_t>(1, static_cast<int64_t>(cfg.event_keepalive_seconds * 1000)));
  // Where /metrics is served and whether it needs a token (--metrics-listen, --metrics-token[-file]).
  service::MetricsEndpointOptions scrape;
  scrape.on_main_listener = !cfg.metrics_listen;
  scrape.token = cfg.metrics_token;
  if (!cfg.metrics_token_file.empty()) {
    auto contents = read_file(cfg.metrics_token_file);
    if (!contents.ok()) return fail("--metrics-token-file: " + contents.status().message());
    auto token = service::metrics_token_from_file_contents(*contents);
    if (!token.ok()) return fail(token.status().message());
    scrape.token = *token;
  }
  service::App app(**store, SystemClock::instance(), SecureRandom::instance(), tenants::sha256_hex(admin->token),
                   hooks, energy, event_options, scrape, cfg.data_dir);
  // Stored events older than --event-retention go, now and every hour.
  service::EventRetention retention(**store, SystemClock::instance(), std::chrono::seconds(cfg.event_retention_seconds));
  retention.start();

  scheduler::ExecutorOptions exec_options;
  exec_options.devices = *devices;
  exec_options.data_dir = cfg.data_dir;
  exec_options.client_failure_rate = cfg.client_failure_rate;
  exec_options.grouping.policy = *scheduler::parse_grouping_policy(cfg.grouping);  // validated by parse_args
  exec_options.grouping.merge_window_seconds = cfg.merge_window_seconds;
  exec_options.grouping.consolidation_fraction = cfg.consolidation_fraction;
  exec_options.grouping.merge_across_tenants = cfg.merge_across_tenants;
  exec_options.grouping.merge_loss_kinds = cfg.merge_loss_kinds;
  exec_options.grouping.split_by_loss_kind = cfg.split_by_loss_kind;
  exec_options.grouping.max_members = cfg.max_group_size;
  exec_options.split.max_groups = cfg.max_groups;
  exec_options.split.rule = *scheduler::parse_split_rule(cfg.split_rule);  // validated by parse_args
  exec_options.affinity_every = cfg.affinity_every;
  exec_options.federation_lanes = cfg.federation_lanes;
  exec_options.task_balance = *fl::parse_task_balance(cfg.task_balance);
  exec_options.head_calibration = cfg.head_calibration;
  exec_options.calibrate_every_client = cfg.head_calibration_clients == "all";
  exec_options.guard.window = cfg.merge_guard_window;
  exec_options.guard.lag_ratio = cfg.merge_guard_lag;
  exec_options.storage_retry_max_ms = static_cast<int64_t>(cfg.storage_retry_max_seconds * 1000);
  exec_options.torch_threads = torch_threads;
  exec_options.inventory = &inventory;
  exec_options.carbon = &*carbon;
  exec_options.dispatcher = &*dispatcher;
  exec_options.board = &board;
  exec_options.gpu_profile = cfg.gpu_power_profile;
  exec_options.client_pools = [&app](const std::string& federation) { return app.client_pool(federation); };
  // Crash tests only (core/crash_point_env.h): die right after a chosen file operation.
  std::unique_ptr<CrashPointEnv> crash_env;
  if (const char* at = std::getenv("MUFL_CRASH_AT"); at && *at) {
    std::string error;
    auto point = parse_crash_point(at, error);
    if (!point) return fail(error);
    spdlog::warn("MUFL_CRASH_AT={}: this process kills itself at that point (crash tests only)", at);
    crash_env = std::make_unique<CrashPointEnv>(Env::posix(), *point);
    exec_options.env = crash_env.get();
  }
  // --cluster slurm: rounds of cluster devices' groups run in mufl-worker jobs (docs/cluster.md);
  // the backend is made once the server listens (the workers' default URL is its address).
  if (cfg.cluster == "slurm")
    exec_options.cluster_backend = [&cluster_backend](const scheduler::Device& d) {
      return cluster_backend->for_device(d);
    };
  executor = std::make_unique<scheduler::Executor>(**store, SystemClock::instance(), exec_options, &app.metrics());
  std::string device_names = devices->empty() ? "no device (API only)" : "";
  for (const auto& d : *devices) device_names += (device_names.empty() ? "" : ", ") + d.name;

  service::HttpServerOptions http;
  http.host = cfg.listen_host;
  http.port = cfg.listen_port;
  http.io_threads = cfg.threads;
  http.handler_threads = cfg.handler_threads;
  http.body_memory = static_cast<size_t>(cfg.body_memory_mb) << 20;
  http.max_connections = static_cast<size_t>(cfg.max_connections);
  http.server_name = std::string("mufld/") + service::kVersion;
  http.tls_cert_file = cfg.tls_cert_file;
  http.tls_key_file = cfg.tls_key_file;
  // Bounded reads (Cost::kQuick routes) answer on the I/O threads; the rest on the pool.
  http.is_quick = [&app](const service::HttpRequest& r) { return app.router().is_quick(r); };
  // A lease's update may be larger than the default body limit: as large as its model implies.
  http.body_limit_for = [&app](std::string_view method, std::string_view target, std::string_view authorization) {
    if (auto limit = service::worker_body_limit(app.workers(), method, target, authorization)) return limit;
    return service::work_body_limit(app.leases(), method, target);
  };
  service::HttpServer server(http, [&app](service::HttpRequest&& r) { return app.handle(std::move(r)); });
  if (Status s = server.listen(); !s.is_ok()) return fail(s.message());
  // The executor starts once the server listens: a worker job it submits can reach it.
  std::unique_ptr<scheduler::ClusterWatch> cluster_watch;
  if (cfg.cluster == "slurm") {
    scheduler::SlurmCliOptions slurm_options;
    slurm_options.partition = cfg.slurm_partition;
    slurm_jobs = scheduler::make_slurm_cli(slurm_options);
    scheduler::ClusterBackendOptions backend_options;
    backend_options.worker_url = !cfg.worker_url.empty()
                                     ? cfg.worker_url
                                     : std::string(cfg.tls_cert_file.empty() ? "http" : "https") + "://" +
                                           cfg.listen_host + ":" + std::to_string(server.port());
    backend_options.partition = cfg.slurm_partition;
    backend_options.account = cfg.slurm_account;
    backend_options.sbatch_args = cfg.slurm_sbatch_args;
    backend_options.worker_command = cfg.worker_command;
    backend_options.gpu_profile = cfg.gpu_power_profile;
    backend_options.on_energy = [&inventory](const std::string& device, double joules, const std::string& meter,
                                             double seconds) {
      if (Status s = inventory.add_reported_energy(device, joules, meter, seconds); !s.is_ok())
        spdlog::warn("cluster: {}: the worker's energy report is not counted: {}", device, s.message());
    };
    backend_options.store = &**store;
    // The limit placement chose for the group (the energy and carbon policies), when below the highest.
    backend_options.power_limit = [&inventory](const std::string& device) -> std::optional<double> {
      auto d = inventory.get(device);
      if (!d.ok() || !d->power_limits || d->power_limits->current_watts >= d->power_limits->max_watts) return std::nullopt;
      return d->power_limits->current_watts;
    };
    cluster_backend = std::make_unique<scheduler::ClusterBackend>(*slurm_jobs, app.workers(), backend_options);
    // Before the first request (the server runs later): an adopted worker's poll must find it.
    if (auto left = cluster_backend->reconcile_workers(); !left.ok())
      spdlog::warn("cluster: cannot list the worker jobs an earlier mufld left: {}", left.status().message());
    else if (left->adopted + left->cancelled + left->forgotten > 0)
      spdlog::info("cluster: of the workers an earlier mufld left, {} adopted, {} jobs cancelled, {} gone", left->adopted,
                   left->cancelled, left->forgotten);
    spdlog::info("cluster: worker jobs run {} and reach mufld at {}", backend_options.worker_command.front(),
                 backend_options.worker_url);
    // The cluster's GPUs join the devices now and as Slurm reports more.
    scheduler::ClusterWatchOptions watch_options;
    watch_options.period_ms = static_cast<int64_t>(cfg.cluster_refresh_seconds * 1000);
    watch_options.gpu_profile = cfg.gpu_power_profile;
    cluster_watch = std::make_unique<scheduler::ClusterWatch>(
        *slurm_jobs, inventory, SystemClock::instance(), watch_options,
        [&executor](const std::vector<scheduler::Device>& added) { executor->add_devices(added); });
    if (Status s = cluster_watch->start(); !s.is_ok())
      spdlog::warn("cluster: Slurm did not answer at start ({}); asked again every {:.0f} s", s.message(),
                   cfg.cluster_refresh_seconds);
  }
  if (Status s = executor->start(); !s.is_ok()) return fail("executor: " + s.message());
  // --metrics-listen: /metrics alone on a small server of its own, stopped after the main one.
  std::unique_ptr<service::HttpServer> metrics_server;
  std::thread metrics_thread;
  if (cfg.metrics_listen) {
    service::HttpServerOptions m;
    m.host = cfg.metrics_host;
    m.port = cfg.metrics_port;
    m.io_threads = 1;
    m.handler_threads = 1;
    m.max_connections = 64;  // scrapers, not clients
    m.handle_signals = false;  // the main server's shutdown stops it
    m.server_name = http.server_name;
    metrics_server = std::make_unique<service::HttpServer>(
        m, [&app](service::HttpRequest&& r) { return app.handle_metrics(std::move(r)); });
    if (Status s = metrics_server->listen(); !s.is_ok()) {
      if (cluster_watch) cluster_watch->stop();
      executor->stop();  // before the App its jobs report to goes
      if (cluster_backend) cluster_backend->shutdown();
      return fail("--metrics-listen: " + s.message());
    }
    metrics_thread = std::thread([&metrics_server] { metrics_server->run(); });
  }

  const bool tls = !cfg.tls_cert_file.empty();
  spdlog::info("mufld {} serving {}://{}:{} (data dir {}, database {}, {} threads)", service::kVersion,
               tls ? "https" : "http", cfg.listen_host, server.port(), cfg.data_dir, cfg.db_path, cfg.threads);
  if (tls) spdlog::info("TLS certificate {}, key {}", cfg.tls_cert_file, cfg.tls_key_file);
  else if (!is_loopback(cfg.listen_host))
    spdlog::warn("serving plain HTTP on {}: bearer tokens cross the network in clear; use --tls-cert and --tls-key", cfg.listen_host);
  spdlog::info("training on {} ({} LibTorch threads each), grouping {}, placement policy {}", device_names,
               torch_threads, cfg.grouping, cfg.policy);
  spdlog::info("admin token: {}", admin->source == "MUFL_ADMIN_TOKEN" ? "from MUFL_ADMIN_TOKEN"
                                                                      : "in " + admin->source);
  spdlog::info("/metrics: {}, {}",
               metrics_server ? "on http://" + cfg.metrics_host + ":" + std::to_string(metrics_server->port()) + " only"
                              : std::string("on the main listener"),
               scrape.token.empty() ? "public" : "bearer token required");
  // Machine-readable lines on stdout, for scripts and tests that start mufld on port 0; the
  // metrics line comes first, so "listening" means everything listens.
  if (metrics_server)
    std::printf("mufld metrics listening on %s:%u\n", cfg.metrics_host.c_str(),
                static_cast<unsigned>(metrics_server->port()));
  std::printf("mufld listening on %s:%u\n", cfg.listen_host.c_str(), static_cast<unsigned>(server.port()));
  std::fflush(stdout);

  server.run();
  if (metrics_server) {
    metrics_server->shutdown();
    metrics_thread.join();
  }
  if (cluster_watch) cluster_watch->stop();  // no device is added while the executor stops
  executor->stop();  // training in progress stays recorded and resumes at the next start
  if (cluster_backend) cluster_backend->shutdown();  // no worker job is left in Slurm
  if (size_t blocked = server.handlers_running(); blocked > 0) {
    // A handler blocked past the drain timeout: destroying the server (and the App it uses)
    // would wait for it or free what it uses. Its transaction, if any, is SQLite's to roll back.
    spdlog::warn("mufld stopped with {} request handler(s) still blocked; exiting without waiting for them", blocked);
    spdlog::shutdown();
    std::fflush(stdout);
    std::_Exit(0);
  }
  spdlog::info("mufld stopped cleanly");
  return 0;
}
