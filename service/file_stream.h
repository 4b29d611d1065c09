#pragma once
// FileStream: a file's bytes as a streamed response body (service/response_stream.h), read
// from the disk in pieces of 256 KiB as the connection takes them, so that a 47 MB data set
// file never sits in memory whole. The response it makes carries the file's Content-Length
// (unlike other streams), so a client sees a body cut short as broken, though the server
// closes the connection after it as after every stream.
//
// Thread safety: as ResponseStream (next() and cancel() from different threads at once).
#include <atomic>
#include <cstdint>
#include <memory>
#include <string>

#include "core/result.h"
#include "service/http_types.h"
#include "service/response_stream.h"

namespace mufl::service {

class FileStream : public ResponseStream {
 public:
  // Opens `path` for reading. kNotFound when there is no such regular file; kUnavailable when
  // it cannot be opened (the message names the path: for the log only).
  static Result<std::shared_ptr<FileStream>> open(const std::string& path);
  ~FileStream() override;  // closes the file
  FileStream(const FileStream&) = delete;
  FileStream& operator=(const FileStream&) = delete;

  // The file's size when it was opened: the body sends exactly this many bytes, or fewer (and
  // ends there) when the file shrank meanwhile or a read fails.
  uint64_t size() const { return size_; }

  // The next piece of the file, read at once (blocks on the disk); last = true with the piece
  // that reaches size(), or with nothing after cancel(), a short file or a failed read.
  void next(std::function<void(StreamChunk)> ready) override;
  void cancel() override { cancelled_.store(true); }

 private:
  FileStream(int fd, uint64_t size) : fd_(fd), size_(size) {}

  const int fd_;
  const uint64_t size_;
  uint64_t sent_ = 0;  // next() calls never overlap
  std::atomic<bool> cancelled_{false};
};

// A 200 response streaming `file`: `content_type`, Content-Length: file->size(), and "Cache-Control: no-store".
HttpResponse file_response(std::shared_ptr<FileStream> file, const std::string& content_type);

}  // namespace mufl::service
