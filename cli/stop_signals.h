#pragma once
// How mufl-client and mufl-worker stop on SIGTERM or SIGINT (what `kill` and Slurm's `scancel`
// send): the work loop runs on a thread of its own while the main thread waits for a signal.
// A stop while the loop is idle (in a long poll or a backoff) exits at once, since nothing is
// lost; a stop while it trains lets the loop abandon its work and return.
#include <functional>

namespace mufl::cli {

// Blocks SIGTERM and SIGINT in the calling thread; call before any thread starts, so that every
// thread inherits the mask and the signals come only to run_until_done_or_signalled.
void block_stop_signals();

struct StoppableLoop {
  std::function<int()> run;    // the loop; its exit code
  std::function<void()> stop;  // asks it to stop (any thread)
  std::function<bool()> busy;  // whether it is in work that a stop must let finish
};

// Runs `loop.run` on a new thread and waits for it or a stop signal. On a signal: logs it,
// calls `stop`, and when not `busy` exits the process at once with `idle_exit_code`. Returns
// the loop's exit code. REQUIRES: block_stop_signals() before.
int run_until_done_or_signalled(const StoppableLoop& loop, int idle_exit_code);

}  // namespace mufl::cli
