#include "service/http_server.h"

#include <boost/asio.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <spdlog/spdlog.h>

#include <array>
#include <atomic>
#include <condition_variable>
#include <deque>
#include <functional>
#include <mutex>
#include <optional>
#include <thread>
#include <type_traits>
#include <unordered_map>
#include <vector>

#include "service/beast_request.h"
#include "service/body_budget.h"
#include "service/problem.h"
#include "service/deferred_response.h"
#include "service/response_stream.h"
#include "service/tls_context.h"

namespace mufl::service {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;
namespace ssl = asio::ssl;
// A session's connection: plain TCP, or TLS over TCP. Both run the same session code.
using PlainStream = beast::tcp_stream;
using TlsStream = beast::ssl_stream<beast::tcp_stream>;

namespace {
constexpr size_t kBudgetedBody = 64 << 10;  // bodies declared larger count against body_memory
constexpr size_t kKeptReadBuffer = 16 << 10;  // an idle connection's read buffer keeps at most this
constexpr size_t kLingerLimit = 8 << 20;           // bytes we read and drop after an error reply
constexpr std::chrono::seconds kLingerTimeout{2};  // and for how long at most
constexpr std::chrono::milliseconds kAcceptBackoffFirst{10};  // the wait after a failed accept
constexpr std::chrono::milliseconds kAcceptBackoffMax{1000};  // doubling up to this

// The handler threads. Unlike asio::thread_pool, stopping it waits for a running task only
// until a deadline: a handler that blocks past it is left running (join() later waits for
// it), so that a blocked handler cannot hold up shutdown. Nothing a task throws escapes.
class HandlerPool {
 public:
  explicit HandlerPool(size_t threads) {
    for (size_t i = 0; i < threads; ++i) threads_.emplace_back([this] { work(); });
  }
  ~HandlerPool() { join(); }

  template <typename F>
  void post(F&& f) {
    auto task = std::make_shared<std::decay_t<F>>(std::forward<F>(f));
    std::lock_guard lock(mu_);
    if (stopping_) return;  // dropped: the server has stopped
    queue_.emplace_back([task] { (*task)(); });
    cv_.notify_one();
  }

  // Stops taking tasks (queued ones are dropped) and waits until no task runs or `deadline`.
  // True when none runs any more.
  bool stop(std::chrono::steady_clock::time_point deadline) {
    std::deque<std::function<void()>> dropped;
    std::unique_lock lock(mu_);
    stopping_ = true;
    dropped.swap(queue_);
    cv_.notify_all();
    const bool idle = idle_cv_.wait_until(lock, deadline, [&] { return running_ == 0; });
    lock.unlock();
    dropped.clear();  // outside the lock: a task's captures may end a session
    return idle;
  }

  size_t running() {
    std::lock_guard lock(mu_);
    return running_;
  }

  // Stops and waits for every thread, however long a task runs.
  void join() {
    {
      std::lock_guard lock(mu_);
      stopping_ = true;
      cv_.notify_all();
    }
    for (auto& t : threads_)
      if (t.joinable()) t.join();
    std::lock_guard lock(mu_);
    queue_.clear();
  }

 private:
  void work() {
    std::unique_lock lock(mu_);
    for (;;) {
      cv_.wait(lock, [&] { return stopping_ || !queue_.empty(); });
      if (stopping_) return;
      auto task = std::move(queue_.front());
      queue_.pop_front();
      ++running_;
      lock.unlock();
      try {
        task();
      } catch (...) {
        spdlog::error("http server: a task on the handler pool threw");
      }
      task = nullptr;  // its captures die here, outside the lock
      lock.lock();
      --running_;
      idle_cv_.notify_all();
    }
  }

  std::mutex mu_;
  std::condition_variable cv_, idle_cv_;
  std::deque<std::function<void()>> queue_;
  size_t running_ = 0;
  bool stopping_ = false;
  std::vector<std::thread> threads_;
};

}  // namespace

class HttpServer::Impl {
 public:
  Impl(HttpServerOptions options, RequestHandler handler)
      : options_(std::move(options)),
        handler_(std::move(handler)),
        body_budget_(options_.body_memory),
        ioc_(std::max(1, options_.io_threads)),
        acceptor_(asio::make_strand(ioc_)),
        accept_timer_(acceptor_.get_executor()),
        signals_(ioc_),
        control_(asio::make_strand(ioc_)),
        drain_timer_(control_),
        pool_(static_cast<size_t>(std::max(1, options_.handler_threads))) {}

