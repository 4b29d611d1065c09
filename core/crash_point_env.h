#pragma once
// CrashPointEnv: an Env that kills the process (SIGKILL, as kill -9 does) right after a chosen
// file operation succeeds, for the crash tests (tests/e2e/crash_windows_test.cpp). mufld wraps
// its Env in one when MUFL_CRASH_AT is set; nothing else uses it.
//
//   MUFL_CRASH_AT=<op>:<path part>[:<n>]
//     op         write | rename | sync_dir | remove | list
//     path part  a substring of the path (for rename: of the target)
//     n          the n-th matching call (default 1)
//   e.g. "rename:checkpoint-2.pt" dies once round 2's checkpoint has its name, and
//   "list:/groups/:3" once the third round's transaction has committed (the executor lists the
//   group's directory to prune it right after each commit).
#include <atomic>
#include <optional>
#include <string>

#include "core/env.h"

namespace mufl {

struct CrashPoint {
  std::string op;
  std::string path_part;
  int nth = 1;
};

// Parses MUFL_CRASH_AT's value; nullopt (and `error` set) when it is malformed.
std::optional<CrashPoint> parse_crash_point(const std::string& text, std::string& error);

class CrashPointEnv final : public Env {
 public:
  CrashPointEnv(Env& base, CrashPoint point) : base_(base), point_(std::move(point)) {}

  Status create_dirs(const std::string& dir) override { return base_.create_dirs(dir); }
  Status write_synced(const std::string& path, std::string_view bytes) override;
  Status rename(const std::string& from, const std::string& to) override;
  Status sync_dir(const std::string& dir) override;
  Status remove(const std::string& path) override;
  Result<std::string> read(const std::string& path) override { return base_.read(path); }
  Result<std::vector<std::string>> list(const std::string& dir) override;

 private:
  // Dies when `op` on `path` is the crash point's n-th match and `done` succeeded.
  void after(const char* op, const std::string& path, const Status& done);

  Env& base_;
  CrashPoint point_;
  std::atomic<int> matches_{0};
};

}  // namespace mufl
