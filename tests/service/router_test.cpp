#include "service/router.h"

#include <catch2/catch.hpp>

#include <nlohmann/json.hpp>

using namespace mufl;
using namespace mufl::service;

namespace {

HttpRequest req(std::string method, std::string path, std::string token = "") {
  HttpRequest r;
  r.method = std::move(method);
  r.path = std::move(path);
  if (!token.empty()) r.headers.emplace_back("authorization", "Bearer " + token);
  return r;
}

std::string header(const HttpResponse& r, const std::string& name) {
  for (const auto& [k, v] : r.headers)
    if (k == name) return v;
  return "";
}

Router make_router() {
  Router router([](std::string_view token) -> Result<Principal> {
    if (token == "admin") return Principal::admin();
    if (token == "tenant") return Principal::tenant("ten_1");
    return Status::unauthenticated("bad token");
  });
  router.add("GET", "/public", Access::kPublic, [](const RequestContext&) { return HttpResponse{200, "text/plain", {}, "pub"}; });
  router.add("GET", "/items/{id}", Access::kAnyone, [](const RequestContext& ctx) {
    return HttpResponse{200, "text/plain", {}, ctx.param("id") + "/" + ctx.principal.tenant_id};
  });
  router.add("DELETE", "/items/{id}", Access::kAnyone, [](const RequestContext&) { return HttpResponse{204, "", {}, ""}; });
  router.add("POST", "/admin", Access::kAdmin, [](const RequestContext&) { return HttpResponse{201, "", {}, ""}; });
  router.add("GET", "/boom", Access::kPublic, [](const RequestContext&) -> HttpResponse { throw std::runtime_error("x"); });
  return router;
}

}  // namespace

TEST_CASE("router: templates bind parameters and report the template as the route") {
  Router r = make_router();
  auto out = r.handle(req("GET", "/items/abc", "tenant"));
  CHECK(out.response.status == 200);
  CHECK(out.response.body == "abc/ten_1");
  CHECK(out.route == "/items/{id}");
  CHECK(r.handle(req("GET", "/items/abc/more", "tenant")).response.status == 404);
  CHECK(r.handle(req("GET", "/items/", "tenant")).response.status == 404);
}

TEST_CASE("router: 404, then 405 with Allow, then 401, then 403") {
  Router r = make_router();
  auto unknown = r.handle(req("GET", "/nowhere"));
  CHECK(unknown.response.status == 404);
  CHECK(unknown.response.content_type == "application/problem+json");
  CHECK(unknown.route == "unmatched");

  auto wrong_method = r.handle(req("PUT", "/items/x", "tenant"));
  CHECK(wrong_method.response.status == 405);
  CHECK(header(wrong_method.response, "Allow") == "GET, HEAD, DELETE");

  auto no_token = r.handle(req("GET", "/items/x"));
  CHECK(no_token.response.status == 401);
  CHECK(header(no_token.response, "WWW-Authenticate").rfind("Bearer", 0) == 0);
  auto bad_token = r.handle(req("GET", "/items/x", "wrong"));
  CHECK(bad_token.response.status == 401);

  CHECK(r.handle(req("POST", "/admin", "tenant")).response.status == 403);
  CHECK(r.handle(req("POST", "/admin", "admin")).response.status == 201);
  CHECK(r.handle(req("GET", "/public")).response.status == 200);
}

TEST_CASE("router: HEAD answers GET routes, and a throwing handler gives 500 problem+json") {
  Router r = make_router();
  CHECK(r.handle(req("HEAD", "/public")).response.status == 200);
  auto boom = r.handle(req("GET", "/boom"));
  CHECK(boom.response.status == 500);
  auto j = nlohmann::json::parse(boom.response.body);
  CHECK(j["status"] == 500);
  CHECK(j.contains("title"));
  // The client gets an incident id to quote, never what was thrown.
  REQUIRE(j["incident"].is_string());
  CHECK(j["incident"].get<std::string>().rfind("inc_", 0) == 0);
  CHECK(j["detail"].get<std::string>().find(j["incident"].get<std::string>()) != std::string::npos);
  CHECK(boom.response.body.find("\"x\"") == std::string::npos);
  CHECK(nlohmann::json::parse(r.handle(req("GET", "/boom")).response.body)["incident"] != j["incident"]);
}