  ~Impl() {
    stopped_ = true;
    pool_.join();
  }

  Status listen();
  // The TLS context from the options' files; none for plain HTTP.
  Status load_tls();
  uint16_t port() const { return port_; }
  void run();
  void shutdown();
  size_t handlers_running();
  size_t bodies_waiting() const { return body_budget_.waiting(); }

  class Session;
  template <typename Stream>
  class StreamSession;

 private:
  template <typename Stream>
  friend class StreamSession;
  void do_accept();
  // Registers a new connection and starts it, or rejects it when max_connections are open.
  void admit(const std::shared_ptr<Session>& session);
  void session_started(Session* s, const std::shared_ptr<Session>& p);
  void session_ended(Session* s);
  // shutdown()'s last step: drain() every session; none left cancels the drain timer.
  void drain_sessions();
  // handler_(req), or a 500 problem when it throws (logged): nothing thrown by a handler
  // reaches the pool's threads, which would end the process.
  HttpResponse call_handler(HttpRequest&& req);
  // ioc_.run() on this thread until it returns normally: an exception out of a completion
  // handler is logged and the loop goes on (it would otherwise end the thread and the process).
  void run_io();

  // Destruction runs bottom-up, and a Session can die in any of it: in the pool's destructor
  // (a queued handler that holds one) and in ioc_'s (a queued completion handler that holds
  // one). So everything ~Session touches (sessions_mu_, sessions_, draining_, stopped_) is
  // declared above ioc_ and the pool, and outlives both; ~Session posts to control_ only while
  // stopped_ is false, i.e. never once ~Impl has begun.
  HttpServerOptions options_;
  RequestHandler handler_;
  std::mutex sessions_mu_;
  std::unordered_map<Session*, std::weak_ptr<Session>> sessions_;
  std::atomic<bool> draining_{false};
  std::atomic<bool> stopped_{false};    // set by ~Impl: sessions that end from then on post nothing
  std::atomic<size_t> connections_{0};  // sessions counted against max_connections
  // Large bodies in memory at once (service/body_budget.h). Outlives ioc_ and the pool, where
  // grants are released; its waiters hold sessions, so it dies before what ~Session touches.
  BodyBudget body_budget_;

  asio::io_context ioc_;
  tcp::acceptor acceptor_;
  asio::steady_timer accept_timer_;          // the back-off after a failed accept (acceptor's strand)
  std::chrono::milliseconds accept_backoff_{0};  // 0 after a success
  asio::signal_set signals_;
  asio::strand<asio::io_context::executor_type> control_;  // serialises the drain timer
  asio::steady_timer drain_timer_;
  HandlerPool pool_;
  std::chrono::steady_clock::time_point drain_deadline_;  // set by shutdown(), read after ioc_ ends
  std::mutex deadline_mu_;
  uint16_t port_ = 0;
  std::shared_ptr<ssl::context> tls_;  // set by listen() when serving HTTPS
};

// What the server needs of a session, whatever its stream: start, reject, drain.
class HttpServer::Impl::Session {
 public:
  virtual ~Session() = default;
  virtual void start() = 0;
  virtual void reject() = 0;
  virtual void drain() = 0;
};

// One connection: read a request, run the handler on the pool, write the response, repeat.
// A streamed response (service/response_stream.h) ends the loop: the session writes the
// stream's chunks until it ends, then closes. `Stream` is PlainStream or TlsStream; the two
// differ only in open() (the TLS handshake), linger_close() and stream_layer().
template <typename Stream>
class HttpServer::Impl::StreamSession : public Session, public std::enable_shared_from_this<StreamSession<Stream>> {
  static constexpr bool kTls = std::is_same_v<Stream, TlsStream>;

 public:
  // `tls` is the server's TLS context for a TlsStream, nothing for a PlainStream.
  template <typename... Tls>
  StreamSession(Impl& server, tcp::socket&& socket, Tls&... tls)
      : server_(server),
        stream_(std::move(socket), tls...),
        tick_timer_(stream_.get_executor()) {}
  ~StreamSession() override {
    if (counted_) --server_.connections_;
    if (source_) source_->cancel();
    if (deferred_) deferred_->cancel();
    server_.session_ended(this);
  }

