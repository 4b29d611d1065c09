#include "service/router.h"

#include <spdlog/spdlog.h>

#include <exception>
#include <optional>

#include "core/utf8.h"

#include "service/problem.h"

namespace mufl::service {
namespace {

std::vector<std::string_view> split_path(std::string_view path) {
  std::vector<std::string_view> out;
  size_t start = 1;  // skip the leading '/'
  while (start <= path.size()) {
    size_t slash = path.find('/', start);
    if (slash == std::string_view::npos) slash = path.size();
    out.push_back(path.substr(start, slash - start));
    start = slash + 1;
  }
  return out;
}

bool is_param(std::string_view seg) { return seg.size() > 2 && seg.front() == '{' && seg.back() == '}'; }

HttpResponse internal_error(const HttpRequest& request, const std::string& what) {
  return incident(500, request.method + " " + request.path + " threw: " + what);
}

HttpResponse not_utf8(const std::string& where, size_t offset) {
  return problem(400, "/problems/invalid-request",
                 where + " is not valid UTF-8 (invalid byte at offset " + std::to_string(offset) + ")");
}

// 400 naming the first part of the request that is not valid UTF-8: the target's path, a query
// parameter's name or value, a header's value (Beast has already refused bad header names).
// Bodies are checked by whoever reads them as text (tenants/json_fields.h), since some are bytes.
std::optional<HttpResponse> check_utf8(const HttpRequest& request) {
  if (size_t at = invalid_utf8_offset(request.path); at != std::string::npos)
    return not_utf8("the request target's path", at);
  for (const auto& [key, value] : request.query) {
    if (size_t at = invalid_utf8_offset(key); at != std::string::npos)
      return not_utf8("the name of query parameter '" + sanitize_utf8(key) + "'", at);
    if (size_t at = invalid_utf8_offset(value); at != std::string::npos)
      return not_utf8("query parameter '" + key + "'", at);
  }
  for (const auto& [name, value] : request.headers)
    if (size_t at = invalid_utf8_offset(value); at != std::string::npos)
      return not_utf8("header '" + sanitize_utf8(name) + "'", at);
  return std::nullopt;
}

}  // namespace

std::string bearer_token(const HttpRequest& request) {
  auto h = request.header("authorization");
  if (!h) return {};
  std::string_view v = *h;
  if (v.size() < 7 || !(v.substr(0, 7) == "Bearer " || v.substr(0, 7) == "bearer ")) return {};
  v.remove_prefix(7);
  while (!v.empty() && v.front() == ' ') v.remove_prefix(1);
  while (!v.empty() && v.back() == ' ') v.remove_suffix(1);
  return std::string(v);
}

void Router::add(std::string method, std::string path_template, Access access, Handler handler, Cost cost) {
  Route r;
  r.cost = cost;
  for (auto seg : split_path(path_template)) r.segments.emplace_back(seg);
  r.info = RouteInfo{std::move(method), std::move(path_template), access};
  r.handler = std::move(handler);
  routes_.push_back(std::move(r));
}

bool Router::is_quick(const HttpRequest& request) const noexcept {
  try {
    auto path = split_path(request.path);
    std::string_view method = request.method == "HEAD" ? std::string_view("GET") : std::string_view(request.method);
    for (const auto& r : routes_)
      if (r.info.method == method && match(r, path, nullptr)) return r.cost == Cost::kQuick;
  } catch (...) {  // bad_alloc: the pool then answers, as for any other request
  }
  return false;
}

bool Router::match(const Route& r, const std::vector<std::string_view>& path,
                   std::map<std::string, std::string>* params) {
  if (r.segments.size() != path.size()) return false;
  for (size_t i = 0; i < path.size(); ++i) {
    if (is_param(r.segments[i])) {
      if (path[i].empty()) return false;
      if (params) (*params)[r.segments[i].substr(1, r.segments[i].size() - 2)] = std::string(path[i]);
    } else if (r.segments[i] != path[i]) {
      return false;
    }
  }
  return true;
}

Router::Outcome Router::handle(const HttpRequest& request) const {
  // Nothing a client sends may end the process or leave without a reply: whatever throws here
  // (a handler, authentication, building a problem) becomes a 500 with an incident id.
  try {
    if (auto bad = check_utf8(request)) return {std::move(*bad), "invalid"};
    return dispatch(request);
  } catch (const std::exception& e) {
    return {internal_error(request, e.what()), "error"};
  } catch (...) {
    return {internal_error(request, "a non-standard exception"), "error"};
  }
}

namespace {

// Whether `who` may call a route with `access`: tenants and the admin use the API, federation
// clients only their own routes.
Status check_access(Access access, const Principal& who) {
  switch (access) {
    case Access::kPublic: return Status::ok();
    case Access::kAnyone:
      return who.is_client() ? Status::permission_denied("a federation client's token works on the client routes only")
                             : Status::ok();
    case Access::kAdmin:
      return who.is_admin() ? Status::ok() : Status::permission_denied("this route needs the admin token");
    case Access::kClient:
      return who.is_client() ? Status::ok()
                             : Status::permission_denied("this route needs an enrolled client's token");
  }
  return Status::permission_denied("unknown access level");
}

}  // namespace

Router::Outcome Router::dispatch(const HttpRequest& request) const {
  auto path = split_path(request.path);
  const std::string& method = request.method == "HEAD" ? std::string("GET") : request.method;
  const Route* found = nullptr;
  std::vector<std::string> allowed;
  for (const auto& r : routes_) {
    if (!match(r, path, nullptr)) continue;
    allowed.push_back(r.info.method);
    if (r.info.method == "GET") allowed.emplace_back("HEAD");
    if (r.info.method == method && !found) found = &r;
  }
  if (!found && allowed.empty())
    return {problem(404, "about:blank", "no route for " + request.path), "unmatched"};
  if (!found) {
    std::string allow;
    for (const auto& m : allowed) allow += (allow.empty() ? "" : ", ") + m;
    HttpResponse r = problem(405, "about:blank", "method " + request.method + " is not allowed here; use " + allow);
    r.headers.emplace_back("Allow", allow);
    // The template of any route on this path: a bounded label.
    for (const auto& route : routes_)
      if (match(route, path, nullptr)) return {std::move(r), route.info.path_template};
  }

  RequestContext ctx{request, {}, Principal::admin()};
  match(*found, path, &ctx.params);
  const std::string& label = found->info.path_template;

  if (found->info.access != Access::kPublic) {
    std::string token = bearer_token(request);
    auto who = authenticate_(token);
    if (!who.ok()) {
      HttpResponse r = problem_from_status(who.status());
      if (who.status().code() == Status::Code::kUnauthenticated && !token.empty()) {
        r.headers.clear();
        r.headers.emplace_back("WWW-Authenticate", "Bearer realm=\"mufl\", error=\"invalid_token\"");
      }
      return {std::move(r), label};
    }
    if (Status denied = check_access(found->info.access, *who); !denied.is_ok())
      return {problem(403, "about:blank", denied.message()), label};
    ctx.principal = std::move(*who);
  }

  try {
    return {found->handler(ctx), label};
  } catch (const std::exception& e) {
    return {internal_error(request, e.what()), label};
  } catch (...) {
    return {internal_error(request, "a non-standard exception"), label};
  }
}

std::vector<RouteInfo> Router::routes() const {
  std::vector<RouteInfo> out;
  for (const auto& r : routes_) out.push_back(r.info);
  return out;
}

}  // namespace mufl::service
