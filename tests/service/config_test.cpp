#include "service/config.h"

#include <catch2/catch.hpp>

using namespace mufl;
using namespace mufl::service;

namespace {

Result<ParsedArgs> parse(std::vector<const char*> args, std::vector<const char*> env = {}) {
  args.insert(args.begin(), "mufld");
  env.push_back(nullptr);
  return parse_args(static_cast<int>(args.size()), args.data(), env.data());
}

}  // namespace

TEST_CASE("config: defaults") {
  auto r = parse({});
  REQUIRE(r.ok());
  const Config& c = r->config;
  CHECK(c.listen_host == "127.0.0.1");
  CHECK(c.listen_port == 8080);
  CHECK(c.data_dir == "var");
  CHECK(c.db_path == "var/mufl.db");
  CHECK(c.db_sync == "full");
  CHECK(c.threads >= 1);
  CHECK(c.handler_threads == std::max(16, c.threads));
  CHECK(c.body_memory_mb == 16);
  CHECK(c.log_level == "info");
  CHECK(c.admin_token.empty());
}

TEST_CASE("config: flags, environment variables, and flags winning over variables") {
  auto r = parse({"--listen", "0.0.0.0:9000", "--threads", "3", "--handler-threads", "5", "--body-memory", "0"},
                 {"MUFL_DATA_DIR=/srv/mufl", "MUFL_THREADS=7", "MUFL_LOG_LEVEL=debug", "MUFL_ADMIN_TOKEN=s3cret",
                  "PATH=/usr/bin"});
  REQUIRE(r.ok());
  CHECK(r->config.listen_host == "0.0.0.0");
  CHECK(r->config.listen_port == 9000);
  CHECK(r->config.threads == 3);
  CHECK(r->config.handler_threads == 5);
  CHECK(r->config.body_memory_mb == 0);
  CHECK(r->config.data_dir == "/srv/mufl");
  CHECK(r->config.db_path == "/srv/mufl/mufl.db");
  CHECK(r->config.log_level == "debug");
  CHECK(r->config.admin_token == "s3cret");
}

TEST_CASE("config: --help documents every flag and the variables") {
  auto r = parse({"--help"});
  REQUIRE(r.ok());
  CHECK(r->exit_now);
  for (const char* s : {"--listen", "--data-dir", "--db", "--db-sync", "--threads", "--log-level", "MUFL_ADMIN_TOKEN",
                        "admin.token", "MUFL_"})
    CHECK(r->output.find(s) != std::string::npos);
}

TEST_CASE("config: bad values are refused with a message") {
  for (auto args : std::vector<std::vector<const char*>>{{"--listen", "nowhere"},
                                                         {"--listen", "127.0.0.1:70000"},
                                                         {"--listen", "127.0.0.1:"},
                                                         {"--threads", "-1"},
                                                         {"--threads", "many"},
                                                         {"--handler-threads", "-1"},
                                                         {"--handler-threads", "1025"},
                                                         {"--body-memory", "-1"},
                                                         {"--body-memory", "65537"},
                                                         {"--log-level", "loud"},
                                                         {"--db-sync", "sometimes"},
                                                         {"--federation-lanes", "-1"},
                                                         {"--federation-lanes", "257"},
                                                         {"--no-such-flag"}}) {
    auto r = parse(args);
    INFO(args[0] << " " << (args.size() > 1 ? args[1] : ""));
    REQUIRE_FALSE(r.ok());
    CHECK(r.status().is_invalid_argument());
    CHECK_FALSE(r.status().message().empty());
  }
  CHECK_FALSE(parse({}, {"MUFL_THREADS=lots"}).ok());
}

TEST_CASE("config: --federation-lanes") {
  CHECK(parse({})->config.federation_lanes == 8);
  CHECK(parse({"--federation-lanes", "0"})->config.federation_lanes == 0);
  CHECK(parse({"--federation-lanes", "32"})->config.federation_lanes == 32);
}

