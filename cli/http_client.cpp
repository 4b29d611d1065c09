#include "cli/http_client.h"

#include <boost/asio.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>

#include <cctype>
#include <optional>
#include <stdexcept>

namespace mufl::client {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;
using error_code = boost::system::error_code;
using Clock = std::chrono::steady_clock;

namespace {

constexpr size_t kMaxErrorBody = 1 << 20;  // a problem+json body is small; more is not read

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

}  // namespace

struct HttpClient::Impl {
  std::string host;
  uint16_t port;
  ClientOptions options;
  asio::io_context ioc;
  std::optional<beast::tcp_stream> conn;  // the keep-alive connection, when open
  beast::flat_buffer buffer;               // bytes read from `conn` past the last response

  std::string where() const { return host + ":" + std::to_string(port); }

  // Connects `s`; the error says why not.
  error_code connect(beast::tcp_stream& s, Clock::time_point deadline, std::string& why) {
    tcp::resolver resolver(ioc);
    error_code ec;
    auto endpoints = resolver.resolve(host, std::to_string(port), ec);
    if (ec) {
      why = "cannot resolve " + host + ": " + ec.message();
      return ec;
    }
    s.expires_at(deadline);
    ec = run(ioc, [&](auto handler) { s.async_connect(endpoints, handler); });
    if (ec) why = ec == beast::error::timeout ? "cannot connect to " + where() + " within " + seconds_text(options.timeout)
                                             : "cannot connect to " + where() + ": " + ec.message();
    return ec;
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
    const bool reused = m.conn.has_value();
    if (!reused) {
      m.conn.emplace(m.ioc);
      m.buffer.clear();
      std::string why;
      if (m.connect(*m.conn, deadline, why)) {
        m.conn.reset();
        return Status::unavailable(why);
      }
    }
    beast::tcp_stream& s = *m.conn;
    s.expires_at(deadline);
    error_code ec = run(m.ioc, [&](auto handler) { http::async_write(s, req, handler); });
    http::response_parser<http::string_body> parser;
    parser.body_limit(m.options.body_limit);
    parser.skip(method == "HEAD");
    if (!ec) ec = run(m.ioc, [&](auto handler) { http::async_read(s, m.buffer, parser, handler); });
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
  beast::tcp_stream s(m.ioc);
  std::string why;
  const auto deadline = Clock::now() + m.options.timeout;
  if (m.connect(s, deadline, why)) return Status::unavailable(why);
  auto req = m.make_request("GET", target, "", headers);
  s.expires_at(deadline);
  error_code ec = run(m.ioc, [&](auto handler) { http::async_write(s, req, handler); });
  beast::flat_buffer buffer;
  http::response_parser<http::buffer_body> parser;
  parser.body_limit(boost::none);  // a stream has no end to bound
  if (!ec) ec = run(m.ioc, [&](auto handler) { http::async_read_header(s, buffer, parser, handler); });
  if (ec) return Status::unavailable(m.broken(ec));

  Response out;
  copy_head(parser.get().base(), out);
  const bool success = out.status >= 200 && out.status < 300;
  if (success && !on_head(out)) return out;
  char chunk[16 * 1024];
  while (!parser.is_done()) {
    parser.get().body().data = chunk;
    parser.get().body().size = sizeof chunk;
    if (success) s.expires_after(idle_timeout); else s.expires_at(deadline);
    // read_some: hand over what has arrived now; async_read would wait for a full chunk.
    ec = run(m.ioc, [&](auto handler) { http::async_read_some(s, buffer, parser, handler); });
    if (ec == http::error::need_buffer) ec = {};
    const size_t n = sizeof chunk - parser.get().body().size;
    if (success) {
      if (n > 0 && !on_data(std::string_view(chunk, n))) break;  // closing `s` ends the stream
    } else if (out.body.size() < kMaxErrorBody) {
      out.body.append(chunk, n);
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
