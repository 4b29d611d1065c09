#pragma once
// FaultEnv: an Env over the real file system (Env::posix()) that fails the operations a test
// names, to show what mufl does when a write, fsync, rename or read fails (core/env.h).
// Thread safety: every method may be called from any thread.
#include <map>
#include <mutex>
#include <string>
#include <vector>

#include "core/env.h"

namespace mufl::testing {

class FaultEnv final : public Env {
 public:
  enum class Op { kCreateDirs, kWrite, kRename, kSyncDir, kRemove, kRead, kList };

  // The next `times` calls of `op` on a path that contains `path_part` (for a rename: its
  // target) return `error` without touching the disk; times < 0: every such call, until clear().
  void fail(Op op, std::string path_part, Status error, int times = 1);
  // The next `times` reads of a path that contains `path_part` return its bytes with one byte
  // changed, as a file damaged on disk would read.
  void corrupt_reads(std::string path_part, int times = 1);
  void clear();
  // Calls of `op` so far, failed ones included; and how many were made to fail.
  int calls(Op op) const;
  int failures() const;

  Status create_dirs(const std::string& dir) override;
  Status write_synced(const std::string& path, std::string_view bytes) override;
  Status rename(const std::string& from, const std::string& to) override;
  Status sync_dir(const std::string& dir) override;
  Status remove(const std::string& path) override;
  Result<std::string> read(const std::string& path) override;
  Result<std::vector<std::string>> list(const std::string& dir) override;

 private:
  struct Rule {
    Op op;
    std::string path_part;
    Status error;
    int times;
  };
  // Counts the call; the error of the first rule that matches (and uses it up), else OK.
  Status check(Op op, const std::string& path);

  mutable std::mutex mu_;
  std::vector<Rule> rules_;
  std::map<std::string, int> corrupt_;  // path part → reads left to damage
  std::map<Op, int> calls_;
  int failures_ = 0;
  Env& base_ = Env::posix();
};

}  // namespace mufl::testing