TEST_CASE("config: --cluster and the Slurm flags") {
  auto d = parse({});
  REQUIRE(d.ok());
  CHECK(d->config.cluster == "none");
  CHECK(d->config.cluster_refresh_seconds == 30);
  auto r = parse({"--cluster", "slurm", "--worker-url", "http://head:8080", "--slurm-partition", "gpu",
                  "--slurm-account", "ml-team", "--slurm-sbatch-arg=--time=04:00:00", "--slurm-sbatch-arg=--qos=low",
                  "--cluster-refresh", "10"});
  REQUIRE(r.ok());
  CHECK(r->config.cluster == "slurm");
  CHECK(r->config.worker_url == "http://head:8080");
  CHECK(r->config.slurm_partition == "gpu");
  CHECK(r->config.slurm_account == "ml-team");
  CHECK(r->config.slurm_sbatch_args == std::vector<std::string>{"--time=04:00:00", "--qos=low"});
  CHECK(r->config.cluster_refresh_seconds == 10);
  CHECK(d->config.worker_command == std::vector<std::string>{"mufl-worker"});
  auto w = parse({"--worker-command", "/opt/mufl/mufl-worker  --data-dir /shared"});
  REQUIRE(w.ok());
  CHECK(w->config.worker_command == std::vector<std::string>{"/opt/mufl/mufl-worker", "--data-dir", "/shared"});
  CHECK_FALSE(parse({"--worker-command", "  "}).ok());
  for (const std::vector<const char*>& bad : std::vector<std::vector<const char*>>{
           {"--cluster", "k8s"},
           {"--cluster", "slurm", "--listen", "0.0.0.0:8080"},  // no --worker-url, and no address to default to
           {"--cluster", "slurm", "--worker-url", "head:8080"},  // no scheme
           {"--slurm-partition", "gpu; rm -rf /"},
           {"--slurm-account", "a b"},
           {"--slurm-sbatch-arg=--gres=gpu:2"},
           {"--slurm-sbatch-arg=-wnode1"},
           {"--slurm-sbatch-arg=--job-name=x"},
           {"--slurm-sbatch-arg=--export=ALL"},
           {"--slurm-sbatch-arg=--get-user-env"},
           {"--slurm-sbatch-arg=time=1"},
           {"--cluster-refresh", "1"}}) {
    auto bad_r = parse(bad);
    INFO(bad[0] << " " << (bad.size() > 1 ? bad[1] : ""));
    REQUIRE_FALSE(bad_r.ok());
    CHECK(bad_r.status().is_invalid_argument());
  }
}

TEST_CASE("config: energy flags") {
  auto d = parse({});
  REQUIRE(d.ok());
  CHECK(d->config.energy_meter == "auto");
  CHECK(d->config.gpu_power_profile == "V100");
  CHECK(d->config.carbon_file.empty());
  auto r = parse({"--energy-meter", "model", "--carbon-file", "/data/de.csv"}, {"MUFL_GPU_POWER_PROFILE=A40"});
  REQUIRE(r.ok());
  CHECK(r->config.energy_meter == "model");
  CHECK(r->config.carbon_file == "/data/de.csv");
  CHECK(r->config.gpu_power_profile == "A40");
  CHECK(parse({"--energy-meter", "nvml"}).status().is_invalid_argument());
  CHECK(parse({"--gpu-power-profile", ""}).status().is_invalid_argument());
}

