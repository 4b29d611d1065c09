#pragma once
// Where /metrics is served and who may scrape it (mufld's --metrics-listen and
// --metrics-token / --metrics-token-file; README, "Metrics"; deploy/README.md).
#include <string>
#include <string_view>

#include "service/http_types.h"

namespace mufl::service {

struct MetricsEndpointOptions {
  // true (default): GET /metrics is a route of the App's main router, beside the API. false:
  // only App::handle_metrics answers it (mufld's --metrics-listen listener), and the main
  // router answers 404 for /metrics.
  bool on_main_listener = true;
  // Non-empty: a scrape must send "Authorization: Bearer <token>"; without it, or with another
  // token, the answer is 401 problem+json. Empty (default): /metrics is public.
  std::string token;
};

// Whether `request` carries "Authorization: Bearer <token>". The comparison takes the same
// time wherever the sent token differs from `token` and whatever its length (both are hashed
// first), so response times tell nothing of the secret. REQUIRES: `token` is not empty.
bool scrape_authorized(const HttpRequest& request, std::string_view token);

// The 401 problem+json for a scrape without the right token, with WWW-Authenticate.
HttpResponse scrape_unauthorized(const HttpRequest& request);

}  // namespace mufl::service