  void start() override {
    counted_ = true;
    ++server_.connections_;
    open([self = this->shared_from_this()] { self->do_read(); });
  }

  // One connection over max_connections: 503 with Retry-After, then the lingering close.
  void reject() override {
    open([self = this->shared_from_this()] {
      HttpResponse res = problem(503, "about:blank", "too many open connections; try again later");
      res.headers.emplace_back("Retry-After", "1");
      self->reply_and_close(std::move(res));
    });
  }

  // Called on shutdown: an idle connection closes now; one with a request in flight (being
  // read, handled or written) closes after its response.
  void drain() override {
    asio::dispatch(stream_.get_executor(), [self = this->shared_from_this()] {
      if (self->source_) return self->source_->cancel();  // it writes its last chunk, then closes
      if (self->deferred_) return self->deferred_->cancel();  // it replies now, then the session closes
      bool reading_request = self->buffer_.size() > 0 || (self->parser_ && self->parser_->got_some());
      if (!self->busy_ && !reading_request) self->close();
    });
  }

 private:
  beast::tcp_stream& tcp_layer() { return beast::get_lowest_layer(stream_); }

  // Runs `then` on the session's strand once the connection is ready for HTTP: at once on plain
  // TCP; after the TLS handshake, which must finish within read_timeout. A handshake that fails
  // (a plain HTTP request, an unknown CA, a port scan) or times out closes the connection; it
  // is the client's problem, so it is logged at debug only.
  template <typename Then>
  void open(Then then) {
    if constexpr (!kTls) {
      asio::dispatch(stream_.get_executor(), std::move(then));
    } else {
      asio::dispatch(stream_.get_executor(), [self = this->shared_from_this(), then = std::move(then)]() mutable {
        self->tcp_layer().expires_after(self->server_.options_.read_timeout);
        self->stream_.async_handshake(ssl::stream_base::server,
                                      [self, then = std::move(then)](beast::error_code ec) mutable {
                                        if (!ec) return then();
                                        spdlog::debug("TLS handshake failed: {}", ec.message());
                                        self->close();
                                      });
      });
    }
  }

  // Where a streamed response's bytes go: past tcp_stream's timers (the session times a
  // stream with its own timer). The bare socket, or TLS over a tcp_stream whose timers are off.
  auto& stream_layer() {
    if constexpr (kTls)
      return stream_;
    else
      return stream_.socket();
  }

  void do_read() {
    if (server_.draining_) return close();
    parser_.emplace();
    body_limit_ = server_.options_.body_limit;
    parser_->body_limit(body_limit_);
    parser_->header_limit(kHeaderLimit);
    tcp_layer().expires_after(server_.options_.read_timeout);
    if (!server_.options_.body_limit_for && server_.options_.body_memory == 0)
      return http::async_read(stream_, buffer_, *parser_,
                              beast::bind_front_handler(&StreamSession::on_read, this->shared_from_this()));
    // The parser checks a Content-Length against its limit as the header ends: no limit
    // until the header says which one applies (on_header checks it then, and waits for room
    // for a large body).
    parser_->body_limit(boost::none);
    http::async_read_header(stream_, buffer_, *parser_,
                            beast::bind_front_handler(&StreamSession::on_header, this->shared_from_this()));
  }

  // The header is in, the body not yet parsed: its limit, and room for it when it is large.
  void on_header(beast::error_code ec, size_t) {
    if (ec) return on_read(ec, 0);
    const auto& head = parser_->get();
    const auto& limit_for = server_.options_.body_limit_for;
    body_limit_ = (limit_for ? limit_for(head.method_string(), head.target(), head[http::field::authorization])
                             : std::nullopt)
                      .value_or(server_.options_.body_limit);
    const auto declared = parser_->content_length();
    if (declared && *declared > body_limit_)
      return on_read(http::error::body_limit, 0);
    parser_->body_limit(body_limit_);  // chunked bodies count against it as they come
    if (!declared || *declared <= kBudgetedBody || server_.options_.body_memory == 0) return read_body();
    // A large body waits, unread, for room in the server's body memory (service/body_budget.h).
    tcp_layer().expires_never();  // waiting for room is the server's doing, not the client's idleness
    server_.body_budget_.acquire(*declared, [self = this->shared_from_this(), bytes = *declared] {
      auto grant = BodyBudget::hold(self->server_.body_budget_, bytes);  // released even if never run
      asio::dispatch(self->stream_.get_executor(), [self, grant = std::move(grant)]() mutable {
        self->grant_ = std::move(grant);
        self->read_body();
      });
    });
  }