TEST_CASE("config: placement policy flags") {
  auto d = parse({});
  REQUIRE(d.ok());
  CHECK(d->config.policy == "fifo");
  CHECK(d->config.energy_eta == 0.9);
  CHECK(d->config.carbon_horizon_hours == 24);
  CHECK(d->config.round_seconds_prior == 60);
  auto r = parse({"--policy", "carbon", "--carbon-horizon", "12", "--round-seconds-prior", "5"},
                 {"MUFL_ENERGY_ETA=0.5"});
  REQUIRE(r.ok());
  CHECK(r->config.policy == "carbon");
  CHECK(r->config.carbon_horizon_hours == 12);
  CHECK(r->config.round_seconds_prior == 5);
  CHECK(r->config.energy_eta == 0.5);
  auto env = parse({}, {"MUFL_POLICY=fair"});
  REQUIRE(env.ok());
  CHECK(env->config.policy == "fair");
  CHECK(parse({"--policy", "fair"}, {"MUFL_POLICY=energy"})->config.policy == "fair");  // the flag wins
  auto help = parse({"--help"});
  REQUIRE(help.ok());
  for (const char* s : {"--policy", "--energy-eta", "--carbon-horizon", "--round-seconds-prior", "fifo", "carbon"})
    CHECK(help->output.find(s) != std::string::npos);
  for (auto args : std::vector<std::vector<const char*>>{{"--policy", "greedy"},
                                                         {"--policy", ""},
                                                         {"--energy-eta", "1.5"},
                                                         {"--energy-eta", "-0.1"},
                                                         {"--carbon-horizon", "0"},
                                                         {"--carbon-horizon", "9000"},
                                                         {"--round-seconds-prior", "0"},
                                                         {"--round-seconds-prior", "lots"}}) {
    auto bad = parse(args);
    INFO(args[0] << " " << args[1]);
    REQUIRE_FALSE(bad.ok());
    CHECK(bad.status().is_invalid_argument());
    CHECK(bad.status().message().find(args[0]) != std::string::npos);  // names the flag
  }
  CHECK(parse({}, {"MUFL_POLICY=greedy"}).status().is_invalid_argument());
}

TEST_CASE("config: event retention takes a whole number with s, m, h or d, and the keep-alive seconds") {
  auto d = parse({});
  REQUIRE(d.ok());
  CHECK(d->config.event_retention_seconds == 7 * 86400);
  CHECK(d->config.event_keepalive_seconds == 15);
  auto r = parse({"--event-retention", "12h", "--event-keepalive", "0.5"});
  REQUIRE(r.ok());
  CHECK(r->config.event_retention_seconds == 12 * 3600);
  CHECK(r->config.event_keepalive_seconds == 0.5);
  CHECK(parse({"--event-retention", "90"})->config.event_retention_seconds == 90);
  CHECK(parse({"--event-retention", "30m"})->config.event_retention_seconds == 1800);
  CHECK(parse({}, {"MUFL_EVENT_RETENTION=2d"})->config.event_retention_seconds == 2 * 86400);
  for (const char* bad : {"0", "0d", "1w", "d", "-1h", "1.5h", "3651d", ""})
    CHECK(parse({"--event-retention", bad}).status().is_invalid_argument());
  for (const char* bad : {"0", "-1", "3601"}) CHECK(parse({"--event-keepalive", bad}).status().is_invalid_argument());
}

TEST_CASE("config: --max-streams-per-tenant defaults to 16, 0 means no limit, out of range is refused") {
  CHECK(parse({})->config.max_streams_per_tenant == 16);
  CHECK(parse({"--max-streams-per-tenant", "0"})->config.max_streams_per_tenant == 0);
  CHECK(parse({}, {"MUFL_MAX_STREAMS_PER_TENANT=3"})->config.max_streams_per_tenant == 3);
  for (const char* bad : {"-1", "100001", "x"})
    CHECK(parse({"--max-streams-per-tenant", bad}).status().is_invalid_argument());
}

TEST_CASE("config: --read-cache defaults to 16384, 0 turns it off, out of range is refused") {
  CHECK(parse({})->config.read_cache_entries == 16384);
  CHECK(parse({"--read-cache", "0"})->config.read_cache_entries == 0);
  CHECK(parse({}, {"MUFL_READ_CACHE=5"})->config.read_cache_entries == 5);
  for (const char* bad : {"-1", "1000001", "x"}) CHECK(parse({"--read-cache", bad}).status().is_invalid_argument());
}

