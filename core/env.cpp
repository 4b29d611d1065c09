#include "core/env.h"

#include <dirent.h>
#include <fcntl.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstring>
#include <filesystem>

namespace mufl {
namespace {

Status errno_status(int err, const std::string& what) {
  std::string msg = what + ": " + std::strerror(err);
  if (err == ENOSPC || err == EDQUOT) return Status::insufficient_storage(std::move(msg));
  if (err == ENOENT) return Status::not_found(std::move(msg));
  return Status::unavailable(std::move(msg));
}

Status fsync_fd(int fd, const std::string& path) {
  if (::fsync(fd) == 0) return Status::ok();
  return errno_status(errno, "cannot fsync " + path);
}

class PosixEnv final : public Env {
 public:
  Status create_dirs(const std::string& dir) override {
    namespace fs = std::filesystem;
    std::error_code ec;
    if (fs::is_directory(dir, ec)) return Status::ok();
    fs::create_directories(dir, ec);
    if (ec) return errno_status(ec.value(), "cannot create " + dir);
    fs::permissions(dir, fs::perms::owner_all, fs::perm_options::replace, ec);
    return Status::ok();
  }

  Status write_synced(const std::string& path, std::string_view bytes) override {
    const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0) return errno_status(errno, "cannot create " + path);
    size_t done = 0;
    while (done < bytes.size()) {
      const ssize_t n = ::write(fd, bytes.data() + done, bytes.size() - done);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) {
        const int err = n < 0 ? errno : ENOSPC;  // a write of 0 bytes: the device took no more
        ::close(fd);
        return errno_status(err, "cannot write " + path);
      }
      done += static_cast<size_t>(n);
    }
    Status synced = fsync_fd(fd, path);
    if (::close(fd) != 0 && synced.is_ok()) synced = errno_status(errno, "cannot close " + path);
    return synced;
  }

  Status rename(const std::string& from, const std::string& to) override {
    if (::rename(from.c_str(), to.c_str()) == 0) return Status::ok();
    return errno_status(errno, "cannot rename " + from + " to " + to);
  }

  Status sync_dir(const std::string& dir) override {
    const int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) return errno_status(errno, "cannot open " + dir);
    Status s = fsync_fd(fd, dir);
    ::close(fd);
    return s;
  }

  Status remove(const std::string& path) override {
    if (::unlink(path.c_str()) == 0 || errno == ENOENT) return Status::ok();
    // Linux says EISDIR for a directory (POSIX allows EPERM).
    if ((errno == EISDIR || errno == EPERM) && (::rmdir(path.c_str()) == 0 || errno == ENOENT)) return Status::ok();
    return errno_status(errno, "cannot remove " + path);
  }

  Result<std::string> read(const std::string& path) override {
    const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) return errno_status(errno, "cannot open " + path);
    std::string out;
    char buf[1 << 16];
    while (true) {
      const ssize_t n = ::read(fd, buf, sizeof buf);
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) {
        const int err = errno;
        ::close(fd);
        return errno_status(err, "cannot read " + path);
      }
      if (n == 0) break;
      out.append(buf, static_cast<size_t>(n));
    }
    ::close(fd);
    return out;
  }

  Result<std::vector<std::string>> list(const std::string& dir) override {
    DIR* d = ::opendir(dir.c_str());
    if (!d) {
      if (errno == ENOENT) return std::vector<std::string>();
      return errno_status(errno, "cannot list " + dir);
    }
    std::vector<std::string> names;
    while (const dirent* e = ::readdir(d)) {
      const std::string name = e->d_name;
      if (name != "." && name != "..") names.push_back(name);
    }
    ::closedir(d);
    return names;
  }
};

// A temp name beside `target`, unique in this process (and, by the pid, across processes).
std::string temp_name(const std::filesystem::path& dir, const std::string& file) {
  static std::atomic<uint64_t> counter{0};
  return (dir / ("." + file + "." + std::to_string(::getpid()) + "." + std::to_string(counter++) + ".tmp")).string();
}

}  // namespace

Env& Env::posix() {
  static PosixEnv env;
  return env;
}

Status write_file_durably(Env& env, const std::string& path, std::string_view bytes) {
  namespace fs = std::filesystem;
  const fs::path target(path);
  const std::string dir = target.has_parent_path() ? target.parent_path().string() : std::string(".");
  if (Status s = env.create_dirs(dir); !s.is_ok()) return s;
  const std::string tmp = temp_name(dir, target.filename().string());
  Status s = env.write_synced(tmp, bytes);
  if (s.is_ok()) s = env.rename(tmp, path);
  if (!s.is_ok()) {
    (void)env.remove(tmp);  // best effort: a leftover temp file is only wasted space
    return s;
  }
  return env.sync_dir(dir);
}

}  // namespace mufl
