#include "service/metrics_endpoint.h"

#include "service/problem.h"
#include "service/router.h"
#include "tenants/token.h"

namespace mufl::service {

bool scrape_authorized(const HttpRequest& request, std::string_view token) {
  // Hashes of equal length, so constant_time_equal's time does not depend on the sent length.
  const std::string sent = bearer_token(request);
  const bool equal = tenants::constant_time_equal(tenants::sha256_hex(sent), tenants::sha256_hex(token));
  return equal && !sent.empty();
}

HttpResponse scrape_unauthorized(const HttpRequest& request) {
  const bool sent = !bearer_token(request).empty();
  HttpResponse r = problem(401, "about:blank",
                           sent ? "the bearer token is not the metrics token"
                                : "/metrics needs Authorization: Bearer <the metrics token>");
  r.headers.emplace_back("WWW-Authenticate",
                         sent ? "Bearer realm=\"mufl-metrics\", error=\"invalid_token\"" : "Bearer realm=\"mufl-metrics\"");
  return r;
}

}  // namespace mufl::service
