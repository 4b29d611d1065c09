// HttpServer over real loopback sockets, in process: graceful shutdown, the errors at the edge, and HTTPS.
#include "service/http_server.h"

#include <catch2/catch.hpp>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <condition_variable>
#include <fstream>
#include <future>
#include <memory>
#include <mutex>
#include <stdexcept>
#include <thread>

#include "service/deferred_response.h"
#include "tests/support/http_client.h"
#include "tests/support/temp_dir.h"
#include "tests/support/tls_cert.h"

using namespace mufl;
using namespace mufl::service;
using mufl::testing::HttpClient;
using mufl::testing::raw_exchange;
using mufl::testing::TempDir;
using mufl::testing::make_test_certificate;
using mufl::testing::https_options;

namespace {

// A one-shot flag threads can wait on (std::latch without its count).
class Gate {
 public:
  void open() {
    std::lock_guard lock(mu_);
    open_ = true;
    cv_.notify_all();
  }
  void wait() {
    std::unique_lock lock(mu_);
    cv_.wait(lock, [&] { return open_; });
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  bool open_ = false;
};

// A handler that answers "done <path>", except that /slow first opens `entered` and waits
// for `release`.
RequestHandler slow_path_handler(Gate& entered, Gate& release) {
  return [&entered, &release](HttpRequest&& req) {
    if (req.path == "/slow") {
      entered.open();
      release.wait();
    }
    return HttpResponse{200, "text/plain", {}, "done " + req.path};
  };
}

HttpServerOptions test_options() {
  HttpServerOptions o;
  o.port = 0;
  o.handle_signals = false;
  o.io_threads = 1;
  o.handler_threads = 2;
  o.body_limit = 1024;
  return o;
}

// test_options() serving HTTPS with `cert`.
HttpServerOptions tls_options(const mufl::testing::TestCertificate& cert) {
  HttpServerOptions o = test_options();
  o.tls_cert_file = cert.cert_file;
  o.tls_key_file = cert.key_file;
  return o;
}

// Connects to 127.0.0.1:port, sends nothing, and waits up to `limit` for the server to close.
// True when it closed in time.
bool server_closes_silent_connection(uint16_t port, std::chrono::milliseconds limit) {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(port);
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (fd < 0 || ::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    if (fd >= 0) ::close(fd);
    return false;
  }
  pollfd p{fd, POLLIN, 0};
  char byte;
  const bool closed = ::poll(&p, 1, static_cast<int>(limit.count())) == 1 && ::read(fd, &byte, 1) <= 0;
  ::close(fd);
  return closed;
}

// Deferred replies that the test completes by hand: each start() is parked until complete_all()
// or its cancel(), which replies 204.
class ParkedReplies {
 public:
  class Reply final : public DeferredResponse {
   public:
    Reply(ParkedReplies& owner, std::string body) : owner_(owner), body_(std::move(body)) {}
    void start(std::function<void(HttpResponse)> done) override {
      std::unique_lock lock(owner_.mu_);
      if (cancelled_) {
        lock.unlock();
        return done(HttpResponse{204, "", {}, ""});
      }
      done_ = std::move(done);
      ++owner_.parked_;
      owner_.cv_.notify_all();
    }
    void cancel() override {
      std::function<void(HttpResponse)> done;
      {
        std::lock_guard lock(owner_.mu_);
        cancelled_ = true;
        done.swap(done_);
      }
      if (done) done(HttpResponse{204, "", {}, ""});
    }
    // Called by complete_all with the owner's lock held; `done` only posts.
    void complete() {
      if (done_) std::exchange(done_, nullptr)(HttpResponse{200, "text/plain", {}, body_});
    }

   private:
    ParkedReplies& owner_;
    std::string body_;
    std::function<void(HttpResponse)> done_;
    bool cancelled_ = false;
  };

