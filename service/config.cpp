#include "service/config.h"

#include <boost/program_options.hpp>

#include <iterator>
#include <optional>
#include <sstream>
#include <thread>

#include "core/strings.h"
#include "fl/encoder_gradient.h"
#include "scheduler/grouping/split.h"
#include "service/version.h"

namespace mufl::service {
namespace po = boost::program_options;

namespace {

// "MUFL_DATA_DIR" → "data-dir"; other variables → "" (ignored).
std::string env_to_option(const std::string& var, const po::options_description& desc) {
  if (var.rfind("MUFL_", 0) != 0 || var == "MUFL_ADMIN_TOKEN") return "";
  std::string name = var.substr(5);
  for (char& c : name) c = c == '_' ? '-' : static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return desc.find_nothrow(name, false) ? name : "";
}

// HOST:PORT of flag `flag` ("--listen") into `host` and `port`.
Status parse_listen(const std::string& text, const std::string& flag, std::string& out_host, uint16_t& out_port) {
  size_t colon = text.rfind(':');
  if (colon == std::string::npos || colon == 0)
    return Status::invalid_argument(flag + " must be HOST:PORT, e.g. 127.0.0.1:8080");
  std::string host = text.substr(0, colon), port = text.substr(colon + 1);
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') host = host.substr(1, host.size() - 2);
  if (port.empty() || port.size() > 5 || port.find_first_not_of("0123456789") != std::string::npos ||
      std::stoi(port) > 65535)
    return Status::invalid_argument(flag + " port must be a number from 0 to 65535");
  out_host = host;
  out_port = static_cast<uint16_t>(std::stoi(port));
  return Status::ok();
}

// A token may hold any printable ASCII but blanks (it goes into an Authorization header).
bool valid_token(const std::string& t) {
  if (t.empty()) return false;
  for (unsigned char ch : t)
    if (ch <= ' ' || ch >= 0x7f) return false;
  return true;
}

// "7d", "12h", "30m", "90s" or "90" → seconds; nullopt for anything else or 0.
std::optional<int64_t> parse_duration_seconds(const std::string& text) {
  if (text.empty()) return std::nullopt;
  int64_t unit = 1;
  std::string digits = text;
  switch (text.back()) {
    case 's': unit = 1; digits.pop_back(); break;
    case 'm': unit = 60; digits.pop_back(); break;
    case 'h': unit = 3600; digits.pop_back(); break;
    case 'd': unit = 86400; digits.pop_back(); break;
    default: break;
  }
  if (digits.empty() || digits.size() > 9 || digits.find_first_not_of("0123456789") != std::string::npos)
    return std::nullopt;
  const int64_t n = std::stoll(digits) * unit;
  return n > 0 ? std::optional<int64_t>(n) : std::nullopt;
}

// A Slurm name (partition, account), or none: what sbatch takes without quoting.
bool valid_slurm_name(const std::string& s) { return s.size() <= 128 && is_plain_name(s); }

// The --cluster flags: each named, and none of the sbatch arguments mufld sets itself.
Status check_cluster(const Config& c) {
  if (c.cluster != "none" && c.cluster != "slurm") return Status::invalid_argument("--cluster must be none or slurm");
  if (!valid_slurm_name(c.slurm_partition))
    return Status::invalid_argument("--slurm-partition must be a Slurm name (letters, digits, _ - .)");
  if (!valid_slurm_name(c.slurm_account))
    return Status::invalid_argument("--slurm-account must be a Slurm name (letters, digits, _ - .)");
  for (const std::string& a : c.slurm_sbatch_args) {
    if (a.rfind("-", 0) != 0 || a.find_first_of("\n\r") != std::string::npos)
      return Status::invalid_argument("--slurm-sbatch-arg '" + a + "' is not an sbatch option (it starts with -)");
    // --export and --get-user-env too: mufld exports only what the worker needs, never its own
    // environment (which may hold MUFL_ADMIN_TOKEN).
    for (const char* ours : {"--job-name", "-J", "--gres", "--nodelist", "-w", "--parsable", "--wrap", "--partition",
                             "-p", "--account", "-A", "--export", "--get-user-env"})
      if (a == ours || a.rfind(std::string(ours) + "=", 0) == 0 ||
          (ours[1] != '-' && a.rfind(ours, 0) == 0))
        return Status::invalid_argument("--slurm-sbatch-arg '" + a + "': mufld sets " + ours +
                                        " itself (--slurm-partition and --slurm-account for those)");
  }
  if (!(c.cluster_refresh_seconds >= 5 && c.cluster_refresh_seconds <= 3600))
    return Status::invalid_argument("--cluster-refresh must be from 5 to 3600 seconds");
  if (!c.worker_url.empty() && c.worker_url.rfind("http://", 0) != 0 && c.worker_url.rfind("https://", 0) != 0)
    return Status::invalid_argument("--worker-url must be http[s]://HOST:PORT");
  return Status::ok();
}

}  // namespace

Result<std::string> metrics_token_from_file_contents(const std::string& contents) {
  std::string line = contents.substr(0, contents.find('\n'));
  const size_t first = line.find_first_not_of(" \t\r"), last = line.find_last_not_of(" \t\r");
  line = first == std::string::npos ? "" : line.substr(first, last - first + 1);
  if (!valid_token(line))
    return Status::invalid_argument(
        "--metrics-token-file must hold the token on its first line (printable characters, no blanks)");
  return line;
}

Result<ParsedArgs> parse_args(int argc, const char* const* argv, const char* const* env) {
  ParsedArgs out;
  Config& c = out.config;
  std::string listen = "127.0.0.1:8080";
  std::string metrics_listen;
  std::string event_retention = "7d";
  std::string worker_command_text;
  po::options_description desc(
      "mufld: multi-tenant federated-learning job service.\n"
      "Every flag can also be set as an environment variable MUFL_<FLAG> (e.g. MUFL_DATA_DIR);\n"
      "a flag on the command line wins.\n\nOptions");
  desc.add_options()
      ("help,h", "print this help and exit")
      ("version", "print the version and exit")
      ("listen", po::value<std::string>(&listen)->default_value(listen),
       "HOST:PORT to serve HTTP on; port 0 picks a free one")
      ("data-dir", po::value<std::string>(&c.data_dir)->default_value(c.data_dir),
       "directory for the database and admin.token (created when missing)")
      ("db", po::value<std::string>(&c.db_path), "SQLite database file (default <data-dir>/mufl.db)")
      ("db-sync", po::value<std::string>(&c.db_sync)->default_value(c.db_sync),
       "full: every acknowledged change is on disk before the reply (survives power loss);\n"
       "normal: survives a crash of mufld, may lose the last changes on power loss")
      ("threads", po::value<int>(&c.threads)->default_value(0),
       "threads for network I/O (0: one per core)")
      ("handler-threads", po::value<int>(&c.handler_threads)->default_value(0),
       "threads for requests other than quick reads; writes waiting together commit together (0: max(16, --threads))")
      ("body-memory", po::value<int>(&c.body_memory_mb)->default_value(c.body_memory_mb),
       "MiB of large request bodies (over 64 KiB: clients' updates) held in memory at once; more wait, unread\n"
       "(0: no limit)")
      ("log-level", po::value<std::string>(&c.log_level)->default_value(c.log_level),
       "trace, debug, info, warn or error")
      ("devices", po::value<std::string>(&c.devices)->default_value(c.devices),
       "where training runs: cpu:N (N CPU slots), cuda (every GPU), cuda:I, a comma list,\n"
       "auto (every GPU, else one CPU slot), or none (API only: queue work, train nothing)")
      ("torch-threads", po::value<int>(&c.torch_threads)->default_value(c.torch_threads),
       "LibTorch threads per training step (0: cores / CPU slots)")
      ("client-failure-rate", po::value<double>(&c.client_failure_rate)->default_value(c.client_failure_rate),
       "chance that a sampled FL client drops out of a round (simulated; 0 to <1)")
      ("grouping", po::value<std::string>(&c.grouping)->default_value(c.grouping),
       "which activities train together: mufl (merge, measure affinity, split), all_in_one\n"
       "(merge, never split), independent (each alone, in parallel) or sequential (one at a time)")
      ("merge-window", po::value<double>(&c.merge_window_seconds)->default_value(c.merge_window_seconds),
       "seconds a new group waits for more compatible activities before it starts")
      ("consolidation-fraction", po::value<double>(&c.consolidation_fraction)->default_value(c.consolidation_fraction),
       "share of its rounds a merged group trains together before it splits (0 to 1]")
      ("max-group-size", po::value<int>(&c.max_group_size)->default_value(c.max_group_size),
       "most activities one group trains as heads of one model (1 to 256)")
      ("max-groups", po::value<int>(&c.max_groups)->default_value(c.max_groups),
       "most groups one split makes (1 to 16)")
      ("storage-retry-max", po::value<double>(&c.storage_retry_max_seconds)->default_value(c.storage_retry_max_seconds),
       "longest wait (seconds) before a group stopped by a storage error (full disk, I/O error) tries again")
      ("federation-lanes", po::value<int>(&c.federation_lanes)->default_value(c.federation_lanes),
       "groups on federations that run at once; each waits for its clients and aggregates on this host's CPU "
       "without holding a device (0: they take devices)")
      ("cluster", po::value<std::string>(&c.cluster)->default_value(c.cluster),
       "none, or slurm: a Slurm cluster's GPUs are devices too (sinfo, sbatch, squeue, scancel on PATH)")
      ("slurm-partition", po::value<std::string>(&c.slurm_partition), "Slurm partition for sinfo and sbatch")
      ("slurm-account", po::value<std::string>(&c.slurm_account), "Slurm account for sbatch")
      ("slurm-sbatch-arg", po::value<std::vector<std::string>>(&c.slurm_sbatch_args)->composing(),
       "one more sbatch argument for worker jobs, e.g. --slurm-sbatch-arg=--time=04:00:00 (repeatable)")
      ("worker-url", po::value<std::string>(&c.worker_url),
       "the URL mufl-worker jobs reach this mufld at (http[s]://HOST:PORT); default: the --listen address\n"
       "(needed when that is 0.0.0.0 or ::)")
      ("worker-command", po::value<std::string>(&worker_command_text),
       "what a worker job runs on its node: the program and its arguments, split on blanks\n"
       "(default: mufl-worker on the nodes' PATH; e.g. \"/opt/mufl/mufl-worker --data-dir /shared/mufl\")")
      ("cluster-refresh", po::value<double>(&c.cluster_refresh_seconds)->default_value(c.cluster_refresh_seconds),
       "seconds between asks of the cluster for its nodes and GPUs (5 to 3600)")
      ("affinity-every", po::value<int>(&c.affinity_every)->default_value(c.affinity_every),
       "affinity lookahead every N batches while a group consolidates (1 to 10000)")
      ("task-balance", po::value<std::string>(&c.task_balance)->default_value(c.task_balance),
       "balancing of the tasks' encoder gradients in a multi-head group: by_kind (cap_merged in a group of "
       "dense tasks only, cap_equal in one of label tasks only, cap in any other); cap (no task's longer than "
       "the geometric mean of their norms); cap_merged (cap while merged, their plain sum in a group born of "
       "a split); cap_equal (cap while merged, each cut to the shortest in a group born of a split); or none")
      ("head-calibration", po::value<bool>(&c.head_calibration)->default_value(c.head_calibration),
       "at a member's last round in a group of two or more heads, fit its head to the final encoder, one "
       "epoch on the round's clients (true or false)")
      ("head-calibration-clients",
       po::value<std::string>(&c.head_calibration_clients)->default_value(c.head_calibration_clients),
       "the head calibration's clients: round (the last round's) or all (every client: no sampling variance, "
       "about 6 times the pass)")
      ("merge-guard-window", po::value<int>(&c.merge_guard_window)->default_value(c.merge_guard_window),
       "after consolidation, a member whose test loss fell by less than --merge-guard-lag of its mates' over "
       "this many rounds leaves its group alone (0 to 100; 0 turns the guard off)")
      ("merge-guard-lag", po::value<double>(&c.merge_guard_lag)->default_value(c.merge_guard_lag),
       "the merge guard's share of the mates' progress below which a member lags (0 to 1)")
      ("merge-across-tenants", po::value<bool>(&c.merge_across_tenants)->default_value(c.merge_across_tenants),
       "whether activities of different tenants may share a group (true or false)")
      ("split-rule", po::value<std::string>(&c.split_rule)->default_value(c.split_rule),
       "mas: MAS's scoring; no_harm: a member is never kept with mates whose steps raise its loss (a task alone "
       "scores 0; may exceed --max-groups)")
      ("merge-loss-kinds", po::value<bool>(&c.merge_loss_kinds)->default_value(c.merge_loss_kinds),
       "whether label tasks (cross-entropy) and dense tasks (per-pixel losses) may share a group (true or false)")
      ("split-by-loss-kind", po::value<bool>(&c.split_by_loss_kind)->default_value(c.split_by_loss_kind),
       "whether a split keeps label and dense tasks in groups of their own, each trained by its kind's "
       "--task-balance rule (true or false)")
      ("energy-meter", po::value<std::string>(&c.energy_meter)->default_value(c.energy_meter),
       "auto: meter each device best first (NVML, RAPL, power model); model: the power model for all")
      ("gpu-power-profile", po::value<std::string>(&c.gpu_power_profile)->default_value(c.gpu_power_profile),
       "power profile of a GPU that NVML does not meter (V100, A40, P100, RTX6000, …)")
      ("carbon-file", po::value<std::string>(&c.carbon_file),
       "hourly grid carbon intensity CSV (Electricity Maps or EIA format) for grams CO2e;\n"
       "default: a constant 475 g CO2e/kWh (IEA world average)")
      ("policy", po::value<std::string>(&c.policy)->default_value(c.policy),
       "placement policy: which waiting group a free device takes, and when: fifo (highest\n"
       "priority, then oldest), fair (tenant with the smallest device share first), energy\n"
       "(device and power limit by Zeus's cost) or carbon (holds work with slack through hours of\n"
       "high carbon intensity, from --carbon-file; never past a deadline)")
      ("energy-eta", po::value<double>(&c.energy_eta)->default_value(c.energy_eta),
       "energy policy: weight of energy against time in eta*energy + (1-eta)*max_power*time (0 to 1)")
      ("carbon-horizon", po::value<int>(&c.carbon_horizon_hours)->default_value(c.carbon_horizon_hours),
       "carbon policy: hours ahead to look for cleaner hours; also the most an activity without\n"
       "a deadline is held in all (1 to 8760)")
      ("round-seconds-prior", po::value<double>(&c.round_seconds_prior)->default_value(c.round_seconds_prior),
       "seconds per round assumed for a group's slack before its first round is measured (0 to 86400]")
      ("event-retention", po::value<std::string>(&event_retention)->default_value(event_retention),
       "how long stored events (GET /v1/events) are kept: a number with s, m, h or d, e.g. 12h")
      ("event-keepalive", po::value<double>(&c.event_keepalive_seconds)->default_value(c.event_keepalive_seconds),
       "seconds of silence after which an event stream gets a ': keep-alive' comment (0 to 3600]")
      ("max-connections", po::value<int>(&c.max_connections)->default_value(c.max_connections),
       "open client connections at most; one more gets 503 with Retry-After and is closed (0 = no limit)")
      ("max-streams-per-tenant", po::value<int>(&c.max_streams_per_tenant)->default_value(c.max_streams_per_tenant),
       "open event streams (GET /v1/events) one tenant may hold; one more gets 429 (0 = no limit)")
      ("read-cache", po::value<int>(&c.read_cache_entries)->default_value(c.read_cache_entries),
       "activity details kept in memory between two writes of the database (0 = no cache)")
      ("tls-cert", po::value<std::string>(&c.tls_cert_file),
       "serve HTTPS (TLS 1.2+) with this PEM certificate chain, the server's certificate first;\n"
       "needs --tls-key (default: plain HTTP)")
      ("tls-key", po::value<std::string>(&c.tls_key_file), "the unencrypted PEM private key of --tls-cert")
      ("metrics-listen", po::value<std::string>(&metrics_listen),
       "HOST:PORT to serve /metrics on instead of --listen (which then answers 404 for it)")
      ("metrics-token", po::value<std::string>(&c.metrics_token),
       "require Authorization: Bearer TOKEN for /metrics; prefer MUFL_METRICS_TOKEN or\n"
       "--metrics-token-file, since ps shows a command line")
      ("metrics-token-file", po::value<std::string>(&c.metrics_token_file),
       "require the token on FILE's first line for /metrics (read at start)");

  std::ostringstream help;
  help << desc << "\nAdmin token: MUFL_ADMIN_TOKEN if set; otherwise generated at the first start and\n"
       << "kept in <data-dir>/admin.token (mode 0600).\n";

  po::variables_map vm;
  try {
    po::store(po::parse_command_line(argc, argv, desc), vm);
    // parse_environment reads `environ`; we pass our own list so tests control it.
    po::parsed_options from_env(&desc);
    for (const char* const* e = env; e && *e; ++e) {
      std::string kv(*e);
      size_t eq = kv.find('=');
      if (eq == std::string::npos) continue;
      std::string name = env_to_option(kv.substr(0, eq), desc);
      if (name.empty()) continue;
      po::option opt;
      opt.string_key = name;
      opt.value.push_back(kv.substr(eq + 1));
      opt.original_tokens = {kv.substr(0, eq), kv.substr(eq + 1)};
      from_env.options.push_back(opt);
    }
    po::store(from_env, vm);
    po::notify(vm);
  } catch (const po::error& e) {
    return Status::invalid_argument(std::string(e.what()) + " (see mufld --help)");
  }
  for (const char* const* e = env; e && *e; ++e) {
    std::string kv(*e);
    if (kv.rfind("MUFL_ADMIN_TOKEN=", 0) == 0) c.admin_token = kv.substr(17);
  }

  if (vm.count("help")) {
    out.exit_now = true;
    out.output = help.str();
    return out;
  }
  if (vm.count("version")) {
    out.exit_now = true;
    out.output = std::string("mufld ") + kVersion + "\n";
    return out;
  }
  if (Status s = parse_listen(listen, "--listen", c.listen_host, c.listen_port); !s.is_ok()) return s;
  if (c.cluster == "slurm" && c.worker_url.empty() &&
      (c.listen_host == "0.0.0.0" || c.listen_host == "::" || c.listen_host.empty()))
    return Status::invalid_argument("--cluster slurm with --listen on every address needs --worker-url "
                                    "http[s]://HOST:PORT: the address workers on the nodes reach this mufld at");
  if (vm.count("worker-command")) {
    std::istringstream words(worker_command_text);
    c.worker_command.assign(std::istream_iterator<std::string>(words), std::istream_iterator<std::string>());
    if (c.worker_command.empty()) return Status::invalid_argument("--worker-command must name a program");
  }
  if (!metrics_listen.empty()) {
    if (Status s = parse_listen(metrics_listen, "--metrics-listen", c.metrics_host, c.metrics_port); !s.is_ok())
      return s;
    c.metrics_listen = true;
  }
  if (vm.count("metrics-token") && vm.count("metrics-token-file"))
    return Status::invalid_argument("--metrics-token and --metrics-token-file are exclusive: give one");
  if (vm.count("metrics-token") && !valid_token(c.metrics_token))
    return Status::invalid_argument("--metrics-token must be printable characters without blanks");
  if (vm.count("metrics-token-file") && c.metrics_token_file.empty())
    return Status::invalid_argument("--metrics-token-file must name a file");
  if (c.db_sync != "full" && c.db_sync != "normal")
    return Status::invalid_argument("--db-sync must be full or normal");
  if (c.threads < 0 || c.threads > 256) return Status::invalid_argument("--threads must be from 0 to 256");
  if (c.threads == 0) c.threads = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  if (c.handler_threads < 0 || c.handler_threads > 1024)
    return Status::invalid_argument("--handler-threads must be from 0 to 1024");
  if (c.body_memory_mb < 0 || c.body_memory_mb > 65536)
    return Status::invalid_argument("--body-memory must be from 0 to 65536 (MiB)");
  if (c.handler_threads == 0) c.handler_threads = std::max(16, c.threads);
  static const char* kLevels[] = {"trace", "debug", "info", "warn", "error"};
  bool level_ok = false;
  for (const char* l : kLevels) level_ok |= c.log_level == l;
  if (!level_ok) return Status::invalid_argument("--log-level must be trace, debug, info, warn or error");
  if (c.data_dir.empty()) return Status::invalid_argument("--data-dir must not be empty");
  if (c.torch_threads < 0 || c.torch_threads > 256) return Status::invalid_argument("--torch-threads must be from 0 to 256");
  if (!(c.client_failure_rate >= 0 && c.client_failure_rate < 1))
    return Status::invalid_argument("--client-failure-rate must be at least 0 and below 1");
  if (c.devices.empty()) return Status::invalid_argument("--devices must not be empty");
  if (c.grouping != "mufl" && c.grouping != "all_in_one" && c.grouping != "independent" && c.grouping != "sequential")
    return Status::invalid_argument("--grouping must be mufl, all_in_one, independent or sequential");
  if (!(c.merge_window_seconds >= 0 && c.merge_window_seconds <= 86400))
    return Status::invalid_argument("--merge-window must be from 0 to 86400 seconds");
  if (!(c.consolidation_fraction > 0 && c.consolidation_fraction <= 1))
    return Status::invalid_argument("--consolidation-fraction must be above 0 and at most 1");
  if (c.max_groups < 1 || c.max_groups > 16) return Status::invalid_argument("--max-groups must be from 1 to 16");
  if (!scheduler::parse_split_rule(c.split_rule))
    return Status::invalid_argument("--split-rule must be mas or no_harm");
  if (c.max_group_size < 1 || c.max_group_size > 256)
    return Status::invalid_argument("--max-group-size must be from 1 to 256");
  if (!(c.storage_retry_max_seconds >= 1 && c.storage_retry_max_seconds <= 3600))
    return Status::invalid_argument("--storage-retry-max must be from 1 to 3600 seconds");
  if (c.federation_lanes < 0 || c.federation_lanes > 256)
    return Status::invalid_argument("--federation-lanes must be from 0 to 256");
  if (Status cluster = check_cluster(c); !cluster.is_ok()) return cluster;
  if (c.affinity_every < 1 || c.affinity_every > 10000)
    return Status::invalid_argument("--affinity-every must be from 1 to 10000");
  if (c.merge_guard_window < 0 || c.merge_guard_window > 100)
    return Status::invalid_argument("--merge-guard-window must be from 0 to 100");
  if (!(c.merge_guard_lag >= 0 && c.merge_guard_lag <= 1))
    return Status::invalid_argument("--merge-guard-lag must be from 0 to 1");
  if (!fl::parse_task_balance(c.task_balance)) return Status::invalid_argument("--task-balance must be by_kind, cap, cap_merged, cap_equal or none");
  if (c.head_calibration_clients != "round" && c.head_calibration_clients != "all")
    return Status::invalid_argument("--head-calibration-clients must be round or all");
  if (c.energy_meter != "auto" && c.energy_meter != "model")
    return Status::invalid_argument("--energy-meter must be auto or model");
  if (c.gpu_power_profile.empty()) return Status::invalid_argument("--gpu-power-profile must not be empty");
  if (c.policy != "fifo" && c.policy != "fair" && c.policy != "energy" && c.policy != "carbon")
    return Status::invalid_argument("--policy must be fifo, fair, energy or carbon");
  if (!(c.energy_eta >= 0 && c.energy_eta <= 1)) return Status::invalid_argument("--energy-eta must be from 0 to 1");
  if (c.carbon_horizon_hours < 1 || c.carbon_horizon_hours > 8760)
    return Status::invalid_argument("--carbon-horizon must be from 1 to 8760 hours");
  if (!(c.round_seconds_prior > 0 && c.round_seconds_prior <= 86400))
    return Status::invalid_argument("--round-seconds-prior must be above 0 and at most 86400 seconds");
  const auto retention = parse_duration_seconds(event_retention);
  if (!retention || *retention > int64_t{3650} * 86400)
    return Status::invalid_argument("--event-retention must be a whole number with s, m, h or d, from 1s to 3650d");
  c.event_retention_seconds = *retention;
  if (!(c.event_keepalive_seconds > 0 && c.event_keepalive_seconds <= 3600))
    return Status::invalid_argument("--event-keepalive must be above 0 and at most 3600 seconds");
  if (c.max_connections < 0 || c.max_connections > 1'000'000)
    return Status::invalid_argument("--max-connections must be from 0 (no limit) to 1000000");
  if (c.max_streams_per_tenant < 0 || c.max_streams_per_tenant > 100'000)
    return Status::invalid_argument("--max-streams-per-tenant must be from 0 (no limit) to 100000");
  if (c.read_cache_entries < 0 || c.read_cache_entries > 1'000'000)
    return Status::invalid_argument("--read-cache must be from 0 (no cache) to 1000000");
  if (c.tls_cert_file.empty() != c.tls_key_file.empty())
    return Status::invalid_argument(c.tls_cert_file.empty() ? "--tls-key needs --tls-cert (HTTPS takes both)"
                                                            : "--tls-cert needs --tls-key (HTTPS takes both)");
  if (c.db_path.empty()) c.db_path = c.data_dir + "/mufl.db";
  return out;
}

}  // namespace mufl::service
