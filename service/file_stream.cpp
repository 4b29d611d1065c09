#include "service/file_stream.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

namespace mufl::service {

namespace {

constexpr size_t kPiece = 256 * 1024;

}  // namespace

Result<std::shared_ptr<FileStream>> FileStream::open(const std::string& path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    const int err = errno;  // before anything else can change it
    std::string msg = "cannot open " + path + ": " + std::strerror(err);
    return err == ENOENT ? Status::not_found(std::move(msg)) : Status::unavailable(std::move(msg));
  }
  struct stat st {};
  if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    ::close(fd);
    return Status::not_found(path + " is no regular file");
  }
  return std::shared_ptr<FileStream>(new FileStream(fd, static_cast<uint64_t>(st.st_size)));
}

FileStream::~FileStream() { ::close(fd_); }

void FileStream::next(std::function<void(StreamChunk)> ready) {
  if (cancelled_.load() || sent_ >= size_) return ready({"", true});
  std::string piece(static_cast<size_t>(std::min<uint64_t>(kPiece, size_ - sent_)), '\0');
  size_t got = 0;
  while (got < piece.size()) {
    const ssize_t n = ::pread(fd_, piece.data() + got, piece.size() - got, static_cast<off_t>(sent_ + got));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;  // shrunk, or a read error: the body ends short, which the client sees
    got += static_cast<size_t>(n);
  }
  const bool whole = got == piece.size();
  piece.resize(got);
  sent_ += got;
  ready({std::move(piece), !whole || sent_ >= size_});
}

HttpResponse file_response(std::shared_ptr<FileStream> file, const std::string& content_type) {
  HttpResponse r;
  r.content_type = content_type;
  r.headers.emplace_back("Content-Length", std::to_string(file->size()));
  r.headers.emplace_back("Cache-Control", "no-store");
  r.stream = std::move(file);
  return r;
}

}  // namespace mufl::service
