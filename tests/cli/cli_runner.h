#pragma once
// Runs the real muflctl binary (MUFLCTL_PATH) as a child process and returns what it printed
// on stdout and on stderr, apart, with its exit code.
#include <sys/types.h>

#include <functional>
#include <map>
#include <string>
#include <vector>

namespace mufl::testing {

struct CliRun {
  int exit_code = -1;  // 128+signal when it died of a signal
  std::string out;
  std::string err;
};

// Runs `binary` with `args`; the environment is the test's without MUFL_* variables, plus
// `env`; stdin reads `stdin_text`. Blocks until it exits (CTest's timeout bounds a hang).
// `on_start`, when set, gets the child's pid as soon as it runs (on the calling thread), so a
// test can signal it meanwhile (SIGSTOP / SIGCONT).
CliRun run_cli(const std::string& binary, const std::vector<std::string>& args,
               const std::map<std::string, std::string>& env = {}, const std::string& stdin_text = "",
               const std::function<void(pid_t)>& on_start = {});

}  // namespace mufl::testing
