#pragma once
// A blocking Server-Sent Events client for tests (GET /v1/events): one connection, the
// response's status and headers, then the events one at a time, each read with a deadline (no
// sleeps). Plain POSIX sockets, so it can also watch for the server closing the stream.
#include <chrono>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace mufl::testing {

struct SseEvent {
  std::string id;
  std::string type;  // the "event:" field
  std::string data;  // the "data:" lines, joined with '\n'
};

class SseClient {
 public:
  // Connects to 127.0.0.1:`port`, sends GET `target` with a bearer `token` ("" for none) and
  // `headers`, and reads the status line and headers (within 10 s). A response other than 200 is
  // read whole into body(). Throws std::runtime_error when it cannot connect or gets no header.
  SseClient(uint16_t port, const std::string& target, const std::string& token,
            const std::map<std::string, std::string>& headers = {});
  ~SseClient();
  SseClient(const SseClient&) = delete;
  SseClient& operator=(const SseClient&) = delete;

  int status() const { return status_; }
  // A response header (name in lower case), "" when absent.
  std::string header(const std::string& name) const;
  const std::string& body() const { return body_; }

  // The next event, or nullopt when `timeout` passes first or the server closed the stream.
  std::optional<SseEvent> next(std::chrono::milliseconds timeout);
  // Events until `n` arrived (fewer when `timeout`, for all of them, passes or the stream ends).
  std::vector<SseEvent> take(size_t n, std::chrono::milliseconds timeout);
  // Comment lines seen so far (": keep-alive" → "keep-alive").
  const std::vector<std::string>& comments() const { return comments_; }
  // Reads until the server closes the connection; false when `timeout` passes first.
  bool wait_closed(std::chrono::milliseconds timeout);
  bool closed() const { return closed_; }

 private:
  // Appends what the socket has to buf_ until `deadline`; false on timeout or close.
  bool fill(std::chrono::steady_clock::time_point deadline);
  std::optional<std::string> line(std::chrono::steady_clock::time_point deadline);

  int fd_ = -1;
  int status_ = 0;
  std::map<std::string, std::string> headers_;
  std::string body_;
  std::string buf_;
  std::vector<std::string> comments_;
  bool closed_ = false;
};

}  // namespace mufl::testing
