#include "cli/atomic_file.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>

namespace mufl::cli {
namespace {

Status os_error(const std::string& what) { return Status::internal(what + ": " + std::strerror(errno)); }

}  // namespace

Status write_file_atomically(const std::string& path, std::string_view bytes, bool overwrite, unsigned mode) {
  namespace fs = std::filesystem;
  const fs::path target(path);
  if (target.filename().empty()) return Status::internal("cannot write " + path + ": it names a directory");
  if (!overwrite && fs::symlink_status(target).type() != fs::file_type::not_found)
    return Status::already_exists(path + " exists; use --force to replace it");

  const fs::path dir = target.has_parent_path() ? target.parent_path() : fs::path(".");
  std::string tmp;
  int fd = -1;
  for (int attempt = 0; fd < 0 && attempt < 100; ++attempt) {
    tmp = (dir / ("." + target.filename().string() + ".tmp." + std::to_string(::getpid()) + "." +
                  std::to_string(attempt)))
              .string();
    fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode);
    if (fd < 0 && errno != EEXIST) return os_error("cannot create a temp file in " + dir.string());
  }
  if (fd < 0) return Status::internal("cannot create a temp file in " + dir.string() + ": all names taken");

  auto fail = [&](const std::string& what) {
    Status s = os_error(what);
    if (fd >= 0) ::close(fd);
    ::unlink(tmp.c_str());
    return s;
  };
  for (size_t done = 0; done < bytes.size();) {
    const ssize_t n = ::write(fd, bytes.data() + done, bytes.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return fail("cannot write " + tmp);
    done += static_cast<size_t>(n);
  }
  if (::fsync(fd) != 0) return fail("cannot fsync " + tmp);
  if (::close(fd) != 0) {
    fd = -1;
    return fail("cannot close " + tmp);
  }
  fd = -1;
  if (overwrite) {
    if (::rename(tmp.c_str(), path.c_str()) != 0) return fail("cannot rename " + tmp + " to " + path);
    return Status::ok();
  }
  // link() refuses to replace: the check above and this one leave no window for a lost file.
  if (::link(tmp.c_str(), path.c_str()) != 0) {
    if (errno == EEXIST) {
      ::unlink(tmp.c_str());
      return Status::already_exists(path + " exists; use --force to replace it");
    }
    return fail("cannot link " + tmp + " to " + path);
  }
  ::unlink(tmp.c_str());
  return Status::ok();
}

}  // namespace mufl::cli
