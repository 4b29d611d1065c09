#include "core/crash_point_env.h"

#include <signal.h>
#include <unistd.h>

#include <cstdio>

namespace mufl {

std::optional<CrashPoint> parse_crash_point(const std::string& text, std::string& error) {
  CrashPoint p;
  const size_t a = text.find(':');
  if (a == std::string::npos) {
    error = "MUFL_CRASH_AT must be <op>:<path part>[:<n>]";
    return std::nullopt;
  }
  p.op = text.substr(0, a);
  std::string rest = text.substr(a + 1);
  if (const size_t b = rest.rfind(':'); b != std::string::npos && b + 1 < rest.size() &&
                                        rest.find_first_not_of("0123456789", b + 1) == std::string::npos) {
    p.nth = std::stoi(rest.substr(b + 1));
    rest = rest.substr(0, b);
  }
  p.path_part = rest;
  const bool known = p.op == "write" || p.op == "rename" || p.op == "sync_dir" || p.op == "remove" || p.op == "list";
  if (!known || p.path_part.empty() || p.nth < 1) {
    error = "MUFL_CRASH_AT: op is write, rename, sync_dir, remove or list, then a path part and an optional n >= 1";
    return std::nullopt;
  }
  return p;
}

void CrashPointEnv::after(const char* op, const std::string& path, const Status& done) {
  if (!done.is_ok() || point_.op != op || path.find(point_.path_part) == std::string::npos) return;
  if (++matches_ != point_.nth) return;
  std::fprintf(stderr, "MUFL_CRASH_AT: killed after %s %s\n", op, path.c_str());
  std::fflush(stderr);
  ::kill(::getpid(), SIGKILL);
}

Status CrashPointEnv::write_synced(const std::string& path, std::string_view bytes) {
  Status s = base_.write_synced(path, bytes);
  after("write", path, s);
  return s;
}

Status CrashPointEnv::rename(const std::string& from, const std::string& to) {
  Status s = base_.rename(from, to);
  after("rename", to, s);
  return s;
}

Status CrashPointEnv::sync_dir(const std::string& dir) {
  Status s = base_.sync_dir(dir);
  after("sync_dir", dir, s);
  return s;
}

Status CrashPointEnv::remove(const std::string& path) {
  Status s = base_.remove(path);
  after("remove", path, s);
  return s;
}

Result<std::vector<std::string>> CrashPointEnv::list(const std::string& dir) {
  auto names = base_.list(dir);
  after("list", dir, names.ok() ? Status::ok() : names.status());
  return names;
}

}  // namespace mufl