TEST_CASE("config: --max-connections defaults to 1024, 0 means no limit, negatives are refused") {
  CHECK(parse({})->config.max_connections == 1024);
  CHECK(parse({"--max-connections", "0"})->config.max_connections == 0);
  CHECK(parse({}, {"MUFL_MAX_CONNECTIONS=7"})->config.max_connections == 7);
  for (const char* bad : {"-1", "1000001", "x"}) CHECK(parse({"--max-connections", bad}).status().is_invalid_argument());
}

TEST_CASE("config: --storage-retry-max defaults to 60 s and is bounded") {
  CHECK(parse({})->config.storage_retry_max_seconds == 60);
  CHECK(parse({"--storage-retry-max", "2"})->config.storage_retry_max_seconds == 2);
  for (const char* bad : {"0", "0.5", "3601", "x"})
    CHECK(parse({"--storage-retry-max", bad}).status().is_invalid_argument());
}

TEST_CASE("config: --tls-cert and --tls-key go together, default plain HTTP") {
  CHECK(parse({})->config.tls_cert_file.empty());
  CHECK(parse({})->config.tls_key_file.empty());
  auto both = parse({"--tls-cert", "/etc/mufl/cert.pem"}, {"MUFL_TLS_KEY=/etc/mufl/key.pem"});
  REQUIRE(both.ok());
  CHECK(both->config.tls_cert_file == "/etc/mufl/cert.pem");
  CHECK(both->config.tls_key_file == "/etc/mufl/key.pem");
  auto cert_only = parse({"--tls-cert", "/etc/mufl/cert.pem"});
  REQUIRE_FALSE(cert_only.ok());
  CHECK(cert_only.status().message() == "--tls-cert needs --tls-key (HTTPS takes both)");
  auto key_only = parse({}, {"MUFL_TLS_KEY=/etc/mufl/key.pem"});
  REQUIRE_FALSE(key_only.ok());
  CHECK(key_only.status().message() == "--tls-key needs --tls-cert (HTTPS takes both)");
  CHECK(parse({"--help"})->output.find("--tls-cert") != std::string::npos);
}

TEST_CASE("config: --metrics-listen and the metrics token") {
  auto d = parse({});
  REQUIRE(d.ok());
  CHECK_FALSE(d->config.metrics_listen);  // default: /metrics on --listen, public
  CHECK(d->config.metrics_token.empty());
  CHECK(d->config.metrics_token_file.empty());

  auto r = parse({"--metrics-listen", "[::1]:9464", "--metrics-token-file", "/etc/mufl/metrics.token"});
  REQUIRE(r.ok());
  CHECK(r->config.metrics_listen);
  CHECK(r->config.metrics_host == "::1");
  CHECK(r->config.metrics_port == 9464);
  CHECK(r->config.metrics_token_file == "/etc/mufl/metrics.token");
  CHECK(r->config.listen_port == 8080);  // the main listener is untouched

  auto env = parse({}, {"MUFL_METRICS_TOKEN=from-env"});
  REQUIRE(env.ok());
  CHECK(env->config.metrics_token == "from-env");

  for (auto args : std::vector<std::vector<const char*>>{{"--metrics-listen", "9464"},
                                                         {"--metrics-listen", "127.0.0.1:99999"},
                                                         {"--metrics-token", "two words"},
                                                         {"--metrics-token", ""},
                                                         {"--metrics-token-file", ""},
                                                         {"--metrics-token", "a", "--metrics-token-file", "f"}}) {
    auto bad = parse(args);
    INFO(args[0] << " " << args[1]);
    REQUIRE_FALSE(bad.ok());
    CHECK(bad.status().message().find(args[0]) != std::string::npos);
  }
  auto help = parse({"--help"});
  REQUIRE(help.ok());
  for (const char* s : {"--metrics-listen", "--metrics-token", "--metrics-token-file"})
    CHECK(help->output.find(s) != std::string::npos);
}

TEST_CASE("config: the metrics token file's first line, trimmed, is the token") {
  CHECK(*metrics_token_from_file_contents("s3cret\n") == "s3cret");
  CHECK(*metrics_token_from_file_contents("  s3cret \r\nignored\n") == "s3cret");
  CHECK(*metrics_token_from_file_contents("s3cret") == "s3cret");
  for (const std::string bad : {"", "\n", "   \nsecret\n", "two words\n"})
    CHECK(metrics_token_from_file_contents(bad).status().is_invalid_argument());
}

