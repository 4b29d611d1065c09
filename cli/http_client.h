#pragma once
// A blocking HTTP/1.1 client over one keep-alive connection (Boost.Beast inside), shared by
// muflctl and the tests. Plain HTTP, or HTTPS (ClientOptions::tls): TLS 1.2 or later, and the
// server's certificate must chain to a trusted CA and name the host.
//
// Thread safety: one HttpClient per thread; distinct objects are independent.
#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <string_view>

#include "core/result.h"

namespace mufl::client {

struct Response {
  int status = 0;
  std::map<std::string, std::string> headers;  // names in lower case
  std::string body;
  std::string header(const std::string& name) const {
    auto it = headers.find(name);
    return it == headers.end() ? "" : it->second;
  }
};

struct ClientOptions {
  // The most one request may take, from connecting to the last byte of the response.
  // Default 30 s.
  std::chrono::milliseconds timeout{30'000};
  // The largest response body read into memory. Default 4 GiB.
  uint64_t body_limit = uint64_t{4} << 30;
  // HTTPS: every connection is TLS (1.2 at least), and the handshake fails unless the server's
  // certificate chains to a trusted CA and is valid for the host (a DNS name, also sent as SNI,
  // or an IP address). Default false: plain HTTP.
  bool tls = false;
  // The CA certificates (PEM; a self-signed server certificate itself will do) to trust.
  // Default "": the system's trust store. Only with `tls`.
  std::string ca_file = "";
};

class HttpClient {
 public:
  // `host` is an IP address or a name to resolve; nothing is connected until the first request.
  HttpClient(std::string host, uint16_t port, ClientOptions options = {});
  ~HttpClient();
  HttpClient(const HttpClient&) = delete;
  HttpClient& operator=(const HttpClient&) = delete;

  // Sends one request and reads the whole response, on the open keep-alive connection when
  // there is one. When a reused connection turns out to have been closed by the server (an idle
  // keep-alive connection), retries once on a new one; a fresh connection is never retried, so
  // a request goes out at most twice (mufld's Idempotency-Key makes a POST safe even then).
  // Any HTTP status is a success here.
  // kUnavailable, with a message that names the server and says what happened, when the server
  // cannot be reached, the connection breaks, or `timeout` passes. With `tls`: kUnauthenticated
  // when the TLS handshake fails ("TLS: certificate verify failed (self-signed certificate) for
  // https://HOST:PORT", a wrong host name, a server that does not speak TLS); kInvalidArgument
  // when `ca_file` cannot be read or holds no PEM certificate. Neither is retried.
  Result<Response> send(const std::string& method, const std::string& target, const std::string& body = "",
                        const std::map<std::string, std::string>& headers = {});

  // Sends a GET for a long response (Server-Sent Events) on a new connection of its own. After
  // a 2xx head it calls `on_head` once, then `on_data` with each piece of the body as it
  // arrives, until the server ends the response or a callback returns false (then the
  // connection is closed). The callbacks may use send() on this client. A non-2xx body is read
  // whole into the returned Response instead, and no callback runs. `idle_timeout` bounds each
  // wait for the next bytes of a 2xx body. Returns the status and headers. kUnavailable as for
  // send(), also when the stream breaks or stays silent for `idle_timeout`: the caller may
  // reconnect. kUnauthenticated and kInvalidArgument as for send().
  Result<Response> stream(const std::string& target, const std::map<std::string, std::string>& headers,
                          const std::function<bool(const Response& head)>& on_head,
                          const std::function<bool(std::string_view)>& on_data,
                          std::chrono::milliseconds idle_timeout);

  // For tests: send() that throws std::runtime_error on failure, and shorthands with a bearer
  // token ("" sends no Authorization header).
  Response request(const std::string& method, const std::string& target, const std::string& body = "",
                   const std::map<std::string, std::string>& headers = {});
  Response get(const std::string& target, const std::string& token = "");
  Response post(const std::string& target, const std::string& body, const std::string& token = "",
                const std::map<std::string, std::string>& headers = {});
  Response del(const std::string& target, const std::string& token = "");

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace mufl::client
