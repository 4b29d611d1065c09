#pragma once
// DeferredResponse: a reply that is not ready when the handler returns, such as the long poll
// of GET /v1/clients/me/work, which waits up to a minute for work. Only the HTTP server drives
// it (service/http_server.h): it calls start() once, and when `done` is called writes that
// reply as if the handler had returned it (keep-alive included). No thread waits meanwhile, so
// a thousand open polls cost a thousand small objects, not a thousand handler threads.
//
// Thread safety: start() and cancel() may run on different threads at once; implementations
// synchronise.
#include <functional>

namespace mufl::service {

struct HttpResponse;

class DeferredResponse {
 public:
  virtual ~DeferredResponse() = default;

  // Calls `done` exactly once, from any thread, possibly before returning. `done` only posts
  // to the connection and never blocks.
  virtual void start(std::function<void(HttpResponse)> done) = 0;

  // The server drains: `done` must be called promptly (with whatever reply the wait has then,
  // usually its empty one). Never blocks, idempotent, from any thread, before or after start().
  virtual void cancel() = 0;
};

}  // namespace mufl::service
