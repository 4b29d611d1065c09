#pragma once
// mufl-client's command line (docs/clients.md, "mufl-client"). Parsing and checking only:
// nothing here touches the network or files.
#include <string>

#include "cli/options.h"
#include "core/result.h"

namespace mufl::edge {

struct Options {
  std::string server;  // --server URL (required), http:// or https://
  cli::ServerUrl url;
  // --enroll-token T / MUFL_ENROLL_TOKEN: the federation's enrollment token. Needed only
  // until the client holds its own token (in `token_file`).
  std::string enroll_token;
  std::string data_dir;    // --data DIR (required): the client's own samples
  std::string name;        // --name NAME: its name in the federation (needed to enroll)
  // --token-file FILE: where the client token is kept, mode 0600. Default DIR/.mufl-client-token.
  std::string token_file;
  std::string device = "cpu";  // --device cpu|cuda:N
  int threads = 0;             // --threads N: LibTorch threads; 0 leaves LibTorch's default
  std::string ca_file;         // --ca-file FILE: PEM CA (or the server's certificate) for https://
  bool insecure = false;       // --insecure: allow plain http:// to a host that is not loopback
  int poll_wait_seconds = 30;  // --poll-wait S: the long poll's wait, 1 to 60
  // --max-backoff S: the longest pause between reconnection attempts, 1 to 3600. Default 30.
  int max_backoff_seconds = 30;
  // --energy-meter auto|model: how the client meters its own device (scheduler/energy/meters.h):
  // auto takes NVML for cuda:N, RAPL for the CPU, else the power model; model always the model.
  std::string energy_meter = "auto";
  // --power-profile NAME: the power model's profile of this device (docs/energy.md). Default
  // "cpu" for --device cpu, "V100" for cuda:N.
  std::string power_profile;
  bool once = false;  // --once: stop after the first lease (or the first empty poll); for tests and scripts
};

struct Parsed {
  Options options;
  bool exit_now = false;  // --help or --version: print `output` and exit 0
  std::string output;
};

// kInvalidArgument with a message for the user on a bad command line: unknown flags, a
// missing --server or --data, a bad URL, plain http:// to a remote host without --insecure, a
// device other than cpu or cuda:N, numbers out of range.
Result<Parsed> parse_command_line(int argc, const char* const* argv, const char* const* env);

// Whether `host` is this machine: localhost, 127.0.0.0/8 or ::1.
bool is_loopback(const std::string& host);

}  // namespace mufl::edge
