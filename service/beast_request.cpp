#include "service/beast_request.h"

#include <boost/asio/error.hpp>
#include <boost/asio/ssl/error.hpp>

#include <cctype>

#include "service/problem.h"

namespace mufl::service {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;

bool to_http_request(http::request<http::string_body>&& in, HttpRequest& out) {
  out.method = std::string(in.method_string());
  if (!split_target(in.target(), out.path, out.query)) return false;
  out.headers.clear();
  for (const auto& field : in) {
    std::string name(field.name_string());
    for (char& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    out.headers.emplace_back(std::move(name), std::string(field.value()));
  }
  out.body = std::move(in.body());
  return true;
}

HttpResponse bad_target_reply() { return problem(400, "about:blank", "malformed request target"); }

std::optional<HttpResponse> parse_error_reply(const beast::error_code& ec, size_t body_limit) {
  if (ec == http::error::end_of_stream || ec == asio::error::operation_aborted || ec == beast::error::timeout ||
      ec == asio::error::connection_reset || ec == asio::error::eof || ec == asio::error::bad_descriptor)
    return std::nullopt;
  // TLS: the client closed without close_notify, or a broken record; no reply can get through.
  if (ec == asio::ssl::error::stream_truncated || ec.category() == asio::error::get_ssl_category())
    return std::nullopt;
  if (ec == http::error::body_limit)
    return problem(413, "about:blank",
                   "the request body exceeds the limit of " + std::to_string(body_limit) + " bytes");
  if (ec == http::error::header_limit) return problem(431, "about:blank", "the request header block is too large");
  return problem(400, "about:blank", "malformed HTTP request: " + ec.message());
}

}  // namespace mufl::service
