#include "cli/http_client.h"

#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include <boost/asio.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>

#include <cctype>
#include <optional>
#include <stdexcept>
#include <variant>
#include <vector>

#include "core/file_io.h"

namespace mufl::client {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;
namespace ssl = asio::ssl;
using TlsStream = beast::ssl_stream<beast::tcp_stream>;
using error_code = boost::system::error_code;
using Clock = std::chrono::steady_clock;

namespace {

constexpr size_t kMaxErrorBody = 1 << 20;  // a problem+json body is small; more is not read
// Beast reads at most a read buffer's free capacity from the socket at once (but at least 512
// bytes): without room reserved, a 47 MB body costs ~90,000 reads (~0.8 s over loopback).
constexpr size_t kReadSize = 64 * 1024;

// Runs one asynchronous operation to its end. Beast's synchronous calls ignore tcp_stream's
// timeouts; its asynchronous ones honour them, so each call here is async plus run().
template <typename Start>
error_code run(asio::io_context& ioc, Start&& start) {
  error_code result = asio::error::would_block;
  start([&result](error_code ec, auto&&...) { result = ec; });
  ioc.restart();
  ioc.run();
  return result;
}

template <typename Fields>
void copy_head(const http::response_header<Fields>& head, Response& out) {
  out.status = static_cast<int>(head.result_int());
  for (const auto& f : head) {
    std::string name(f.name_string());
    for (char& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    out.headers[name] = std::string(f.value());
  }
}

std::string seconds_text(std::chrono::milliseconds d) {
  const auto ms = d.count();
  return ms % 1000 == 0 ? std::to_string(ms / 1000) + " s" : std::to_string(ms) + " ms";
}

// One connection to the server, TCP or TLS over TCP; with_stream() runs the same code on either.
class Connection {
 public:
  explicit Connection(asio::io_context& ioc) : s_(std::in_place_index<0>, ioc) {}
  Connection(asio::io_context& ioc, ssl::context& tls) : s_(std::in_place_index<1>, ioc, tls) {}

  beast::tcp_stream& tcp() {
    return std::visit([](auto& s) -> beast::tcp_stream& { return beast::get_lowest_layer(s); }, s_);
  }
  TlsStream* tls() { return std::get_if<1>(&s_); }
  template <typename F>
  decltype(auto) with_stream(F&& f) {
    return std::visit(std::forward<F>(f), s_);
  }

 private:
  std::variant<beast::tcp_stream, TlsStream> s_;
};

// The TLS client context: TLS 1.2 at least, the peer's certificate verified against the CAs
// in `ca_file` or the system's. kInvalidArgument when `ca_file` cannot be read or holds no CA.
Result<std::unique_ptr<ssl::context>> make_tls_context(const std::string& ca_file) {
  auto ctx = std::make_unique<ssl::context>(ssl::context::tls_client);
  SSL_CTX_set_min_proto_version(ctx->native_handle(), TLS1_2_VERSION);
  ctx->set_verify_mode(ssl::verify_peer);
  error_code ec;
  if (ca_file.empty()) {
    ctx->set_default_verify_paths(ec);
    if (ec) return Status::invalid_argument("TLS: cannot load the system's trusted CAs: " + ec.message());
    return Result<std::unique_ptr<ssl::context>>(std::move(ctx));
  }
  auto pem = read_file(ca_file);
  if (!pem.ok()) return Status::invalid_argument("TLS: cannot read the CA file " + ca_file + ": " + pem.status().message());
  ctx->add_certificate_authority(asio::buffer(*pem), ec);
  if (ec) return Status::invalid_argument("TLS: the CA file " + ca_file + " holds no PEM certificate: " + ec.message());
  return Result<std::unique_ptr<ssl::context>>(std::move(ctx));
}

}  // namespace

struct HttpClient::Impl {
  std::string host;
  uint16_t port;
  ClientOptions options;
  asio::io_context ioc;
  std::unique_ptr<ssl::context> tls;  // made at the first TLS connection
  std::unique_ptr<Connection> conn;   // the keep-alive connection, when open
  beast::flat_buffer buffer;          // bytes read from `conn` past the last response

  std::string where() const { return host + ":" + std::to_string(port); }
  std::string url() const { return (options.tls ? "https://" : "http://") + where(); }

