#pragma once
// muflctl's commands (submit, list, get, watch, cancel, download, groups, devices, usage):
// each turns parsed options into API calls and prints the result: tables for people, or with
// --json the API's documents (muflctl --help says which are muflctl's own).
#include "cli/console.h"
#include "cli/options.h"

namespace mufl::cli {

// Runs `options.command` (already checked by parse_command_line) and returns the exit code
// (cli/exit_codes.h); results go to io.out, errors (prefixed "muflctl: ") to io.err.
int run_command(const Options& options, Console& io);

}  // namespace mufl::cli
