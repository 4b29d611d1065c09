#pragma once
// muflctl's command line: global flags (each also an environment variable), one command, its
// arguments and its flags. Parsing only: nothing here touches the network or files.
#include <cstdint>
#include <string>
#include <vector>

#include "core/result.h"

namespace mufl::cli {

// http[s]://HOST[:PORT][/PREFIX]; the prefix (no trailing slash) goes before every API path.
struct ServerUrl {
  bool tls = false;  // https://
  std::string host;
  uint16_t port = 80;  // 443 for https:// without a port
  std::string prefix;
};

// kInvalidArgument for anything that is not an http:// or https:// URL with a host.
Result<ServerUrl> parse_server_url(const std::string& text);

struct Options {
  // Global. --server URL / MUFL_SERVER, default http://127.0.0.1:8080.
  std::string server = "http://127.0.0.1:8080";
  ServerUrl url;
  // --token T / MUFL_TOKEN (the environment keeps it out of `ps`). Default "": no Authorization.
  std::string token;
  // --json: print JSON documents instead of tables (README.md, "Command-line client").
  bool json = false;
  // --timeout S / MUFL_TIMEOUT: seconds one request may take, (0, 3600]. Default 30.
  double timeout_seconds = 30;
  // --ca-file FILE / MUFL_CA_FILE: PEM CA certificates (or the server's self-signed
  // certificate) to verify an https:// server with. Default "": the system's trust store.
  // Ignored for http://.
  std::string ca_file;

  std::string command;            // submit, list, get, watch, cancel, download, groups, devices, usage
  std::vector<std::string> args;  // the command's positional arguments

  std::string idempotency_key;  // submit --idempotency-key K (item i of an array sends K-i)
  std::string state;            // list --state
  std::string phase;            // groups --phase
  int limit = 0;                // list/groups --limit N, 1 to 1000; 0: the server's default page
  std::string cursor;           // list/groups --cursor C: the page after next_cursor C
  bool all = false;             // list/groups --all: follow next_cursor to the last page
  double interval_seconds = 2;  // watch --interval S when polling, [0.05, 3600]
  std::string output;           // download -o FILE (required)
  bool force = false;           // download --force: replace an existing FILE
  int cluster = -1;             // download --cluster C: that client cluster's model; -1: the activity's
  std::string from, to;         // usage --from/--to YYYY-MM-DD
  std::string tenant;           // usage --tenant ID (admin token)
};

struct ParsedCommandLine {
  Options options;
  bool exit_now = false;  // --help, help or --version: print `output` and exit 0
  std::string output;
};

// Parses argv and the environment (`env` as from `environ`; MUFL_SERVER, MUFL_TOKEN,
// MUFL_TIMEOUT, MUFL_CA_FILE are read, a flag wins). kInvalidArgument with a message for people on an
// unknown command or flag, a flag the command does not take, a wrong argument count or a bad
// value.
Result<ParsedCommandLine> parse_command_line(int argc, const char* const* argv, const char* const* env);

// The text of muflctl --help: commands, flags, environment and exit codes.
std::string help_text();

}  // namespace mufl::cli