  void read_body() {
    tcp_layer().expires_after(server_.options_.read_timeout);
    http::async_read(stream_, buffer_, *parser_,
                     beast::bind_front_handler(&StreamSession::on_read, this->shared_from_this()));
  }

  void on_read(beast::error_code ec, size_t) {
    auto grant = std::move(grant_);  // the body's room in the budget: freed with the request
    if (ec) {
      auto reply = parse_error_reply(ec, body_limit_);
      return reply ? reply_and_close(std::move(*reply)) : close();
    }

    auto beast_req = parser_->release();
    // A large body grew the read buffer; a keep-alive connection would hold that for its life
    // (a thousand clients' connections, a thousand such buffers).
    if (buffer_.size() == 0 && buffer_.capacity() > kKeptReadBuffer) buffer_.shrink_to_fit();
    version_ = beast_req.version();
    keep_alive_ = beast_req.keep_alive();
    head_ = beast_req.method() == http::verb::head;

    HttpRequest req;
    if (!to_http_request(std::move(beast_req), req)) return reply_and_close(bad_target_reply());

    busy_ = true;
    tcp_layer().expires_never();
    if (server_.options_.is_quick && server_.options_.is_quick(req)) return respond(server_.call_handler(std::move(req)));
    // Keeps run() alive while the handler works off the I/O threads.
    auto guard = asio::make_work_guard(server_.ioc_);
    server_.pool_.post([self = this->shared_from_this(), req = std::move(req), guard = std::move(guard),
                        grant = std::move(grant)]() mutable {
      HttpResponse res = self->server_.call_handler(std::move(req));
      grant.reset();
      asio::post(self->stream_.get_executor(), [self, res = std::move(res)]() mutable { self->respond(std::move(res)); });
    });
  }

  // On the session's I/O thread, with the handler's response.
  void respond(HttpResponse res) {
    if (res.stream) return start_stream(std::move(res));
    if (res.deferred) return start_deferred(std::move(res.deferred));
    write(std::move(res), keep_alive_ && !server_.draining_);
  }

  void write(HttpResponse res, bool keep_alive) {
    if (res.shared_body) return write_shared(std::move(res), keep_alive);
    auto out = std::make_shared<http::response<http::string_body>>(static_cast<http::status>(res.status), version_);
    set_head(*out, res, keep_alive);
    if (head_) {
      out->content_length(res.body.size());
    } else {
      out->body() = std::move(res.body);
      out->prepare_payload();
    }
    send(std::move(out), keep_alive);
  }

  // A body shared with other responses: sent from its one copy, which the write keeps alive.
  void write_shared(HttpResponse res, bool keep_alive) {
    using SharedResponse = http::response<http::span_body<const char>>;
    auto out = std::make_shared<SharedResponse>(static_cast<http::status>(res.status), version_);
    set_head(*out, res, keep_alive);
    if (head_) {
      out->content_length(res.shared_body->size());
    } else {
      out->body() = {res.shared_body->data(), res.shared_body->size()};
      out->prepare_payload();
    }
    send(std::move(out), keep_alive, std::move(res.shared_body));
  }

  template <class Response>
  void set_head(Response& out, const HttpResponse& res, bool keep_alive) {
    out.set(http::field::server, server_.options_.server_name);
    out.set(http::field::content_type, res.content_type);
    for (auto& [name, value] : res.headers) out.insert(name, value);
    out.keep_alive(keep_alive);
  }

  // Writes `out`; `keep` (the bytes a body points into) lives until the write completes.
  template <class Response>
  void send(std::shared_ptr<Response> out, bool keep_alive, std::shared_ptr<const std::string> keep = nullptr) {
    tcp_layer().expires_after(server_.options_.read_timeout);
    http::async_write(stream_, *out, [self = this->shared_from_this(), out, keep = std::move(keep), keep_alive](
                                         beast::error_code ec, size_t) {
      self->busy_ = false;
      if (ec || !keep_alive) return self->linger_close();
      self->do_read();
    });
  }

