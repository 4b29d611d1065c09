// mufl-client: a federation client that keeps its own data (docs/clients.md). The agent runs
// on a worker thread; this thread waits for SIGTERM or SIGINT. A stop while the agent is idle
// (in a long poll) exits at once, since nothing is lost; a stop while it trains abandons the
// lease (the server counts the client as a dropout) and then exits.
#include <signal.h>

#include <spdlog/spdlog.h>

#include <atomic>
#include <cstdlib>
#include <iostream>
#include <thread>

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
  // Signals go to this thread only, through sigtimedwait below.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGINT);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);

  spdlog::set_pattern("%Y-%m-%dT%H:%M:%S.%e %^%l%$ mufl-client: %v");
  Agent agent(parsed->options, [](const std::string& line) { spdlog::info("{}", line); });
  std::atomic<bool> done{false};
  std::atomic<int> code{kExitOk};
  std::thread worker([&] {
    code = agent.run();
    done = true;
  });
  const timespec tick{0, 100'000'000};
  while (!done) {
    const int sig = sigtimedwait(&signals, nullptr, &tick);
    if (sig != SIGTERM && sig != SIGINT) continue;
    spdlog::info("{}: stopping", sig == SIGTERM ? "SIGTERM" : "SIGINT");
    agent.stop();
    if (!agent.busy()) {  // in a poll or a backoff: nothing to finish
      spdlog::default_logger()->flush();
      std::_Exit(kExitOk);
    }
  }
  worker.join();
  return code;
}
