// muflctl: the command-line client of mufld. Parses the command line, runs one command, and
// exits with a code scripts can branch on (cli/exit_codes.h).
#include <unistd.h>

#include <exception>
#include <iostream>

#include "cli/commands.h"
#include "cli/exit_codes.h"
#include "cli/options.h"

extern char** environ;

int main(int argc, char** argv) {
  using namespace mufl::cli;
  auto parsed = parse_command_line(argc, argv, environ);
  if (!parsed.ok()) {
    std::cerr << "muflctl: " << parsed.status().message() << "\n";
    return kExitUsage;
  }
  if (parsed->exit_now) {
    std::cout << parsed->output;
    return kExitOk;
  }
  Console io{std::cin, std::cout, std::cerr, ::isatty(STDOUT_FILENO) == 1};
  try {
    return run_command(parsed->options, io);
  } catch (const std::exception& e) {  // a broken invariant: say so rather than abort
    std::cerr << "muflctl: internal error: " << e.what() << "\n";
    return kExitLocal;
  }
}
