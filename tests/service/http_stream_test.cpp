// HttpServer's streamed responses (service/response_stream.h) over real loopback sockets, in
// process: header and chunks, heartbeat, a client that leaves, shutdown, a client that stops
// reading, and a stream over TLS.
#include <catch2/catch.hpp>

#include <chrono>
#include <condition_variable>
#include <deque>
#include <mutex>
#include <thread>

#include "service/http_server.h"
#include "service/response_stream.h"
#include "tests/support/sse_client.h"
#include "tests/support/temp_dir.h"
#include "tests/support/tls_cert.h"

using namespace mufl;
using namespace mufl::service;
using mufl::testing::SseClient;
using namespace std::chrono_literals;

namespace {

// A stream fed by the test: push() queues chunks; next() hands one over, or waits for one.
class ScriptedStream : public ResponseStream {
 public:
  explicit ScriptedStream(std::chrono::milliseconds heartbeat = 0ms, std::string endless = "")
      : heartbeat_(heartbeat), endless_(std::move(endless)) {}

  void push(std::string data, bool last = false) {
    StreamChunk c{std::move(data), last};
    std::function<void(StreamChunk)> ready;
    {
      std::lock_guard lock(mu_);
      if (!ready_) {  // nobody waits: queue it
        queue_.push_back(std::move(c));
        return;
      }
      ready = std::exchange(ready_, nullptr);
    }
    ready(std::move(c));
  }
  void next(std::function<void(StreamChunk)> ready) override {
    std::unique_lock lock(mu_);
    if (cancelled_) return ready({"data: bye\n\n", true});
    if (!endless_.empty()) return ready({endless_, false});
    if (queue_.empty()) {
      ready_ = std::move(ready);
      return;
    }
    StreamChunk c = std::move(queue_.front());
    queue_.pop_front();
    lock.unlock();
    ready(std::move(c));
  }
  void cancel() override {
    std::function<void(StreamChunk)> ready;
    {
      std::lock_guard lock(mu_);
      cancelled_ = true;
      ready = std::exchange(ready_, nullptr);
      cv_.notify_all();
    }
    if (ready) ready({"data: bye\n\n", true});
  }
  std::string heartbeat() const override { return ": hb\n\n"; }
  std::chrono::milliseconds heartbeat_interval() const override { return heartbeat_; }

  bool wait_cancelled(std::chrono::seconds timeout) {
    std::unique_lock lock(mu_);
    return cv_.wait_for(lock, timeout, [&] { return cancelled_; });
  }

 private:
  const std::chrono::milliseconds heartbeat_;
  const std::string endless_;  // set: every next() returns this at once
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<StreamChunk> queue_;
  std::function<void(StreamChunk)> ready_;
  bool cancelled_ = false;
};

struct Server {
  std::shared_ptr<ScriptedStream> stream;
  HttpServer http;
  std::thread runner;

  // Serves HTTPS with `tls` when it is set.
  explicit Server(std::shared_ptr<ScriptedStream> s, std::chrono::seconds write_timeout = 30s,
                  const mufl::testing::TestCertificate* tls = nullptr)
      : stream(std::move(s)), http(options(write_timeout, tls), [this](HttpRequest&&) {
          HttpResponse r;
          r.content_type = "text/event-stream";
          r.headers = {{"Cache-Control", "no-store"}};
          r.stream = stream;
          return r;
        }) {
    REQUIRE(http.listen().is_ok());
    runner = std::thread([this] { http.run(); });
  }
  ~Server() {
    http.shutdown();
    runner.join();
  }
  static HttpServerOptions options(std::chrono::seconds write_timeout,
                                   const mufl::testing::TestCertificate* tls = nullptr) {
    HttpServerOptions o;
    if (tls) {
      o.tls_cert_file = tls->cert_file;
      o.tls_key_file = tls->key_file;
    }
    o.port = 0;
    o.handle_signals = false;
    o.io_threads = 1;
    o.handler_threads = 2;
    o.drain_timeout = 5s;
    o.stream_write_timeout = write_timeout;
    return o;
  }
};

}  // namespace