TEST_CASE("config: the merge guard defaults to a window of 3 and a lag of 0.25, and refuses values out of range") {
  auto d = parse({});
  REQUIRE(d.ok());
  CHECK(d->config.merge_guard_window == 3);
  CHECK(d->config.merge_guard_lag == 0.25);
  auto off = parse({"--merge-guard-window", "0", "--merge-guard-lag", "0.5"});
  REQUIRE(off.ok());
  CHECK(off->config.merge_guard_window == 0);
  CHECK(off->config.merge_guard_lag == 0.5);
  for (const auto& [flag, value] : std::vector<std::pair<std::string, std::string>>{
           {"--merge-guard-window", "-1"}, {"--merge-guard-window", "101"}, {"--merge-guard-lag", "1.5"},
           {"--merge-guard-lag", "-0.1"}}) {
    auto bad = parse({flag.c_str(), value.c_str()});
    REQUIRE_FALSE(bad.ok());
    CHECK_THAT(bad.status().message(), Catch::Contains(flag));
  }
}

TEST_CASE("config: --task-balance defaults to by_kind, takes every rule, refuses anything else") {
  auto d = parse({});
  REQUIRE(d.ok());
  CHECK(d->config.task_balance == "by_kind");
  for (const char* rule : {"cap", "cap_merged", "cap_equal", "by_kind"}) {
    auto r = parse({"--task-balance", rule});
    REQUIRE(r.ok());
    CHECK(r->config.task_balance == rule);
  }
  auto cap = parse({"--task-balance", "none"});
  REQUIRE(cap.ok());
  CHECK(cap->config.task_balance == "none");
  auto bad = parse({"--task-balance", "gradnorm"});
  REQUIRE_FALSE(bad.ok());
  CHECK_THAT(bad.status().message(), Catch::Contains("--task-balance"));
}

TEST_CASE("config: --head-calibration-clients defaults to round, takes all, refuses anything else") {
  auto d = parse({});
  REQUIRE(d.ok());
  CHECK(d->config.head_calibration_clients == "round");
  auto all = parse({"--head-calibration-clients", "all"});
  REQUIRE(all.ok());
  CHECK(all->config.head_calibration_clients == "all");
  auto bad = parse({"--head-calibration-clients", "some"});
  REQUIRE_FALSE(bad.ok());
  CHECK_THAT(bad.status().message(), Catch::Contains("--head-calibration-clients"));
}

TEST_CASE("config: --split-rule defaults to mas, takes no_harm, refuses anything else, and the loss-kind switches are bools") {
  auto d = parse({});
  REQUIRE(d.ok());
  CHECK(d->config.split_rule == "mas");
  CHECK(d->config.merge_loss_kinds);
  CHECK(d->config.split_by_loss_kind);
  auto no_harm = parse({"--split-rule", "no_harm", "--merge-loss-kinds", "false", "--split-by-loss-kind", "false"});
  REQUIRE(no_harm.ok());
  CHECK(no_harm->config.split_rule == "no_harm");
  CHECK_FALSE(no_harm->config.merge_loss_kinds);
  CHECK_FALSE(no_harm->config.split_by_loss_kind);
  auto kind_not_bool = parse({"--split-by-loss-kind", "maybe"});
  REQUIRE_FALSE(kind_not_bool.ok());
  CHECK_THAT(kind_not_bool.status().message(), Catch::Contains("split-by-loss-kind"));
  auto bad = parse({"--split-rule", "best"});
  REQUIRE_FALSE(bad.ok());
  CHECK_THAT(bad.status().message(), Catch::Contains("--split-rule"));
  auto not_bool = parse({"--merge-loss-kinds", "sometimes"});
  REQUIRE_FALSE(not_bool.ok());
  CHECK_THAT(not_bool.status().message(), Catch::Contains("merge-loss-kinds"));
}