  std::shared_ptr<Reply> make(std::string body) {
    auto r = std::make_shared<Reply>(*this, std::move(body));
    std::lock_guard lock(mu_);
    made_.push_back(r);
    return r;
  }
  // Waits (at most 30 s) until `n` replies are parked; false when they are not.
  bool wait_parked(int n) {
    std::unique_lock lock(mu_);
    return cv_.wait_for(lock, std::chrono::seconds(30), [&] { return parked_ >= n; });
  }
  void complete_all() {
    std::lock_guard lock(mu_);
    for (auto& r : made_) r->complete();
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  int parked_ = 0;
  std::vector<std::shared_ptr<Reply>> made_;
};

// /wait/<x> gets a deferred reply "late <x>" from `parked`; anything else "done <path>" at once.
RequestHandler parking_handler(ParkedReplies& parked) {
  return [&parked](HttpRequest&& req) {
    if (req.path.rfind("/wait/", 0) == 0) {
      HttpResponse r;
      r.deferred = parked.make("late " + req.path.substr(6));
      return r;
    }
    return HttpResponse{200, "text/plain", {}, "done " + req.path};
  };
}

}  // namespace

TEST_CASE("http server: deferred replies wait without holding a handler thread, then arrive on a kept-alive connection") {
  ParkedReplies parked;
  HttpServer server(test_options(), parking_handler(parked));  // 2 handler threads
  REQUIRE(server.listen().is_ok());
  const uint16_t port = server.port();
  std::thread runner([&] { server.run(); });

  constexpr int kWaiting = 24;  // far more than the pool's threads
  std::vector<std::future<std::pair<int, std::string>>> replies;
  for (int i = 0; i < kWaiting; ++i)
    replies.push_back(std::async(std::launch::async, [port, i] {
      HttpClient c("127.0.0.1", port);
      auto first = c.get("/wait/" + std::to_string(i));
      auto again = c.get("/after");  // the same connection, kept alive after a deferred reply
      return std::make_pair(first.status, first.body + "|" + again.body);
    }));
  REQUIRE(parked.wait_parked(kWaiting));
  CHECK(server.handlers_running() == 0);
  CHECK(HttpClient("127.0.0.1", port).get("/fast").body == "done /fast");
  parked.complete_all();
  for (int i = 0; i < kWaiting; ++i) {
    auto [status, body] = replies[static_cast<size_t>(i)].get();
    CHECK(status == 200);
    CHECK(body == "late " + std::to_string(i) + "|done /after");
  }
  server.shutdown();
  runner.join();
}

TEST_CASE("http server: shutdown ends a deferred reply that still waits") {
  ParkedReplies parked;
  HttpServerOptions o = test_options();
  o.drain_timeout = std::chrono::seconds(20);  // a reply that never comes fails the test, not CTest's timeout
  HttpServer server(o, parking_handler(parked));
  REQUIRE(server.listen().is_ok());
  std::thread runner([&] { server.run(); });
  auto waiting = std::async(std::launch::async, [port = server.port()] {
    return mufl::client::HttpClient("127.0.0.1", port, mufl::client::ClientOptions{std::chrono::seconds(30)})
        .send("GET", "/wait/x");
  });
  const bool parked_in_time = parked.wait_parked(1);
  server.shutdown();
  auto res = waiting.get();
  runner.join();
  REQUIRE(parked_in_time);
  INFO("the client: " << (res.ok() ? std::string("answered") : res.status().message()));
  REQUIRE(res.ok());
  CHECK(res->status == 204);
  CHECK(res->header("connection") == "close");
}

TEST_CASE("http server: shutdown lets the request in flight finish, then run() returns") {
  Gate entered, release;
  HttpServer server(test_options(), slow_path_handler(entered, release));
  REQUIRE(server.listen().is_ok());
  const uint16_t port = server.port();
  REQUIRE(port != 0);
  std::thread runner([&] { server.run(); });

  HttpClient idle("127.0.0.1", port);  // a keep-alive connection that sits idle at shutdown
  REQUIRE(idle.get("/fast").status == 200);

  auto slow = std::async(std::launch::async, [&] { return HttpClient("127.0.0.1", port).get("/slow"); });
  entered.wait();
  server.shutdown();
  release.open();
  auto res = slow.get();
  CHECK(res.status == 200);
  CHECK(res.body == "done /slow");
  CHECK(res.header("connection") == "close");
  runner.join();  // returns: the idle connection did not keep it alive
  CHECK_THROWS(HttpClient("127.0.0.1", port).get("/fast"));
}

TEST_CASE("http server: oversized bodies get 413, garbage gets 400, both close the connection") {
  HttpServer server(test_options(), [](HttpRequest&& req) { return HttpResponse{200, "text/plain", {}, req.body}; });
  REQUIRE(server.listen().is_ok());
  std::thread runner([&] { server.run(); });

  HttpClient client("127.0.0.1", server.port());
  auto ok = client.post("/echo", std::string(1024, 'a'));
  CHECK(ok.status == 200);
  CHECK(ok.body.size() == 1024);
  auto big = client.post("/echo", std::string(1025, 'a'));
  CHECK(big.status == 413);
  CHECK(big.header("content-type") == "application/problem+json");
  CHECK(big.header("connection") == "close");

  std::string garbage = raw_exchange("127.0.0.1", server.port(), "NOT HTTP AT ALL\r\n\r\n");
  CHECK(garbage.rfind("HTTP/1.1 400", 0) == 0);
  std::string huge_header = raw_exchange("127.0.0.1", server.port(),
                                         "GET / HTTP/1.1\r\nHost: x\r\nX-Big: " + std::string(64 * 1024, 'h') + "\r\n\r\n");
  CHECK(huge_header.rfind("HTTP/1.1 431", 0) == 0);
  // Declared length over the limit is refused before the body arrives.
  std::string declared = raw_exchange("127.0.0.1", server.port(),
                                      "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 999999999\r\n\r\n");
  CHECK(declared.rfind("HTTP/1.1 413", 0) == 0);

  server.shutdown();
  runner.join();
}

TEST_CASE("http server: a per-request body limit raises the limit for the targets it names only") {
  HttpServerOptions o = test_options();  // 1024 bytes by default
  o.body_limit_for = [](std::string_view method, std::string_view target, std::string_view) -> std::optional<size_t> {
    if (method == "PUT" && target == "/big") return 4096;
    return std::nullopt;
  };
  HttpServer server(o, [](HttpRequest&& req) { return HttpResponse{200, "text/plain", {}, req.body}; });
  REQUIRE(server.listen().is_ok());
  std::thread runner([&] { server.run(); });

  HttpClient client("127.0.0.1", server.port());
  auto big = client.request("PUT", "/big", std::string(4096, 'a'));
  CHECK(big.status == 200);
  CHECK(big.body.size() == 4096);
  auto again = client.request("PUT", "/big", std::string(10, 'b'));  // the same connection goes on
  CHECK(again.body == std::string(10, 'b'));
  CHECK(client.request("PUT", "/big", std::string(4097, 'a')).status == 413);
  HttpClient other("127.0.0.1", server.port());
  auto elsewhere = other.request("PUT", "/small", std::string(2048, 'a'));
  CHECK(elsewhere.status == 413);
  CHECK_THAT(elsewhere.body, Catch::Contains("limit of 1024 bytes"));
  CHECK(HttpClient("127.0.0.1", server.port()).post("/big", std::string(2048, 'a')).status == 413);  // PUT only

  server.shutdown();
  runner.join();
}

TEST_CASE("http server: large bodies beyond body_memory wait unread and are handled in turn, small ones pass") {
  HttpServerOptions o = test_options();
  o.handler_threads = 4;
  o.body_limit = 1 << 20;
  o.body_memory = 256 << 10;  // room for one of the 200 KiB bodies below
  std::mutex mu;
  std::condition_variable cv;
  int inside = 0, entered = 0, released = 0, most_inside = 0;
  HttpServer server(o, [&](HttpRequest&& req) {
    if (req.path == "/small") return HttpResponse{200, "text/plain", {}, "small"};
    std::unique_lock lock(mu);
    most_inside = std::max(most_inside, ++inside);
    const int me = ++entered;
    cv.notify_all();
    cv.wait(lock, [&] { return released >= me; });
    --inside;
    return HttpResponse{200, "text/plain", {}, std::to_string(req.body.size())};
  });
  REQUIRE(server.listen().is_ok());
  std::thread runner([&] { server.run(); });

  constexpr size_t kBody = 200 << 10;
  std::vector<testing::ClientResponse> results(3);
  std::vector<std::thread> uploads;
  for (size_t i = 0; i < results.size(); ++i)
    uploads.emplace_back([&, i] {
      results[i] = HttpClient("127.0.0.1", server.port()).request("PUT", "/up", std::string(kBody, 'a'));
    });
  for (int step = 1; step <= 3; ++step) {
    std::unique_lock lock(mu);
    // Polled: the queue's length changes without a notification.
    auto there = [&] { return entered == step && server.bodies_waiting() == static_cast<size_t>(3 - step); };
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    bool ready = false;
    while (!(ready = there()) && std::chrono::steady_clock::now() < deadline)
      cv.wait_for(lock, std::chrono::milliseconds(5));
    INFO("step " << step << ": entered " << entered << ", waiting " << server.bodies_waiting());
    REQUIRE(ready);
    CHECK(inside == 1);
    if (step == 1) {  // a small body is not held behind the large ones
      lock.unlock();
      CHECK(HttpClient("127.0.0.1", server.port()).request("PUT", "/small", "x").body == "small");
      lock.lock();
    }
    released = step;
    cv.notify_all();
  }
  for (auto& t : uploads) t.join();
  for (const auto& r : results) {
    CHECK(r.status == 200);
    CHECK(r.body == std::to_string(kBody));
  }
  CHECK(most_inside == 1);
  CHECK(server.bodies_waiting() == 0);
  server.shutdown();
  runner.join();
}

TEST_CASE("http server: listen refuses a bad host and a port in use") {
  HttpServerOptions o = test_options();
  o.host = "not-an-address";
  HttpServer bad(o, [](HttpRequest&&) { return HttpResponse{}; });
  CHECK(bad.listen().code() == Status::Code::kInvalidArgument);

  HttpServer first(test_options(), [](HttpRequest&&) { return HttpResponse{}; });
  REQUIRE(first.listen().is_ok());
  HttpServerOptions same = test_options();
  same.port = first.port();
  HttpServer second(same, [](HttpRequest&&) { return HttpResponse{}; });
  CHECK(second.listen().code() == Status::Code::kUnavailable);
}

TEST_CASE("http server: a handler that throws gets 500 problem+json and the server keeps serving") {
  struct NotAnException {};
  HttpServer server(test_options(), [](HttpRequest&& req) -> HttpResponse {
    if (req.path == "/std") throw std::runtime_error("boom");
    if (req.path == "/other") throw NotAnException{};
    return HttpResponse{200, "text/plain", {}, "ok"};
  });
  REQUIRE(server.listen().is_ok());
  std::thread runner([&] { server.run(); });

  HttpClient client("127.0.0.1", server.port());
  for (const char* path : {"/std", "/other", "/std", "/other"}) {  // more throws than pool threads
    auto res = client.get(path);
    CHECK(res.status == 500);
    CHECK(res.header("content-type") == "application/problem+json");
    CHECK(res.body.find("boom") == std::string::npos);  // the message goes to the log only
  }
  auto ok = client.get("/fine");
  CHECK(ok.status == 200);
  CHECK(ok.body == "ok");

  server.shutdown();
  runner.join();
}

TEST_CASE("http server: accept errors (EMFILE) back off instead of spinning, and the server recovers") {
  using clock = std::chrono::steady_clock;
  std::mutex mu;
  std::condition_variable cv;
  std::vector<clock::time_point> failures;
  HttpServerOptions o = test_options();
  o.on_accept_error = [&] {
    std::lock_guard lock(mu);
    failures.push_back(clock::now());
    cv.notify_all();
  };
  HttpServer server(o, [](HttpRequest&&) { return HttpResponse{200, "text/plain", {}, "ok"}; });
  REQUIRE(server.listen().is_ok());
  std::thread runner([&] { server.run(); });

  // The client's socket first, then every other descriptor up to a lowered limit, so that the
  // server's accept of this connection fails with EMFILE.
  int client = ::socket(AF_INET, SOCK_STREAM, 0);
  REQUIRE(client >= 0);
  rlimit saved{};
  REQUIRE(getrlimit(RLIMIT_NOFILE, &saved) == 0);
  rlimit low = saved;
  low.rlim_cur = static_cast<rlim_t>(client) + 32;
  REQUIRE(setrlimit(RLIMIT_NOFILE, &low) == 0);
  std::vector<int> filler;
  for (int fd; (fd = ::dup(client)) >= 0;) filler.push_back(fd);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(server.port());
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  REQUIRE(::connect(client, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0);  // in the backlog

  // Five failures: with the back-off they are at least 10+20+40+80 ms apart from first to last
  // (a server that re-armed at once would fail thousands of times in that span).
  bool five;
  {
    std::unique_lock lock(mu);
    five = cv.wait_for(lock, std::chrono::seconds(30), [&] { return failures.size() >= 5; });
  }
  for (int fd : filler) ::close(fd);
  setrlimit(RLIMIT_NOFILE, &saved);
  REQUIRE(five);
  {
    std::lock_guard lock(mu);
    CHECK(failures[4] - failures[0] >= std::chrono::milliseconds(150));
  }

  // Descriptors free again: the waiting connection is accepted and served.
  const std::string req = "GET /x HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
  REQUIRE(::write(client, req.data(), req.size()) == static_cast<ssize_t>(req.size()));
  std::string got;
  char buf[1024];
  for (ssize_t n; (n = ::read(client, buf, sizeof buf)) > 0;) got.append(buf, static_cast<size_t>(n));
  ::close(client);
  CHECK(got.rfind("HTTP/1.1 200", 0) == 0);

  server.shutdown();
  runner.join();
}

TEST_CASE("http server: a quick request is answered on the I/O thread while every pool thread is busy") {
  Gate entered, release;
  HttpServerOptions o = test_options();
  o.handler_threads = 1;
  o.is_quick = [](const HttpRequest& r) { return r.path == "/quick"; };
  HttpServer server(o, slow_path_handler(entered, release));
  REQUIRE(server.listen().is_ok());
  const uint16_t port = server.port();
  std::thread runner([&] { server.run(); });

  // The pool's only thread blocks in /slow until `release`.
  auto slow = std::async(std::launch::async, [&] { return HttpClient("127.0.0.1", port).get("/slow"); });
  entered.wait();
  auto quick = HttpClient("127.0.0.1", port).get("/quick");  // would wait for `release` on the pool
  CHECK(quick.status == 200);
  CHECK(quick.body == "done /quick");
  CHECK(server.handlers_running() == 1);  // /slow still holds the pool
  release.open();
  CHECK(slow.get().body == "done /slow");
  server.shutdown();
  runner.join();
}

TEST_CASE("http server: run() returns within the drain timeout although a handler blocks") {
  Gate entered, release;
  HttpServerOptions o = test_options();
  o.drain_timeout = std::chrono::seconds(1);
  auto server = std::make_unique<HttpServer>(o, [&](HttpRequest&&) {
    entered.open();
    release.wait();  // opened only after the assertion below
    return HttpResponse{200, "text/plain", {}, "late"};
  });
  REQUIRE(server->listen().is_ok());
  auto ran = std::async(std::launch::async, [&] { server->run(); });
  auto client = std::async(std::launch::async, [port = server->port()] {
    try {
      return HttpClient("127.0.0.1", port).get("/blocks").status;
    } catch (const std::exception&) {
      return 0;  // no answer: the connection closed unanswered
    }
  });
  entered.wait();
  const auto start = std::chrono::steady_clock::now();
  server->shutdown();
  const bool returned = ran.wait_for(std::chrono::seconds(1 + 10)) == std::future_status::ready;
  const auto took = std::chrono::steady_clock::now() - start;
  CHECK(returned);
  CHECK(server->handlers_running() == 1);
  release.open();
  if (!returned) ran.wait();
  INFO("run() returned after " << std::chrono::duration_cast<std::chrono::milliseconds>(took).count() << " ms");
  CHECK(took >= std::chrono::milliseconds(900));  // it did wait for the drain timeout
  server.reset();  // waits for the released handler
  CHECK(client.get() != 200);
}

TEST_CASE("http server: beyond max_connections a connection gets 503 with Retry-After and the first ones still work") {
  HttpServerOptions o = test_options();
  o.max_connections = 3;
  HttpServer server(o, [](HttpRequest&&) { return HttpResponse{200, "text/plain", {}, "ok"}; });
  REQUIRE(server.listen().is_ok());
  std::thread runner([&] { server.run(); });

  std::vector<std::unique_ptr<HttpClient>> open;
  for (int i = 0; i < 3; ++i) {
    open.push_back(std::make_unique<HttpClient>("127.0.0.1", server.port()));
    REQUIRE(open.back()->get("/a").status == 200);  // answered: accepted and counted
  }
  std::string refused = raw_exchange("127.0.0.1", server.port(), "GET /b HTTP/1.1\r\nHost: x\r\n\r\n");
  CHECK(refused.rfind("HTTP/1.1 503", 0) == 0);
  CHECK(refused.find("Retry-After: 1\r\n") != std::string::npos);
  CHECK(refused.find("application/problem+json") != std::string::npos);
  for (auto& c : open) CHECK(c->get("/again").status == 200);

  server.shutdown();
  runner.join();
}

TEST_CASE("http server: TLS serves HTTPS, refuses plain HTTP on its port, and keeps serving") {
  TempDir dir;
  const auto cert = make_test_certificate(dir);
  HttpServer server(tls_options(cert), [](HttpRequest&& req) { return HttpResponse{200, "text/plain", {}, "tls " + req.path}; });
  REQUIRE(server.listen().is_ok());
  std::thread runner([&] { server.run(); });

  mufl::client::HttpClient https("127.0.0.1", server.port(), https_options(cert.cert_file));
  auto first = https.get("/a");
  CHECK(first.status == 200);
  CHECK(first.body == "tls /a");
  CHECK(https.get("/b").body == "tls /b");  // the same keep-alive TLS connection

  // A plain HTTP request fails the handshake: the connection closes without an HTTP answer.
  std::string plain = raw_exchange("127.0.0.1", server.port(), "GET /a HTTP/1.1\r\nHost: x\r\n\r\n");
  CHECK(plain.find("HTTP/1.1") == std::string::npos);
  // A client that does not trust the certificate refuses it, and says why.
  mufl::client::HttpClient untrusting("127.0.0.1", server.port(), https_options(""));
  auto refused = untrusting.send("GET", "/a");
  REQUIRE_FALSE(refused.ok());
  CHECK(refused.status().code() == Status::Code::kUnauthenticated);
  CHECK_THAT(refused.status().message(),
             Catch::Contains("TLS: certificate verify failed (self-signed certificate) for https://127.0.0.1:" +
                             std::to_string(server.port())));
  // A plain HTTP client gets no answer either.
  CHECK_FALSE(mufl::client::HttpClient("127.0.0.1", server.port()).send("GET", "/a").ok());

  CHECK(mufl::client::HttpClient("127.0.0.1", server.port(), https_options(cert.cert_file)).get("/c").body == "tls /c");
  server.shutdown();
  runner.join();
}

TEST_CASE("http server: over TLS a 413 reaches the client before the connection closes") {
  TempDir dir;
  const auto cert = make_test_certificate(dir);
  HttpServer server(tls_options(cert), [](HttpRequest&& req) { return HttpResponse{200, "text/plain", {}, req.body}; });
  REQUIRE(server.listen().is_ok());
  std::thread runner([&] { server.run(); });

  mufl::client::HttpClient client("127.0.0.1", server.port(), https_options(cert.cert_file));
  auto big = client.post("/echo", std::string(4096, 'a'));  // over the 1 KiB body limit
  CHECK(big.status == 413);
  CHECK(big.header("connection") == "close");
  auto ok = client.post("/echo", "small");  // on a new connection
  CHECK(ok.status == 200);
  CHECK(ok.body == "small");

  server.shutdown();
  runner.join();
}

TEST_CASE("http server: over TLS a connection beyond max_connections gets 503 after the handshake") {
  TempDir dir;
  const auto cert = make_test_certificate(dir);
  HttpServerOptions o = tls_options(cert);
  o.max_connections = 1;
  HttpServer server(o, [](HttpRequest&&) { return HttpResponse{200, "text/plain", {}, "ok"}; });
  REQUIRE(server.listen().is_ok());
  std::thread runner([&] { server.run(); });

  mufl::client::HttpClient first("127.0.0.1", server.port(), https_options(cert.cert_file));
  REQUIRE(first.get("/a").status == 200);  // holds the only connection
  auto busy = mufl::client::HttpClient("127.0.0.1", server.port(), https_options(cert.cert_file)).get("/b");
  CHECK(busy.status == 503);
  CHECK(busy.header("retry-after") == "1");
  CHECK(first.get("/again").status == 200);

  server.shutdown();
  runner.join();
}

TEST_CASE("http server: a TLS handshake that does not come closes the connection after read_timeout") {
  TempDir dir;
  HttpServerOptions o = tls_options(make_test_certificate(dir));
  o.read_timeout = std::chrono::seconds(1);
  HttpServer server(o, [](HttpRequest&&) { return HttpResponse{200, "text/plain", {}, "ok"}; });
  REQUIRE(server.listen().is_ok());
  std::thread runner([&] { server.run(); });

  const auto start = std::chrono::steady_clock::now();
  CHECK(server_closes_silent_connection(server.port(), std::chrono::seconds(20)));
  CHECK(std::chrono::steady_clock::now() - start >= std::chrono::milliseconds(900));

  server.shutdown();
  runner.join();
}

TEST_CASE("http server: listen refuses TLS files that are missing, not PEM, mismatched, or half given") {
  TempDir dir;
  const auto cert = make_test_certificate(dir, "one");
  const auto other = make_test_certificate(dir, "two");
  const std::string garbage = dir.file("garbage.pem");
  std::ofstream(garbage) << "not a certificate\n";
  auto listen_with = [](const std::string& cert_file, const std::string& key_file) {
    HttpServerOptions o = test_options();
    o.tls_cert_file = cert_file;
    o.tls_key_file = key_file;
    return HttpServer(o, [](HttpRequest&&) { return HttpResponse{}; }).listen();
  };
  Status missing = listen_with(dir.file("absent.crt"), cert.key_file);
  CHECK(missing.code() == Status::Code::kInvalidArgument);
  CHECK_THAT(missing.message(), Catch::Contains("--tls-cert " + dir.file("absent.crt") + ": cannot read it"));
  Status not_pem = listen_with(garbage, cert.key_file);
  CHECK(not_pem.code() == Status::Code::kInvalidArgument);
  CHECK_THAT(not_pem.message(), Catch::Contains("not a PEM certificate"));
  Status bad_key = listen_with(cert.cert_file, garbage);
  CHECK_THAT(bad_key.message(), Catch::Contains("--tls-key " + garbage + ": not a PEM private key"));
  Status mismatch = listen_with(cert.cert_file, other.key_file);
  CHECK(mismatch.code() == Status::Code::kInvalidArgument);
  CHECK_THAT(mismatch.message(), Catch::Contains("does not belong to the certificate"));
  CHECK(listen_with(cert.cert_file, "").code() == Status::Code::kInvalidArgument);
  CHECK(listen_with(cert.cert_file, cert.key_file).is_ok());
}