  // A reply that comes later (service/deferred_response.h): the connection stays open and
  // idle, without a read timeout, until `done`; then the reply is written as any other.
  void start_deferred(std::shared_ptr<DeferredResponse> deferred) {
    deferred_ = std::move(deferred);
    if (server_.draining_) deferred_->cancel();
    deferred_->start([self = this->shared_from_this()](HttpResponse res) {
      asio::post(self->stream_.get_executor(), [self, res = std::move(res)]() mutable {
        self->deferred_.reset();
        res.deferred.reset();  // a reply is written, never deferred twice
        self->respond(std::move(res));
      });
    });
  }

  // --- streamed responses ------------------------------------------------------------------
  // All on the session's strand. At most one write is outstanding (writing_), and at most one
  // next() (waiting_); a chunk that arrives while a heartbeat is being written waits in pending_.
  // One timer (tick_timer_) serves the heartbeat and the write timeout, and is re-armed only
  // when it fires, so an event costs each stream no timer operation.

  void start_stream(HttpResponse res) {
    source_ = std::move(res.stream);
    auto head = std::make_shared<http::response<http::empty_body>>(static_cast<http::status>(res.status), version_);
    head->set(http::field::server, server_.options_.server_name);
    head->set(http::field::content_type, res.content_type);
    for (auto& [name, value] : res.headers) head->insert(name, value);
    head->keep_alive(false);  // no Content-Length: the body ends when the connection closes
    auto sr = std::make_shared<http::response_serializer<http::empty_body>>(*head);
    if (server_.draining_) source_->cancel();  // shutdown began while the handler ran
    tcp_layer().expires_never();  // the session times the stream itself (on_tick)
    writing_ = true;
    write_started_ = last_write_ = std::chrono::steady_clock::now();
    arm_tick(next_tick(write_started_));
    http::async_write_header(stream_, *sr, [self = this->shared_from_this(), head, sr](beast::error_code ec, size_t) {
      self->writing_ = false;
      self->last_write_ = std::chrono::steady_clock::now();
      if (ec || self->head_) return self->end_stream();
      self->watch_client();
      self->ask_next();
    });
  }

  // A client has nothing to send on a stream: what it sends is dropped, and the end of its
  // side (or a reset) ends the stream and frees what it holds at once. On stream_layer(): the
  // session keeps its own timer while it streams.
  void watch_client() {
    stream_layer().async_read_some(asio::buffer(watch_buf_), [self = this->shared_from_this()](beast::error_code ec, size_t) {
      if (ec) return self->end_stream();
      self->watch_client();
    });
  }

  void ask_next() {
    if (ended_) return;
    waiting_ = true;
    auto ask = [self = this->shared_from_this(), source = source_] {
      try {
        source->next([self](StreamChunk chunk) {
          asio::post(self->stream_.get_executor(),
                     [self, chunk = std::move(chunk)]() mutable { self->on_chunk(std::move(chunk)); });
        });
      } catch (...) {  // on the pool, where nothing may escape: the stream ends instead
        spdlog::error("a streamed response's next() threw: ending the stream");
        asio::post(self->stream_.get_executor(), [self] { self->end_stream(); });
      }
    };
    if (source_->next_may_block())
      server_.pool_.post(std::move(ask));
    else
      ask();  // on this strand: it returns at once
  }

  void on_chunk(StreamChunk chunk) {
    waiting_ = false;
    if (ended_) return;
    if (writing_) {
      pending_ = std::move(chunk);
      return;
    }
    write_chunk(std::move(chunk));
  }

  void write_chunk(StreamChunk chunk) {
    if (chunk.data.empty()) return chunk.last ? end_stream() : ask_next();
    write_bytes(std::make_shared<std::string>(std::move(chunk.data)), chunk.last);
  }

  void write_bytes(std::shared_ptr<std::string> bytes, bool last) {
    writing_ = true;
    write_started_ = std::chrono::steady_clock::now();
    asio::async_write(stream_layer(), asio::buffer(*bytes), [self = this->shared_from_this(), bytes, last](beast::error_code ec, size_t) {
      self->writing_ = false;
      self->last_write_ = std::chrono::steady_clock::now();
      if (ec || last) return self->end_stream();
      if (self->pending_) {
        StreamChunk next = std::move(*self->pending_);
        self->pending_.reset();
        return self->write_chunk(std::move(next));
      }
      if (!self->waiting_) self->ask_next();
    });
  }

