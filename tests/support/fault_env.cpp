#include "tests/support/fault_env.h"

namespace mufl::testing {

void FaultEnv::fail(Op op, std::string path_part, Status error, int times) {
  std::lock_guard lock(mu_);
  rules_.push_back({op, std::move(path_part), std::move(error), times});
}

void FaultEnv::corrupt_reads(std::string path_part, int times) {
  std::lock_guard lock(mu_);
  corrupt_[std::move(path_part)] += times;
}

void FaultEnv::clear() {
  std::lock_guard lock(mu_);
  rules_.clear();
  corrupt_.clear();
}

int FaultEnv::calls(Op op) const {
  std::lock_guard lock(mu_);
  auto it = calls_.find(op);
  return it == calls_.end() ? 0 : it->second;
}

int FaultEnv::failures() const {
  std::lock_guard lock(mu_);
  return failures_;
}

Status FaultEnv::check(Op op, const std::string& path) {
  std::lock_guard lock(mu_);
  ++calls_[op];
  for (auto it = rules_.begin(); it != rules_.end(); ++it) {
    if (it->op != op || path.find(it->path_part) == std::string::npos) continue;
    Status error = it->error;
    if (it->times > 0 && --it->times == 0) rules_.erase(it);
    ++failures_;
    return error;
  }
  return Status::ok();
}

Status FaultEnv::create_dirs(const std::string& dir) {
  if (Status s = check(Op::kCreateDirs, dir); !s.is_ok()) return s;
  return base_.create_dirs(dir);
}

Status FaultEnv::write_synced(const std::string& path, std::string_view bytes) {
  if (Status s = check(Op::kWrite, path); !s.is_ok()) return s;
  return base_.write_synced(path, bytes);
}

Status FaultEnv::rename(const std::string& from, const std::string& to) {
  if (Status s = check(Op::kRename, to); !s.is_ok()) return s;
  return base_.rename(from, to);
}

Status FaultEnv::sync_dir(const std::string& dir) {
  if (Status s = check(Op::kSyncDir, dir); !s.is_ok()) return s;
  return base_.sync_dir(dir);
}

Status FaultEnv::remove(const std::string& path) {
  if (Status s = check(Op::kRemove, path); !s.is_ok()) return s;
  return base_.remove(path);
}

Result<std::string> FaultEnv::read(const std::string& path) {
  if (Status s = check(Op::kRead, path); !s.is_ok()) return s;
  auto bytes = base_.read(path);
  std::lock_guard lock(mu_);
  for (auto it = corrupt_.begin(); it != corrupt_.end(); ++it) {
    if (!bytes.ok() || bytes->empty() || path.find(it->first) == std::string::npos) continue;
    (*bytes)[bytes->size() / 2] ^= 0x5a;
    if (--it->second == 0) corrupt_.erase(it);
    ++failures_;
    break;
  }
  return bytes;
}

Result<std::vector<std::string>> FaultEnv::list(const std::string& dir) {
  if (Status s = check(Op::kList, dir); !s.is_ok()) return s;
  return base_.list(dir);
}

}  // namespace mufl::testing
