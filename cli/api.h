#pragma once
// muflctl's side of the REST API: API paths under the server's URL prefix, the bearer token,
// and every answer turned into an exit code (cli/exit_codes.h) plus the text for stderr.
#include <nlohmann/json.hpp>
#include <string>

#include "cli/http_client.h"
#include "cli/options.h"

namespace mufl::cli {

// An answer of the API as muflctl reports it.
struct Reply {
  int exit_code = 0;         // 0: a 2xx answer; else 3 (4xx), 4 (5xx, or 2xx that is not the JSON asked for), 5 (no answer),
                             // 8 (TLS refused), 1 (--ca-file unreadable)
  std::string error;         // when exit_code != 0: the problem's title and detail, or why no answer came
  client::Response response; // status 0 when no answer came
  nlohmann::json document;   // call_json's parsed 2xx body
  bool ok() const { return exit_code == 0; }
};

// Percent-encodes everything but RFC 3986's unreserved characters, for a path segment or a
// query value taken from the command line.
std::string url_encode(const std::string& text);

class Api {
 public:
  explicit Api(const Options& options);

  // `path` starts with /v1/…; the server's prefix goes in front of it. Sends Authorization
  // when there is a token, and Content-Type: application/json with a body.
  Reply call(const std::string& method, const std::string& path, const std::string& body = "",
             const std::map<std::string, std::string>& headers = {});
  // call() that also parses a 2xx body into `document` (not JSON: exit code 4).
  Reply call_json(const std::string& method, const std::string& path, const std::string& body = "",
                  const std::map<std::string, std::string>& headers = {});

  // Every item of a paginated list (GET `path`, which has no query): pages of 1000 items,
  // following next_cursor until it is null. On success `document` is {"items": [...]} with the
  // items of every page in the API's order; on failure, the failing page's reply.
  Reply list_all(const std::string& path);

  // HttpClient::stream on `path`, with the token.
  Result<client::Response> stream(const std::string& path, std::map<std::string, std::string> headers,
                                  const std::function<bool(const client::Response&)>& on_head,
                                  const std::function<bool(std::string_view)>& on_data,
                                  std::chrono::milliseconds idle_timeout);

  // The reply for an answer `r` (or its failure).
  static Reply reply_for(Result<client::Response> r);

 private:
  std::map<std::string, std::string> with_token(std::map<std::string, std::string> headers) const;

  const Options& options_;
  client::HttpClient http_;
};

}  // namespace mufl::cli
