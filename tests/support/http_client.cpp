#include "tests/support/http_client.h"

#include <boost/asio.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>

#include <cctype>
#include <stdexcept>

namespace mufl::testing {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;

struct HttpClient::Impl {
  std::string host;
  uint16_t port;
  asio::io_context ioc;
  std::optional<beast::tcp_stream> stream;

  void connect() {
    stream.emplace(ioc);
    stream->connect(tcp::endpoint(asio::ip::make_address(host), port));
  }
};

HttpClient::HttpClient(std::string host, uint16_t port) : impl_(std::make_unique<Impl>()) {
  impl_->host = std::move(host);
  impl_->port = port;
}

HttpClient::~HttpClient() = default;

ClientResponse HttpClient::request(const std::string& method, const std::string& target, const std::string& body,
                                   const std::map<std::string, std::string>& headers) {
  http::request<http::string_body> req(http::string_to_verb(method), target, 11);
  req.set(http::field::host, impl_->host);
  for (const auto& [k, v] : headers) req.set(k, v);
  if (!body.empty() || method == "POST" || method == "PATCH") {
    req.body() = body;
    req.prepare_payload();
  }
  for (int attempt = 0; attempt < 2; ++attempt) {
    try {
      if (!impl_->stream) impl_->connect();
      http::write(*impl_->stream, req);
      beast::flat_buffer buffer;
      http::response_parser<http::string_body> parser;
      parser.body_limit(64 << 20);
      parser.skip(method == "HEAD");
      http::read(*impl_->stream, buffer, parser);
      auto res = parser.release();
      ClientResponse out;
      out.status = static_cast<int>(res.result_int());
      for (const auto& f : res) {
        std::string name(f.name_string());
        for (char& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
        out.headers[name] = std::string(f.value());
      }
      out.body = std::move(res.body());
      if (!res.keep_alive()) impl_->stream.reset();
      return out;
    } catch (const boost::system::system_error& e) {
      impl_->stream.reset();  // a stale keep-alive connection: retry once on a new one
      if (attempt == 1) throw std::runtime_error(std::string("http request failed: ") + e.what());
    }
  }
  throw std::runtime_error("unreachable");
}

ClientResponse HttpClient::get(const std::string& target, const std::string& token) {
  std::map<std::string, std::string> h;
  if (!token.empty()) h["Authorization"] = "Bearer " + token;
  return request("GET", target, "", h);
}

ClientResponse HttpClient::post(const std::string& target, const std::string& body, const std::string& token,
                                const std::map<std::string, std::string>& headers) {
  std::map<std::string, std::string> h = headers;
  if (!token.empty()) h["Authorization"] = "Bearer " + token;
  h["Content-Type"] = "application/json";
  return request("POST", target, body, h);
}

ClientResponse HttpClient::del(const std::string& target, const std::string& token) {
  std::map<std::string, std::string> h;
  if (!token.empty()) h["Authorization"] = "Bearer " + token;
  return request("DELETE", target, "", h);
}

std::string raw_exchange(const std::string& host, uint16_t port, const std::string& raw) {
  asio::io_context ioc;
  tcp::socket sock(ioc);
  sock.connect(tcp::endpoint(asio::ip::make_address(host), port));
  asio::write(sock, asio::buffer(raw));
  sock.shutdown(tcp::socket::shutdown_send);
  std::string out;
  char buf[4096];
  boost::system::error_code ec;
  for (;;) {
    size_t n = sock.read_some(asio::buffer(buf), ec);
    out.append(buf, n);
    if (ec) break;
  }
  return out;
}

}  // namespace mufl::testing