  // Runs `op(stream, handler)`, one asynchronous operation on `c`'s stream, to its end.
  template <typename Op>
  error_code io(Connection& c, Op&& op) {
    return c.with_stream([&](auto& s) { return run(ioc, [&](auto handler) { op(s, handler); }); });
  }

  // A new connection, TCP connected and, with TLS, handshaken and verified, by `deadline`.
  // kUnavailable, kUnauthenticated or kInvalidArgument as HttpClient::send() describes.
  Result<std::unique_ptr<Connection>> connect(Clock::time_point deadline) {
    if (options.tls && !tls) {
      auto ctx = make_tls_context(options.ca_file);
      if (!ctx.ok()) return ctx.status();
      tls = std::move(*ctx);
    }
    auto c = options.tls ? std::make_unique<Connection>(ioc, *tls) : std::make_unique<Connection>(ioc);
    tcp::resolver resolver(ioc);
    error_code ec;
    auto endpoints = resolver.resolve(host, std::to_string(port), ec);
    if (ec) return Status::unavailable("cannot resolve " + host + ": " + ec.message());
    c->tcp().expires_at(deadline);
    ec = run(ioc, [&](auto handler) { c->tcp().async_connect(endpoints, handler); });
    if (ec == beast::error::timeout)
      return Status::unavailable("cannot connect to " + where() + " within " + seconds_text(options.timeout));
    if (ec) return Status::unavailable("cannot connect to " + where() + ": " + ec.message());
    if (c->tls()) {
      if (Status s = handshake(*c->tls()); !s.is_ok()) return s;
    }
    return Result<std::unique_ptr<Connection>>(std::move(c));
  }

  // The TLS handshake on a connected stream, checking the certificate against `host`.
  Status handshake(TlsStream& s) {
    SSL* ssl = s.native_handle();
    error_code ec;
    asio::ip::make_address(host, ec);
    if (ec) {  // a DNS name: SNI, and the certificate must name it (RFC 6066: no addresses in SNI)
      SSL_set_tlsext_host_name(ssl, host.c_str());
      SSL_set1_host(ssl, host.c_str());
    } else {  // an IP address: the certificate must list it as a subjectAltName
      X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl), host.c_str());
    }
    ec = run(ioc, [&](auto handler) { s.async_handshake(ssl::stream_base::client, handler); });
    if (!ec) return Status::ok();
    if (ec == beast::error::timeout)
      return Status::unavailable("no TLS handshake with " + url() + " within " + seconds_text(options.timeout));
    const long verify = SSL_get_verify_result(ssl);
    if (verify != X509_V_OK)
      return Status::unauthenticated(std::string("TLS: certificate verify failed (") +
                                     X509_verify_cert_error_string(verify) + ") for " + url());
    return Status::unauthenticated("TLS: the handshake with " + url() + " failed (" + ec.message() +
                                   "); does it serve HTTPS?");
  }

  std::string broken(const error_code& ec) const {
    if (ec == beast::error::timeout) return "no answer from " + where() + " within " + seconds_text(options.timeout);
    return "the connection to " + where() + " broke: " + ec.message();
  }

  http::request<http::string_body> make_request(const std::string& method, const std::string& target,
                                                const std::string& body,
                                                const std::map<std::string, std::string>& headers) const {
    http::request<http::string_body> req(http::string_to_verb(method), target, 11);
    req.set(http::field::host, where());
    req.set(http::field::user_agent, "mufl-http-client");
    for (const auto& [k, v] : headers) req.set(k, v);
    if (!body.empty() || method == "POST" || method == "PATCH" || method == "PUT") {
      req.body() = body;
      req.prepare_payload();
    }
    return req;
  }
};

HttpClient::HttpClient(std::string host, uint16_t port, ClientOptions options) : impl_(std::make_unique<Impl>()) {
  impl_->host = std::move(host);
  impl_->port = port;
  impl_->options = options;
}

HttpClient::~HttpClient() = default;