TEST_CASE("router: a throw that is not a std::exception is a 500 too") {
  Router r([](std::string_view) -> Result<Principal> { throw 42; });
  r.add("GET", "/odd", Access::kPublic, [](const RequestContext&) -> HttpResponse { throw 7; });
  r.add("GET", "/auth", Access::kAnyone, [](const RequestContext&) { return HttpResponse{}; });
  CHECK(r.handle(req("GET", "/odd")).response.status == 500);
  CHECK(r.handle(req("GET", "/auth", "t")).response.status == 500);  // the authenticator threw
}

TEST_CASE("router: invalid UTF-8 in the path, a query parameter or a header is a 400 naming it") {
  Router r = make_router();
  auto path = r.handle(req("GET", "/\xff"));
  CHECK(path.response.status == 400);
  CHECK(path.route == "invalid");
  CHECK(path.response.body.find("path") != std::string::npos);
  CHECK(nlohmann::json::parse(path.response.body)["type"] == "/problems/invalid-request");

  HttpRequest q = req("GET", "/public");
  q.query["phase"] = "\xff";
  auto query = r.handle(q);
  CHECK(query.response.status == 400);
  CHECK(query.response.body.find("query parameter 'phase'") != std::string::npos);

  HttpRequest k = req("GET", "/public");
  k.query["ph\xc3"] = "x";
  auto key = r.handle(k);
  CHECK(key.response.status == 400);
  CHECK(nlohmann::json::parse(key.response.body)["detail"].get<std::string>().find("name of query parameter") !=
        std::string::npos);

  HttpRequest h = req("GET", "/public");
  h.headers.emplace_back("user-agent", "curl\xed\xa0\x80");
  auto header_bad = r.handle(h);
  CHECK(header_bad.response.status == 400);
  CHECK(header_bad.response.body.find("header 'user-agent'") != std::string::npos);

  // Valid multi-byte text passes through to the router as before.
  HttpRequest ok = req("GET", "/items/caf\xc3\xa9", "tenant");
  CHECK(r.handle(ok).response.status == 200);
}

TEST_CASE("router: bearer_token reads only Bearer credentials") {
  HttpRequest r;
  CHECK(bearer_token(r).empty());
  r.headers.emplace_back("authorization", "Basic dXNlcjpwYXNz");
  CHECK(bearer_token(r).empty());
  HttpRequest r2;
  r2.headers.emplace_back("authorization", "Bearer abc");
  CHECK(bearer_token(r2) == "abc");
}

TEST_CASE("router: routes() lists every registration in order") {
  Router r = make_router();
  auto routes = r.routes();
  REQUIRE(routes.size() == 5);
  CHECK(routes[0].path_template == "/public");
  CHECK(routes[2].method == "DELETE");
  CHECK(routes[3].access == Access::kAdmin);
}

TEST_CASE("router: is_quick names the routes added as quick, HEAD included, and nothing else") {
  Router r = make_router();
  r.add("GET", "/fast/{id}", Access::kAnyone, [](const RequestContext&) { return HttpResponse{200, "", {}, ""}; },
        Cost::kQuick);
  r.add("POST", "/fast/{id}", Access::kAnyone, [](const RequestContext&) { return HttpResponse{201, "", {}, ""}; });
  CHECK(r.is_quick(req("GET", "/fast/1")));
  CHECK(r.is_quick(req("HEAD", "/fast/1")));
  CHECK_FALSE(r.is_quick(req("POST", "/fast/1")));   // same path, a route that may block
  CHECK_FALSE(r.is_quick(req("GET", "/items/1")));   // added without a cost
  CHECK_FALSE(r.is_quick(req("GET", "/fast/1/x")));  // no route: the pool answers 404
  // Matching looks at the shape only; the UTF-8 check is handle()'s, on whichever thread runs it.
  CHECK(r.handle(req("GET", "/fast/\xff")).response.status == 400);
}
