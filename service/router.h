#pragma once
// Router: maps (method, path) to a handler through route templates ("/v1/activities/{id}"),
// authenticates the caller for the route's access level, and turns every failure into a
// problem+json response. A handler is a plain function from request to response: it never sees a
// socket, so tests call Router::handle directly.
//
// Order of checks: a path, query parameter or header value that is not valid UTF-8 → 400 naming
// it (route label "invalid"); unknown path → 404; known path, other method → 405 with Allow; then the
// bearer token: missing or wrong → 401 with WWW-Authenticate; a tenant token on an admin route,
// a client token on any other than a client route, or another token on a client route → 403. Anything that throws (a handler, authentication) yields a 500 with an incident id
// (service/problem.h: incident()), never an exception out of handle().
//
// Thread safety: add() before the first handle(); handle() may then run on many threads.
#include <functional>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "core/result.h"
#include "core/tenant.h"
#include "service/http_types.h"

namespace mufl::service {

enum class Access {
  kPublic,  // no token needed
  kAnyone,  // a tenant's or the admin's token (not a federation client's)
  kAdmin,   // the admin token only
  kClient,  // an enrolled federation client's token only (docs/clients.md)
};

// Where a route's handler may run (HttpServerOptions::is_quick).
enum class Cost {
  kMayBlock,  // may wait on the disk, a write lock or a file (writes, downloads, scrapes): the handler pool
  kQuick,     // a bounded read (one read snapshot, memory): may run on the I/O thread that read it
};

struct RequestContext {
  const HttpRequest& request;
  std::map<std::string, std::string> params;  // values of {name} segments
  Principal principal;                         // meaningless on kPublic routes
  const std::string& param(const std::string& name) const { return params.at(name); }
};

using Handler = std::function<HttpResponse(const RequestContext&)>;
using Authenticator = std::function<Result<Principal>(std::string_view bearer_token)>;

struct RouteInfo {
  std::string method;
  std::string path_template;
  Access access;
};

class Router {
 public:
  explicit Router(Authenticator authenticate) : authenticate_(std::move(authenticate)) {}

  // Registers a route. GET routes answer HEAD too.
  void add(std::string method, std::string path_template, Access access, Handler handler,
           Cost cost = Cost::kMayBlock);
  // Whether `request` reaches a route added as Cost::kQuick. False when no route matches
  // (404s and 405s go to the pool, like everything else that is not known to be quick).
  bool is_quick(const HttpRequest& request) const noexcept;

  struct Outcome {
    HttpResponse response;
    // The matched template, or "unmatched", "invalid" (not UTF-8), "error" (threw before a
    // route matched): a bounded label for metrics.
    std::string route;
  };
  Outcome handle(const HttpRequest& request) const;

  // Every registered route, in registration order (for docs/openapi.yaml's test).
  std::vector<RouteInfo> routes() const;

 private:
  struct Route {
    RouteInfo info;
    std::vector<std::string> segments;  // template split on '/', "{id}" kept as is
    Handler handler;
    Cost cost = Cost::kMayBlock;
  };
  Outcome dispatch(const HttpRequest& request) const;  // handle() minus the UTF-8 check and catch-all
  static bool match(const Route& r, const std::vector<std::string_view>& path,
                    std::map<std::string, std::string>* params);

  Authenticator authenticate_;
  std::vector<Route> routes_;
};

// "Bearer abc" → "abc"; empty when the header is missing or not a Bearer credential.
std::string bearer_token(const HttpRequest& request);

}  // namespace mufl::service