Result<Response> HttpClient::send(const std::string& method, const std::string& target, const std::string& body,
                                  const std::map<std::string, std::string>& headers) {
  Impl& m = *impl_;
  auto req = m.make_request(method, target, body, headers);
  for (int attempt = 0; attempt < 2; ++attempt) {
    const auto deadline = Clock::now() + m.options.timeout;
    const bool reused = m.conn != nullptr;
    if (!reused) {
      m.buffer.clear();
      m.buffer.reserve(kReadSize);
      auto c = m.connect(deadline);
      if (!c.ok()) return c.status();
      m.conn = std::move(*c);
    }
    Connection& c = *m.conn;
    c.tcp().expires_at(deadline);
    error_code ec = m.io(c, [&](auto& s, auto handler) { http::async_write(s, req, handler); });
    http::response_parser<http::string_body> parser;
    parser.body_limit(m.options.body_limit);
    parser.skip(method == "HEAD");
    if (!ec) ec = m.io(c, [&](auto& s, auto handler) { http::async_read(s, m.buffer, parser, handler); });
    if (!ec) {
      auto res = parser.release();
      Response out;
      copy_head(res.base(), out);
      out.body = std::move(res.body());
      if (!res.keep_alive()) m.conn.reset();
      return out;
    }
    m.conn.reset();
    if (reused && ec != beast::error::timeout) continue;  // a stale keep-alive connection
    return Status::unavailable(m.broken(ec));
  }
  return Status::unavailable(m.broken(asio::error::connection_reset));
}

Result<Response> HttpClient::stream(const std::string& target, const std::map<std::string, std::string>& headers,
                                    const std::function<bool(const Response& head)>& on_head,
                                    const std::function<bool(std::string_view)>& on_data,
                                    std::chrono::milliseconds idle_timeout) {
  Impl& m = *impl_;
  const auto deadline = Clock::now() + m.options.timeout;
  auto connected = m.connect(deadline);
  if (!connected.ok()) return connected.status();
  Connection& c = **connected;
  auto req = m.make_request("GET", target, "", headers);
  c.tcp().expires_at(deadline);
  error_code ec = m.io(c, [&](auto& s, auto handler) { http::async_write(s, req, handler); });
  beast::flat_buffer buffer;
  buffer.reserve(kReadSize);
  http::response_parser<http::buffer_body> parser;
  parser.body_limit(boost::none);  // a stream has no end to bound
  if (!ec) ec = m.io(c, [&](auto& s, auto handler) { http::async_read_header(s, buffer, parser, handler); });
  if (ec) return Status::unavailable(m.broken(ec));

  Response out;
  copy_head(parser.get().base(), out);
  const bool success = out.status >= 200 && out.status < 300;
  if (success && !on_head(out)) return out;
  std::vector<char> chunk(kReadSize);  // read_some hands over what has arrived: events are not held back
  while (!parser.is_done()) {
    parser.get().body().data = chunk.data();
    parser.get().body().size = chunk.size();
    if (success) c.tcp().expires_after(idle_timeout); else c.tcp().expires_at(deadline);
    // read_some: hand over what has arrived now; async_read would wait for a full chunk.
    ec = m.io(c, [&](auto& s, auto handler) { http::async_read_some(s, buffer, parser, handler); });
    if (ec == http::error::need_buffer) ec = {};
    const size_t n = chunk.size() - parser.get().body().size;
    if (success) {
      if (n > 0 && !on_data(std::string_view(chunk.data(), n))) break;  // closing `c` ends the stream
    } else if (out.body.size() < kMaxErrorBody) {
      out.body.append(chunk.data(), n);
    }
    if (ec == beast::error::timeout && success)
      return Status::unavailable("the stream from " + m.where() + " was silent for " + seconds_text(idle_timeout));
    if (ec) return Status::unavailable(m.broken(ec));
  }
  return out;
}

Response HttpClient::request(const std::string& method, const std::string& target, const std::string& body,
                             const std::map<std::string, std::string>& headers) {
  auto r = send(method, target, body, headers);
  if (!r.ok()) throw std::runtime_error("http request failed: " + r.status().message());
  return std::move(r).value();
}

Response HttpClient::get(const std::string& target, const std::string& token) {
  std::map<std::string, std::string> h;
  if (!token.empty()) h["Authorization"] = "Bearer " + token;
  return request("GET", target, "", h);
}

Response HttpClient::post(const std::string& target, const std::string& body, const std::string& token,
                          const std::map<std::string, std::string>& headers) {
  std::map<std::string, std::string> h = headers;
  if (!token.empty()) h["Authorization"] = "Bearer " + token;
  h["Content-Type"] = "application/json";
  return request("POST", target, body, h);
}

Response HttpClient::del(const std::string& target, const std::string& token) {
  std::map<std::string, std::string> h;
  if (!token.empty()) h["Authorization"] = "Bearer " + token;
  return request("DELETE", target, "", h);
}

}  // namespace mufl::client