  void arm_tick(std::chrono::steady_clock::duration after) {
    tick_timer_.expires_after(std::max<std::chrono::steady_clock::duration>(after, std::chrono::milliseconds(1)));
    tick_timer_.async_wait([self = this->shared_from_this()](beast::error_code ec) {
      if (!ec && !self->ended_) self->on_tick();
    });
  }

  // A write stuck for stream_write_timeout (a client that stopped reading fills its socket
  // buffers) closes the connection; a stream silent for its heartbeat interval gets its heartbeat.
  void on_tick() {
    const auto now = std::chrono::steady_clock::now();
    const auto write_timeout = server_.options_.stream_write_timeout;
    const auto heartbeat = source_->heartbeat_interval();
    if (writing_ && now - write_started_ >= write_timeout) {
      spdlog::info("a streamed response made no progress for {} s: closing the connection", write_timeout.count());
      return end_stream();
    }
    if (!writing_ && waiting_ && heartbeat.count() > 0 && now - last_write_ >= heartbeat) {
      std::string text = source_->heartbeat();
      if (!text.empty()) write_bytes(std::make_shared<std::string>(std::move(text)), false);
    }
    arm_tick(next_tick(now));
  }

  // When to look again: the end of the write in progress (and no later than a heartbeat
  // interval, since the write usually ends long before), or the heartbeat after the last write.
  std::chrono::steady_clock::duration next_tick(std::chrono::steady_clock::time_point now) const {
    const auto write_timeout = server_.options_.stream_write_timeout;
    const auto heartbeat = source_->heartbeat_interval();
    if (writing_) {
      auto due = write_started_ + write_timeout - now;
      if (heartbeat.count() > 0) due = std::min<std::chrono::steady_clock::duration>(due, heartbeat);
      return due;
    }
    if (heartbeat.count() > 0) return last_write_ + heartbeat - now;
    return write_timeout;
  }

  void end_stream() {
    if (ended_) return;
    ended_ = true;
    source_->cancel();  // a next() that waits calls back; the session then goes away
    tick_timer_.cancel();
    close();
  }

  void reply_and_close(HttpResponse res) {
    if (version_ == 0) version_ = 11;
    head_ = false;
    write(std::move(res), false);
  }

  // Half-closes, then reads and drops what the client still sends (up to a limit), so that the
  // client reads our error reply instead of a connection reset (nginx's lingering close). Over
  // TLS the half-close is the close_notify alert, and OpenSSL drops what arrives after it
  // until the client's close_notify or its end of the connection.
  void linger_close() {
    tcp_layer().expires_after(kLingerTimeout);
    if constexpr (kTls) {
      stream_.async_shutdown([self = this->shared_from_this()](beast::error_code) { self->close(); });
    } else {
      beast::error_code ec;
      stream_.socket().shutdown(tcp::socket::shutdown_send, ec);
      if (ec) return close();
      linger_buf_.resize(64 * 1024);
      do_linger();
    }
  }

  void do_linger() {
    stream_.async_read_some(asio::buffer(linger_buf_), [self = this->shared_from_this()](beast::error_code ec, size_t n) {
      self->lingered_ += n;
      if (ec || self->lingered_ > kLingerLimit) return self->close();
      self->do_linger();
    });
  }

  // Closes the TCP connection at once. Over TLS without close_notify: this ends idle
  // connections and streams, where a read is pending, and the client's next read fails either way.
  void close() {
    beast::error_code ec;
    tcp_layer().socket().shutdown(tcp::socket::shutdown_both, ec);
    tcp_layer().close();
  }

