#include "cli/stop_signals.h"

#include <signal.h>

#include <spdlog/spdlog.h>

#include <atomic>
#include <cstdlib>
#include <thread>

namespace mufl::cli {
namespace {

sigset_t stop_signals() {
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGINT);
  return signals;
}

}  // namespace

void block_stop_signals() {
  const sigset_t signals = stop_signals();
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);
}

int run_until_done_or_signalled(const StoppableLoop& loop, int idle_exit_code) {
  const sigset_t signals = stop_signals();
  std::atomic<bool> done{false};
  std::atomic<int> code{0};
  std::thread worker([&] {
    code = loop.run();
    done = true;
  });
  const timespec tick{0, 100'000'000};
  while (!done) {
    const int sig = sigtimedwait(&signals, nullptr, &tick);
    if (sig != SIGTERM && sig != SIGINT) continue;
    spdlog::info("{}: stopping", sig == SIGTERM ? "SIGTERM" : "SIGINT");
    loop.stop();
    if (!loop.busy()) {  // in a poll or a backoff: nothing to finish
      spdlog::default_logger()->flush();
      std::_Exit(idle_exit_code);
    }
  }
  worker.join();
  return code;
}

}  // namespace mufl::cli
