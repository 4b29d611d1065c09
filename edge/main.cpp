// mufl-client: a federation client that keeps its own data (docs/clients.md). The agent runs
// on a worker thread; this thread waits for SIGTERM or SIGINT. A stop while the agent is idle
// (in a long poll) exits at once, since nothing is lost; a stop while it trains abandons the
// lease (the server counts the client as a dropout) and then exits.
#include <spdlog/spdlog.h>

#include <iostream>

#include "cli/stop_signals.h"
#include "edge/agent.h"
#include "edge/options.h"

extern char** environ;

int main(int argc, char** argv) {
  using namespace mufl::edge;
  auto parsed = parse_command_line(argc, argv, environ);
  if (!parsed.ok()) {
    std::cerr << "mufl-client: " << parsed.status().message() << "\n";
    return kExitUsage;
  }
  if (parsed->exit_now) {
    std::cout << parsed->output;
    return kExitOk;
  }
  mufl::cli::block_stop_signals();  // before any thread starts: every thread inherits the mask

  spdlog::set_pattern("%Y-%m-%dT%H:%M:%S.%e %^%l%$ mufl-client: %v");
  Agent agent(parsed->options, [](const std::string& line) { spdlog::info("{}", line); });
  return mufl::cli::run_until_done_or_signalled(
      {[&] { return agent.run(); }, [&] { agent.stop(); }, [&] { return agent.busy(); }}, kExitOk);
}