  Impl& server_;
  Stream stream_;
  beast::flat_buffer buffer_;
  std::optional<http::request_parser<http::string_body>> parser_;
  size_t body_limit_ = 0;  // of the request being read
  std::shared_ptr<void> grant_;  // the room its body holds in the server's body budget, if it needed some
  std::vector<char> linger_buf_;
  size_t lingered_ = 0;
  unsigned version_ = 11;
  bool keep_alive_ = true;
  bool head_ = false;
  bool busy_ = false;
  bool counted_ = false;  // counts against max_connections (start(), not reject())
  std::shared_ptr<DeferredResponse> deferred_;  // a reply that comes later, while it waits
  // A streamed response:
  std::shared_ptr<ResponseStream> source_;
  asio::steady_timer tick_timer_;
  std::chrono::steady_clock::time_point write_started_, last_write_;
  std::optional<StreamChunk> pending_;
  std::array<char, 512> watch_buf_{};
  bool waiting_ = false;  // a next() is outstanding
  bool writing_ = false;  // a write is outstanding
  bool ended_ = false;
};

Status HttpServer::Impl::load_tls() {
  const bool cert = !options_.tls_cert_file.empty(), key = !options_.tls_key_file.empty();
  if (cert != key) return Status::invalid_argument("TLS needs both a certificate and a key file, or neither");
  if (!cert) return Status::ok();
  auto ctx = make_server_tls_context(options_.tls_cert_file, options_.tls_key_file);
  if (!ctx.ok()) return ctx.status();
  tls_ = std::move(*ctx);
  return Status::ok();
}

Status HttpServer::Impl::listen() {
  if (Status s = load_tls(); !s.is_ok()) return s;
  beast::error_code ec;
  auto address = asio::ip::make_address(options_.host, ec);
  if (ec) return Status::invalid_argument("listen address '" + options_.host + "' is not an IP address");
  tcp::endpoint endpoint(address, options_.port);
  acceptor_.open(endpoint.protocol(), ec);
  if (!ec) acceptor_.set_option(asio::socket_base::reuse_address(true), ec);
  if (!ec) acceptor_.bind(endpoint, ec);
  if (!ec) acceptor_.listen(asio::socket_base::max_listen_connections, ec);
  if (ec)
    return Status::unavailable("cannot listen on " + options_.host + ":" + std::to_string(options_.port) + ": " +
                               ec.message());
  port_ = acceptor_.local_endpoint().port();
  // Catch the signals from here on, not from run(): a SIGTERM sent as soon as the caller says it
  // listens would otherwise kill the process with the default action (exit 143) instead of
  // stopping it cleanly. Asio keeps a signal that arrives before run() until the wait runs.
  if (options_.handle_signals) {
    signals_.add(SIGINT);
    signals_.add(SIGTERM);
    signals_.async_wait([this](beast::error_code ec, int sig) {
      if (ec) return;
      spdlog::info("signal {} received: finishing requests in flight, then stopping", sig);
      shutdown();
    });
  }
  return Status::ok();
}

void HttpServer::Impl::do_accept() {
  acceptor_.async_accept(asio::make_strand(ioc_), [this](beast::error_code ec, tcp::socket socket) {
    if (ec) {
      if (ec == asio::error::operation_aborted || draining_) return;
      accept_backoff_ = accept_backoff_.count() == 0 ? kAcceptBackoffFirst
                                                     : std::min(accept_backoff_ * 2, kAcceptBackoffMax);
      spdlog::warn("accept failed: {}; accepting again in {} ms", ec.message(), accept_backoff_.count());
      if (options_.on_accept_error) options_.on_accept_error();
      accept_timer_.expires_after(accept_backoff_);
      accept_timer_.async_wait([this](beast::error_code tec) {
        if (!tec && !draining_) do_accept();
      });
      return;
    }
    accept_backoff_ = std::chrono::milliseconds(0);
    socket.set_option(tcp::no_delay(true), ec);
    if (tls_)
      admit(std::make_shared<StreamSession<TlsStream>>(*this, std::move(socket), *tls_));
    else
      admit(std::make_shared<StreamSession<PlainStream>>(*this, std::move(socket)));
    if (!draining_) do_accept();
  });
}

void HttpServer::Impl::admit(const std::shared_ptr<Session>& session) {
  session_started(session.get(), session);
  const size_t limit = options_.max_connections;
  if (limit > 0 && connections_.load() >= limit) {
    session->reject();
  } else {
    session->start();
  }
}

void HttpServer::Impl::session_started(Session* s, const std::shared_ptr<Session>& p) {
  std::lock_guard lock(sessions_mu_);
  sessions_[s] = p;
}

void HttpServer::Impl::session_ended(Session* s) {
  std::lock_guard lock(sessions_mu_);
  sessions_.erase(s);
  if (draining_ && !stopped_ && sessions_.empty()) asio::post(control_, [this] { drain_timer_.cancel(); });
}

HttpResponse HttpServer::Impl::call_handler(HttpRequest&& req) {
  const std::string line = req.method + " " + req.path;
  try {
    return handler_(std::move(req));
  } catch (const std::exception& e) {
    return incident(500, "handler for " + line + " threw: " + e.what());
  } catch (...) {
    return incident(500, "handler for " + line + " threw an exception that is not a std::exception");
  }
}

void HttpServer::Impl::run_io() {
  for (;;) {
    try {
      ioc_.run();
      return;
    } catch (const std::exception& e) {
      spdlog::error("http server: a completion handler threw: {}", e.what());
    } catch (...) {
      spdlog::error("http server: a completion handler threw an exception that is not a std::exception");
    }
  }
}

void HttpServer::Impl::run() {
  do_accept();
  std::vector<std::thread> threads;
  for (int i = 1; i < options_.io_threads; ++i) threads.emplace_back([this] { run_io(); });
  run_io();
  for (auto& t : threads) t.join();
  // ioc_ ended: every session ended, or the drain timeout stopped it. Handlers still running
  // (blocked) are waited for only until the drain deadline, then left to join in ~Impl.
  std::chrono::steady_clock::time_point deadline;
  {
    std::lock_guard lock(deadline_mu_);
    deadline = drain_deadline_;
  }
  if (!pool_.stop(std::max(deadline, std::chrono::steady_clock::now())))
    spdlog::warn("shutdown: {} handler(s) still running after the drain timeout; not waiting for them",
                 pool_.running());
}

size_t HttpServer::Impl::handlers_running() { return pool_.running(); }

void HttpServer::Impl::shutdown() {
  if (draining_.exchange(true)) return;
  {
    std::lock_guard lock(deadline_mu_);
    drain_deadline_ = std::chrono::steady_clock::now() + options_.drain_timeout;
  }
  // In order, each step posting the next: arm the drain timer (on control_), stop accepting (on
  // the acceptor's strand), drain every session (on control_). The timer comes first because it
  // is what keeps run() going until every session has ended or the timeout: a session whose
  // deferred reply waits has nothing pending on ioc_, so were the acceptor closed before the
  // timer was armed (by a task of its own, as it once was), its aborted accept could be ioc_'s
  // last work, and run() would return without draining, leaving that reply waiting and its
  // connection open.
  asio::post(control_, [this] {
    // Sessions that end from here on cancel the timer (on this strand) once none is left.
    drain_timer_.expires_after(options_.drain_timeout);
    drain_timer_.async_wait([this](beast::error_code ec) {
      if (ec) return;  // cancelled: every session ended in time
      spdlog::warn("shutdown: requests still in flight after the drain timeout; stopping anyway");
      ioc_.stop();
    });
    asio::post(signals_.get_executor(), [this] {
      beast::error_code ec;
      signals_.cancel(ec);
    });
    asio::post(acceptor_.get_executor(), [this] {
      beast::error_code ec;
      acceptor_.close(ec);
      accept_timer_.cancel();
      asio::post(control_, [this] { drain_sessions(); });
    });
  });
}

// On control_, with the drain timer armed and no connection accepted any more.
void HttpServer::Impl::drain_sessions() {
  std::vector<std::shared_ptr<Session>> live;
  {
    std::lock_guard lock(sessions_mu_);
    for (auto& [_, weak] : sessions_)
      if (auto s = weak.lock()) live.push_back(std::move(s));
  }
  if (live.empty()) drain_timer_.cancel();
  for (auto& s : live) s->drain();
}

HttpServer::HttpServer(HttpServerOptions options, RequestHandler handler)
    : impl_(std::make_unique<Impl>(std::move(options), std::move(handler))) {}
HttpServer::~HttpServer() = default;
Status HttpServer::listen() { return impl_->listen(); }
uint16_t HttpServer::port() const { return impl_->port(); }
void HttpServer::run() { impl_->run(); }
void HttpServer::shutdown() { impl_->shutdown(); }
size_t HttpServer::handlers_running() const { return impl_->handlers_running(); }

size_t HttpServer::bodies_waiting() const { return impl_->bodies_waiting(); }

}  // namespace mufl::service
