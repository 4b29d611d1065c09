#pragma once
// muflctl's exit codes: a contract with the scripts that run it (muflctl --help and README.md
// list them). Never renumber one.
namespace mufl::cli {

enum ExitCode : int {
  kExitOk = 0,                 // done; for watch: the activity succeeded
  kExitLocal = 1,              // a local file cannot be read or written, or exists (download without
                               // --force; --ca-file); also an unexpected internal error
  kExitUsage = 2,              // bad flags or arguments, or an input file that is not valid JSON activities
  kExitClientError = 3,        // the API answered 4xx; the problem's title and detail are on stderr
  kExitServerError = 4,        // the API answered 5xx (or a broken answer, e.g. a model with a wrong hash)
  kExitUnreachable = 5,        // cannot connect, the connection broke, or --timeout passed
  kExitActivityFailed = 6,     // watch: the activity ended failed
  kExitActivityCancelled = 7,  // watch: the activity ended cancelled
  kExitTls = 8,                // https: the server's certificate was refused or the TLS handshake failed
};

// The exit code for an HTTP status: 0 for 1xx-3xx, 3 for 4xx, 4 for 5xx and anything else.
inline int exit_code_for_http(int status) {
  if (status >= 100 && status < 400) return kExitOk;
  if (status >= 400 && status < 500) return kExitClientError;
  return kExitServerError;
}

}  // namespace mufl::cli