TEST_CASE("http stream: the header comes first, then each chunk as it is produced, and the last one closes") {
  Server server(std::make_shared<ScriptedStream>());
  SseClient client(server.http.port(), "/stream", "");
  CHECK(client.status() == 200);
  CHECK(client.header("content-type") == "text/event-stream");
  CHECK(client.header("cache-control") == "no-store");
  CHECK(client.header("connection") == "close");
  CHECK(client.header("content-length").empty());
  CHECK(client.header("transfer-encoding").empty());

  server.stream->push("id: 1\ndata: one\n\n");
  auto one = client.next(10s);
  REQUIRE(one.has_value());
  CHECK(one->id == "1");
  CHECK(one->data == "one");
  server.stream->push("data: two\n\n", /*last=*/true);
  auto two = client.next(10s);
  REQUIRE(two.has_value());
  CHECK(two->data == "two");
  CHECK(client.wait_closed(10s));
}

TEST_CASE("http stream: a silent stream gets its heartbeat, and events still come between them") {
  Server server(std::make_shared<ScriptedStream>(50ms));
  SseClient client(server.http.port(), "/stream", "");
  const auto deadline = std::chrono::steady_clock::now() + 10s;
  while (client.comments().size() < 2 && std::chrono::steady_clock::now() < deadline) client.next(100ms);
  REQUIRE(client.comments().size() >= 2);
  CHECK(client.comments()[0] == "hb");
  server.stream->push("data: after\n\n");
  auto e = client.next(10s);
  REQUIRE(e.has_value());
  CHECK(e->data == "after");
}

TEST_CASE("http stream: a client that goes away cancels its stream at once") {
  Server server(std::make_shared<ScriptedStream>());
  {
    SseClient client(server.http.port(), "/stream", "");
    REQUIRE(client.status() == 200);
  }  // closed without a word
  CHECK(server.stream->wait_cancelled(10s));
}

TEST_CASE("http stream: shutdown ends open streams with their last chunk and run() returns") {
  auto stream = std::make_shared<ScriptedStream>();
  HttpServer http(Server::options(30s), [&](HttpRequest&&) {
    HttpResponse r;
    r.content_type = "text/event-stream";
    r.stream = stream;
    return r;
  });
  REQUIRE(http.listen().is_ok());
  std::thread runner([&] { http.run(); });
  SseClient client(http.port(), "/stream", "");
  REQUIRE(client.status() == 200);
  const auto start = std::chrono::steady_clock::now();
  http.shutdown();
  auto bye = client.next(10s);
  REQUIRE(bye.has_value());
  CHECK(bye->data == "bye");
  CHECK(client.wait_closed(10s));
  runner.join();
  CHECK(std::chrono::steady_clock::now() - start < 5s);  // well within the drain timeout
}

TEST_CASE("http stream: a client that stops reading is dropped after the write timeout") {
  // Every next() returns 1 MiB at once; the client reads nothing, so the socket buffers fill.
  Server server(std::make_shared<ScriptedStream>(0ms, std::string(1 << 20, 'x')), /*write_timeout=*/1s);
  SseClient client(server.http.port(), "/stream", "");
  REQUIRE(client.status() == 200);
  CHECK(server.stream->wait_cancelled(20s));
}

TEST_CASE("http stream: over TLS the chunks and the heartbeat arrive, and a client that leaves cancels the stream") {
  mufl::testing::TempDir dir;
  const auto cert = mufl::testing::make_test_certificate(dir);
  Server server(std::make_shared<ScriptedStream>(50ms), 30s, &cert);
  mufl::client::HttpClient client("127.0.0.1", server.http.port(), mufl::testing::https_options(cert.cert_file));
  std::string seen;
  auto head = client.stream(
      "/stream", {},
      [&](const mufl::client::Response&) {
        server.stream->push("id: 1\ndata: one\n\n");
        return true;
      },
      [&](std::string_view bytes) {  // until the chunk and a heartbeat came; then the client closes
        seen.append(bytes);
        return seen.find("data: one\n\n") == std::string::npos || seen.find(": hb\n\n") == std::string::npos;
      },
      10s);
  REQUIRE(head.ok());
  CHECK(head->status == 200);
  CHECK(head->header("content-type") == "text/event-stream");
  CHECK(seen.find("id: 1\ndata: one\n\n") != std::string::npos);
  CHECK(seen.find(": hb\n\n") != std::string::npos);
  CHECK(server.stream->wait_cancelled(10s));  // the server's pending TLS read saw the close
}
