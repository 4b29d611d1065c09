#pragma once
// mufld's configuration: command-line flags, each also settable as an environment variable
// MUFL_<FLAG> (--data-dir ↔ MUFL_DATA_DIR). A flag wins over its variable. `mufld --help`
// prints the same table.
#include <cstdint>
#include <string>
#include <vector>

#include "core/result.h"

namespace mufl::service {

struct Config {
  // --listen HOST:PORT. Default 127.0.0.1:8080. Port 0 picks a free port (mufld prints it).
  std::string listen_host = "127.0.0.1";
  uint16_t listen_port = 8080;
  // --data-dir DIR. Default ./var. Holds the database and admin.token; created when missing.
  std::string data_dir = "var";
  // --db FILE. Default <data-dir>/mufl.db.
  std::string db_path;
  // --db-sync full|normal. Default full: an acknowledged change is on disk (see StoreOptions).
  std::string db_sync = "full";
  // --threads N. Default: the machine's cores. Threads for sockets (quick reads answer on them).
  int threads = 0;
  // --handler-threads N. Default 0: max(16, --threads). Threads running the requests that are
  // not quick reads; most of their time is spent waiting for a commit's fsync, and writes that
  // wait together commit together (storage/writer_queue.h), so there are more of them than cores.
  int handler_threads = 0;
  // --body-memory MiB. Default 16: large request bodies (over 64 KiB: clients' updates) read
  // into memory at once; the rest wait, unread (service/body_budget.h). 0: no limit. 16 MiB is
  // about 115 updates of the default model for 16 handler threads: measured, it aggregates as
  // fast as 64 MiB and holds 60 MB less at peak (bench/clients).
  int body_memory_mb = 16;
  // --log-level trace|debug|info|warn|error. Default info.
  std::string log_level = "info";
  // --devices: where training runs ("auto", "cpu:2", "cuda", "cuda:0,cpu:1"; see
  // scheduler/devices.h).
  std::string devices = "auto";
  // --torch-threads N: LibTorch intra-op threads. Default 0: the cores divided by the CPU slots.
  int torch_threads = 0;
  // --client-failure-rate P: simulated client dropouts per round. Default 0.
  double client_failure_rate = 0.0;
  // --grouping mufl|all_in_one|independent|sequential: which activities train together
  // (scheduler/grouping/grouping.h). Default mufl.
  std::string grouping = "mufl";
  // --merge-window S: seconds a group waits for compatible arrivals before it forms. Default 0.
  double merge_window_seconds = 0;
  // --consolidation-fraction F: share of the rounds a merged group trains before it splits.
  double consolidation_fraction = 0.25;
  // --max-group-size N: at most this many activities train in one group. Default 16.
  int max_group_size = 16;
  // --max-groups N: at most this many groups out of one split. Default 3.
  int max_groups = 3;
  // --affinity-every N: affinity lookahead every N batches while consolidating. Default 20.
  int affinity_every = 20;
  // --federation-lanes N: groups of activities on federations that run at once, each on a lane
  // of its own that waits for the clients and aggregates on this host's CPU, holding no device
  // (scheduler/executor.h). 0: such groups take a device like any other. Default 8.
  int federation_lanes = 8;
  // --cluster none|slurm: with slurm, the GPUs of a Slurm cluster are devices of mufld too
  // (scheduler/cluster/; README "Running on a Slurm cluster"). --slurm-partition and
  // --slurm-account go to sinfo and sbatch, --slurm-sbatch-arg (repeated) adds sbatch
  // arguments, --worker-url is how `mufl-worker` jobs reach this mufld, and
  // --cluster-refresh is how often (seconds) Slurm is asked for its nodes.
  std::string cluster = "none";
  std::string slurm_partition;
  std::string slurm_account;
  std::vector<std::string> slurm_sbatch_args;
  std::string worker_url;
  // --worker-command "PROGRAM [ARG…]": what a worker job runs (default "mufl-worker", found on
  // the nodes' PATH); split on blanks.
  std::vector<std::string> worker_command = {"mufl-worker"};
  double cluster_refresh_seconds = 30;
  // --task-balance none|cap: how a multi-head group balances its tasks' encoder gradients
  // (docs/merge-and-split.md, "Balancing the tasks"). Default cap.
  std::string task_balance = "by_kind";
  // --head-calibration true|false: at a member's last round in a group of two or more heads,
  // fit its head to the final encoder (fl/head_calibration.h). Default true.
  bool head_calibration = true;
  // --head-calibration-clients round|all: the calibration's clients, the last round's (default)
  // or every client (about 6 times the pass; docs/merge-and-split.md).
  std::string head_calibration_clients = "round";
  // --merge-guard-window N, --merge-guard-lag R: the merge guard
  // (scheduler/grouping/merge_guard.h). A member of a group past consolidation whose test loss fell
  // by less than R times its mates' median over N rounds leaves alone. Defaults 3 and 0.25; a
  // window of 0 turns it off.
  int merge_guard_window = 3;
  double merge_guard_lag = 0.25;
  // --storage-retry-max S: the longest backoff (seconds) of a group released after a storage
  // error (a full disk, an I/O error); the first retry comes after 1 s. Default 60.
  double storage_retry_max_seconds = 60;
  // --merge-across-tenants true|false: activities of different tenants may share a group. Default true.
  bool merge_across_tenants = true;
  // --merge-loss-kinds true|false: label and dense tasks may share a group (GroupingOptions).
  bool merge_loss_kinds = true;
  // --split-by-loss-kind true|false: a split keeps label and dense tasks apart (GroupingOptions).
  bool split_by_loss_kind = true;
  // --split-rule mas|no_harm: how the split scores partitions (scheduler/grouping/split.h).
  std::string split_rule = "mas";
  // --energy-meter auto|model: meters best first (NVML, RAPL, power model), or the power model
  // for every device. Default auto.
  std::string energy_meter = "auto";
  // --gpu-power-profile MODEL: the power profile of a GPU that NVML does not meter. Default V100.
  std::string gpu_power_profile = "V100";
  // --carbon-file PATH: hourly grid carbon intensity (scheduler/energy/carbon_intensity.h) for the
  // ledger's grams CO2e. Default "": a constant 475 g/kWh (world average).
  std::string carbon_file;
  // --policy fifo|fair|energy|carbon: which claimable group a free device takes, and whether it
  // runs now or waits (scheduler/placement/dispatch.h, docs/scheduling.md). Default fifo.
  std::string policy = "fifo";
  // --energy-eta E: energy: η in Zeus's cost η·energy + (1−η)·max_power·time, [0, 1]. Default 0.9.
  double energy_eta = 0.9;
  // --carbon-horizon H: carbon: hours ahead to look for cleaner hours, and the most a unit
  // without a deadline is held in all (1 to 8760). Default 24.
  int carbon_horizon_hours = 24;
  // --round-seconds-prior S: seconds per round assumed before a group's first round, for
  // deadlines and slack (0 < S <= 86400). Default 60.
  double round_seconds_prior = 60;
  // --event-retention DURATION: how long stored events (GET /v1/events) are kept: a whole number
  // with s, m, h or d (a bare number is seconds), from 1 s to 3650 d. Default 7d.
  int64_t event_retention_seconds = 7 * 86400;
  // --event-keepalive S: seconds of silence after which an event stream gets ": keep-alive"
  // (0 < S <= 3600). Default 15.
  double event_keepalive_seconds = 15;
  // --max-connections N: open client connections at most; one more gets 503 with Retry-After
  // and is closed. 0 = no limit. Default 1024 (0 to 1000000).
  int max_connections = 1024;
  // --max-streams-per-tenant N: open GET /v1/events streams one tenant may hold; one more gets
  // 429 with Retry-After (the admin has no limit). 0 = no limit. Default 16 (0 to 100000).
  int max_streams_per_tenant = 16;
  // --read-cache N: activity details (GET /v1/activities/{id}) kept between two writes of the
  // store (storage/detail_cache.h), about 2 KB each. 0 = no cache. Default 16384 (0 to 1000000).
  int read_cache_entries = 16384;
  // --tls-cert FILE and --tls-key FILE: serve HTTPS with this PEM certificate chain and its
  // PEM private key (service/tls_context.h). Both or neither; default neither: plain HTTP.
  std::string tls_cert_file;
  std::string tls_key_file;
  // --metrics-listen HOST:PORT: serve /metrics on a listener of its own, and answer 404 for it
  // on --listen. Default: none, /metrics is served on --listen. Port 0 picks a free port.
  bool metrics_listen = false;
  std::string metrics_host;
  uint16_t metrics_port = 0;
  // --metrics-token TOKEN (also MUFL_METRICS_TOKEN) or --metrics-token-file FILE (at most one of
  // the two): /metrics requires Authorization: Bearer TOKEN. Default: none, /metrics is public.
  // The file is read by mufld at start (see read_metrics_token); parse_args only checks the flags.
  std::string metrics_token;
  std::string metrics_token_file;
  // MUFL_ADMIN_TOKEN only (a secret does not belong on a command line, where ps shows it).
  std::string admin_token;
};

struct ParsedArgs {
  Config config;
  bool exit_now = false;  // --help or --version: print `output` and exit 0
  std::string output;
};

// The metrics token in `file`'s contents: the first line without its line ending and with
// surrounding blanks removed. kInvalidArgument when that is empty or has other whitespace.
Result<std::string> metrics_token_from_file_contents(const std::string& contents);

// Parses argv and the environment (`env` as from `environ`). kInvalidArgument with a message
// for people on an unknown flag or a bad value.
Result<ParsedArgs> parse_args(int argc, const char* const* argv, const char* const* env);

}  // namespace mufl::service
