#pragma once
// ResponseStream: a response body that is written as it is produced (GET /v1/events), instead
// of a complete HttpResponse::body. Only the HTTP server drives it (service/http_server.h):
// it writes the status line and headers, then asks for one chunk at a time, writes it, and asks
// again, until a chunk says it is the last one or the stream is cancelled.
//
// Thread safety: next() and cancel() may run on different threads at once; implementations
// synchronise. The server never has two next() calls outstanding.
#include <chrono>
#include <functional>
#include <string>

namespace mufl::service {

struct StreamChunk {
  std::string data;   // bytes written as they are (no chunked framing)
  bool last = false;  // the stream ends after `data`; the server then closes the connection
};

class ResponseStream {
 public:
  virtual ~ResponseStream() = default;

  // Asks for the next chunk. Calls `ready` exactly once, from any thread, possibly before
  // returning: with non-empty data, or with last = true. `ready` only posts to the connection
  // and never blocks. Where it runs is next_may_block()'s answer just before the call.
  virtual void next(std::function<void(StreamChunk)> ready) = 0;

  // true: the coming next() may block (on a database read, say), so the server runs it where
  // request handlers run (the handler pool); false: it returns at once, and the server calls
  // it on the connection's own I/O thread, saving a hop through the pool, which may be busy
  // with slow requests. Asked only between next() calls. Default true.
  virtual bool next_may_block() const { return true; }

  // Ends the stream early: the client went away, or the server shuts down. Never blocks,
  // idempotent, from any thread. A next() that waits calls its `ready` promptly with
  // last = true (with a parting line, if the stream has one); a later next() does so at once.
  virtual void cancel() = 0;

  // Written by the server when the stream has produced nothing for heartbeat_interval(), to
  // keep proxies from closing an idle connection (SSE: ": keep-alive\n\n"). An interval of 0
  // or an empty text: no heartbeat.
  virtual std::string heartbeat() const { return {}; }
  virtual std::chrono::milliseconds heartbeat_interval() const { return std::chrono::milliseconds(0); }
};

}  // namespace mufl::service
