#include "service/http_parse.h"

#include <boost/asio/buffer.hpp>

#include "service/beast_request.h"

namespace mufl::service {

namespace http = boost::beast::http;

ParseResult parse_http_request(std::string_view bytes, size_t body_limit) {
  ParseResult out;
  http::request_parser<http::string_body> parser;
  parser.body_limit(body_limit);
  parser.header_limit(kHeaderLimit);
  parser.eager(true);
  boost::beast::error_code ec;
  size_t used = 0;
  while (!ec && !parser.is_done() && used < bytes.size()) {
    size_t n = parser.put(boost::asio::buffer(bytes.data() + used, bytes.size() - used), ec);
    if (n == 0 && ec == http::error::need_more) break;
    used += n;
    if (ec == http::error::need_more) ec = {};
  }
  if (!parser.is_done() && !ec && used == bytes.size()) {
    parser.put_eof(ec);  // a body that ends with the stream
    if (ec == http::error::partial_message) ec = {};
  }
  if (ec && ec != http::error::need_more) {
    auto reply = parse_error_reply(ec, body_limit);
    if (!reply) return out;  // kIncomplete: the server would just close
    out.kind = ParseResult::Kind::kError;
    out.error = std::move(*reply);
    return out;
  }
  if (!parser.is_done()) return out;
  out.keep_alive = parser.get().keep_alive();
  if (!to_http_request(parser.release(), out.request)) {
    out.kind = ParseResult::Kind::kError;
    out.error = bad_target_reply();
    return out;
  }
  out.kind = ParseResult::Kind::kRequest;
  out.consumed = used;
  return out;
}

}  // namespace mufl::service
