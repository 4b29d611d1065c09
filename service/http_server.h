#pragma once
// HttpServer: HTTP/1.1 over Boost.Beast, shaped like Beast's "advanced server" example. A
// listener accepts connections; each connection is a session that owns its socket, runs on its
// own strand, reads one request at a time with a body limit and timeouts, and hands the parsed
// request to the RequestHandler on a separate handler pool (handlers may block on SQLite; I/O
// threads never do). Beast stays inside http_server.cpp.
//
// Errors at the edge: a body over the limit → 413, header block too large → 431, unparsable
// HTTP → 400, each as problem+json and followed by closing the connection. A connection beyond
// max_connections is answered 503 with "Retry-After: 1" before it is read, then closed.
//
// Streaming responses: a handler's response with a `stream` (service/response_stream.h) is sent
// as its header, without Content-Length and with "Connection: close", then as the stream's
// chunks, one write at a time, until the last chunk; then the connection closes. While it
// streams the session keeps a read pending, so a client that goes away cancels the stream at
// once; it writes the stream's heartbeat when the stream has been silent for its interval; and
// a write that makes no progress for stream_write_timeout closes the connection (a client that
// stops reading costs no more than the stream's own bounded queue).
//
// HTTPS: with tls_cert_file and tls_key_file set, every connection is TLS (Beast's ssl_stream;
// service/tls_context.h: TLS 1.2 at least) and runs the same session code as plain HTTP,
// streams included. The handshake must finish within read_timeout; one that fails (a plain
// HTTP request, a client that does not trust the certificate, a scan) or times out closes the
// connection, logged at debug. The lingering close after a "Connection: close" reply sends
// close_notify; idle connections and ended streams close without it.
//
// Accept errors (out of file descriptors: EMFILE, ENFILE) are logged and retried after a
// back-off of 10 ms doubling to 1 s, reset by the next success, so they never spin a core.
//
// Shutdown: shutdown() (or SIGTERM/SIGINT when handle_signals is set) stops accepting, lets
// requests in flight finish and be answered with "Connection: close", closes idle connections,
// cancels open streams (each writes its last chunk and closes), and makes run() return — at
// the latest after drain_timeout, also when a handler blocks: a handler still running then is
// not waited for (handlers_running() says how many), its connection is not answered, and
// ~HttpServer waits for it. A process that must exit without that wait ends with std::_Exit
// (mufld does; its state is in SQLite transactions, so nothing acknowledged is lost).
//
// Thread safety: listen() and run() from one thread; shutdown() from any thread.
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "core/status.h"
#include "service/http_types.h"

namespace mufl::service {

struct HttpServerOptions {
  std::string host = "127.0.0.1";  // address to bind; "0.0.0.0" or "::" for all interfaces
  uint16_t port = 8080;            // 0 picks a free port; port() tells which
  int io_threads = 2;              // threads running sockets (default: the machine's cores)
  int handler_threads = 2;         // threads running handlers
  size_t body_limit = 1 << 20;     // request bodies above this many bytes get 413 (1 MiB)
  // Bytes of large request bodies (a declared Content-Length over 64 KiB) read into memory at
  // once; a request over it waits, its body unread, until earlier ones were handled
  // (service/body_budget.h). 0: no limit.
  size_t body_memory = 16 << 20;
  std::chrono::seconds read_timeout{30};   // idle keep-alive connections close after this
  std::chrono::seconds drain_timeout{10};  // longest wait for in-flight requests at shutdown
  std::chrono::seconds stream_write_timeout{30};  // a streamed write stuck this long closes the connection
  size_t max_connections = 1024;   // open connections at most; one more gets 503 + Retry-After: 1 and is closed; 0 = no limit
  bool handle_signals = true;      // SIGTERM and SIGINT start shutdown()
  std::string server_name = "mufld";
  // HTTPS: a PEM certificate chain (the server's certificate first) and its unencrypted PEM
  // private key, read by listen(). Both empty (default): plain HTTP.
  std::string tls_cert_file;
  std::string tls_key_file;
  // A request for which this returns true is handled on the I/O thread that read it, saving the
  // two thread hops to the handler pool and back; every other request runs on the pool. Only for
  // handlers that never wait long (a bounded read, no fsync, no write lock), since the I/O
  // thread serves other connections meanwhile. Called on the I/O thread; must not throw.
  // Default none: every request on the pool.
  std::function<bool(const HttpRequest&)> is_quick;
  // The body limit of one request, chosen from its method and target once its header is read
  // (called on the I/O thread; must not block or throw); nullopt: body_limit. For routes whose
  // bodies are larger than the default and bounded by what the target names (a lease's update).
  // Default none: body_limit for every request.
  // `authorization` is the request's Authorization header ("" when none), so that a route may
  // allow a large body only to a caller whose token it knows.
  std::function<std::optional<size_t>(std::string_view method, std::string_view target,
                                      std::string_view authorization)>
      body_limit_for;
  // Called on the I/O thread after each failed accept (EMFILE, ENFILE, ...), before the server
  // waits to accept again: 10 ms after the first failure, doubling up to 1 s, back to 10 ms
  // after a success. Default none; for tests.
  std::function<void()> on_accept_error;
};

using RequestHandler = std::function<HttpResponse(HttpRequest&&)>;

class HttpServer {
 public:
  HttpServer(HttpServerOptions options, RequestHandler handler);
  ~HttpServer();
  HttpServer(const HttpServer&) = delete;
  HttpServer& operator=(const HttpServer&) = delete;

  // Loads the TLS files (when set), resolves the host and binds; from here on SIGTERM/SIGINT
  // start shutdown() (handle_signals), also before run(). kInvalidArgument for a host that is
  // not an address, and for TLS files that are not both set, cannot be read, are not PEM, or
  // do not match (the message names the file); kUnavailable when the address is in use or
  // cannot be bound.
  Status listen();
  // The bound port (after listen()).
  uint16_t port() const;
  // Accepts and serves until shutdown completes. Blocks.
  void run();
  // Starts a graceful shutdown. Idempotent.
  void shutdown();
  // Handlers still running; after run() returned, the ones it did not wait for. Any thread.
  size_t handlers_running() const;
  // Requests whose large body waits, unread, for room in body_memory. Any thread.
  size_t bodies_waiting() const;
  // ~HttpServer: waits for every handler still running, however long it blocks.

 private:
  class Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace mufl::service
