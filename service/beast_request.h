#pragma once
// Internal to service/: the step from Beast's parsed request to the HttpRequest that handlers
// see, shared by the server (http_server.cpp) and the socket-free parser (http_parse.h) so that
// the fuzz harness drives exactly the server's path. Includes Beast: never include it from a
// header outside service/.
#include <boost/beast/http.hpp>

#include <optional>

#include "service/http_types.h"

namespace mufl::service {

// The header block limit of every request (431 beyond it).
constexpr size_t kHeaderLimit = 16 * 1024;

// Moves `in` into `out`: method, path and decoded query (split_target), headers with lower-case
// names, body. False when the target is not origin-form or has a bad percent escape (400).
bool to_http_request(boost::beast::http::request<boost::beast::http::string_body>&& in, HttpRequest& out);

// The reply when to_http_request() refuses the target: 400 "malformed request target".
HttpResponse bad_target_reply();

// The reply to a parser error before the connection closes: 413 for a body over `body_limit`,
// 431 for a header block over kHeaderLimit, 400 for anything else unparsable. nullopt for the
// errors after which there is no one to answer (end of stream, reset, timeout, cancel, and
// every TLS error: a truncated or broken TLS stream).
std::optional<HttpResponse> parse_error_reply(const boost::beast::error_code& ec, size_t body_limit);

}  // namespace mufl::service
