#pragma once
// Env: the file system as mufl writes to it (LevelDB's Env is the model). Every file that must
// survive a crash (checkpoints, models) is written through an Env, one primitive step at a
// time, so that a test can make any write, fsync, rename or read fail (tests/support/fault_env.h)
// and a real deployment runs on Env::posix().
//
// Errors: a full disk or quota (ENOSPC, EDQUOT) is kInsufficientStorage; any other failure of
// the file system (EIO, EACCES, EROFS, ...) is kUnavailable, since it may pass (the operator
// frees space, remounts, fixes a permission); a file that does not exist is kNotFound. Each
// message names the step, the path and errno's text.
//
// Thread safety: every method may be called from any thread.
#include <string>
#include <string_view>
#include <vector>

#include "core/result.h"

namespace mufl {

class Env {
 public:
  virtual ~Env() = default;
  // The process's real file system. Lives forever.
  static Env& posix();

  // Creates `dir` and its missing parents, mode 0700. OK when it exists.
  virtual Status create_dirs(const std::string& dir) = 0;
  // Creates or truncates `path`, writes all of `bytes` and fsyncs the file. On failure the file
  // may be partly written (callers write temp files and rename).
  virtual Status write_synced(const std::string& path, std::string_view bytes) = 0;
  // rename(2): atomic replacement of `to`.
  virtual Status rename(const std::string& from, const std::string& to) = 0;
  // fsyncs a directory, so that a rename or unlink in it survives a crash.
  virtual Status sync_dir(const std::string& dir) = 0;
  // Removes a file or an empty directory; OK when it does not exist.
  virtual Status remove(const std::string& path) = 0;
  // The whole file.
  virtual Result<std::string> read(const std::string& path) = 0;
  // The names of the entries in `dir` (not "." or ".."), in no order; empty when it does not exist.
  virtual Result<std::vector<std::string>> list(const std::string& dir) = 0;
};

// Writes `bytes` to `path` so that after a crash the file is either the old one or the whole
// new one: a temp file beside it (write_synced), rename over `path`, sync the directory.
// Creates missing parent directories. The temp file is removed when a step fails.
Status write_file_durably(Env& env, const std::string& path, std::string_view bytes);

}  // namespace mufl
