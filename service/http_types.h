#pragma once
// Plain request and response values that handlers see. Only service/http_server.cpp knows
// Beast; handlers and their tests work on these, with no socket.
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace mufl::service {

class ResponseStream;  // service/response_stream.h
class DeferredResponse;  // service/deferred_response.h

struct HttpRequest {
  std::string method;                              // "GET", upper case as sent
  std::string path;                                // "/v1/activities", no query, not decoded
  std::map<std::string, std::string> query;        // decoded query parameters (last one wins)
  std::vector<std::pair<std::string, std::string>> headers;  // names in lower case
  std::string body;

  // The first header named `name` (lower case), or nullopt.
  std::optional<std::string_view> header(std::string_view name) const {
    for (const auto& [k, v] : headers)
      if (k == name) return std::string_view(v);
    return std::nullopt;
  }
};

struct HttpResponse {
  int status = 200;
  std::string content_type = "application/json";
  std::vector<std::pair<std::string, std::string>> headers;  // extra headers (Location, Allow…)
  std::string body;
  // Set: the body is these bytes instead of `body`, shared and never copied (the same file sent
  // to a thousand clients at once: a round's global weights). Kept alive until written.
  std::shared_ptr<const std::string> shared_body = nullptr;
  // Set: the body is this stream instead of `body` (service/response_stream.h). The server
  // sends no Content-Length, answers "Connection: close", and the body ends when it closes
  // the connection.
  std::shared_ptr<ResponseStream> stream = nullptr;
  // Set: the reply comes later, from this (service/deferred_response.h); the other fields are
  // what metrics and logs record for the request when the handler returns.
  std::shared_ptr<DeferredResponse> deferred = nullptr;
};

// The body a response sends: its shared bytes when it has them, else `body`.
inline std::string_view body_of(const HttpResponse& r) { return r.shared_body ? *r.shared_body : r.body; }

// Splits "/a/b?x=1&y=%20" into path and decoded query. Returns false when the target is not
// origin-form ("/…") or has a bad percent escape.
bool split_target(std::string_view target, std::string& path, std::map<std::string, std::string>& query);

}  // namespace mufl::service
