// /v1/federations… (tenants and the admin) and /v1/clients… (enrollment, and the clients'
// own routes): docs/clients.md.
#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <mutex>

#include <nlohmann/json.hpp>

#include "service/board_poll.h"
#include "service/json_response.h"
#include "service/page_query.h"
#include "service/problem.h"
#include "service/routes.h"
#include "tenants/json_fields.h"

namespace mufl::service {
namespace {

constexpr int kDefaultClientPage = 100;

// The body as a JSON object; an empty body is an empty object (routes whose fields are all optional).
Result<nlohmann::json> optional_body(const HttpRequest& req) {
  if (req.body.empty()) return nlohmann::json::object();
  return tenants::parse_json_object(req.body);
}

Result<storage::ClientQuery> parse_client_query(const HttpRequest& req, const std::string& federation_id) {
  storage::ClientQuery q;
  q.federation_id = federation_id;
  q.limit = kDefaultClientPage;
  std::vector<FieldError> errors;
  for (const auto& [key, value] : req.query) {
    if (key == "limit") {
      if (auto n = read_page_limit(value, errors)) q.limit = *n;
    } else if (key == "cursor") {
      if (auto c = read_page_cursor(value, errors)) q.after_seq = *c;
    } else {
      errors.push_back({key, "unknown query parameter; this route takes limit and cursor"});
    }
  }
  if (!errors.empty()) return Status::invalid_argument("the query has invalid parameters", std::move(errors));
  return q;
}

// What `who` sees of `f`: everything when it owns it, the id, name and schema otherwise.
nlohmann::json view_of(const Principal& who, const Federation& f) {
  return federation::owns(who, f) ? federation::federation_to_json(f) : federation::federation_summary_json(f);
}

// A reply that carries a fresh enrollment token: 201 on create, 200 on rotation.
HttpResponse with_enrollment_token(int status, const federation::FederationWithToken& created) {
  nlohmann::json j = federation::federation_to_json(created.federation);
  j["enrollment_token"] = created.enrollment_token;
  HttpResponse r = json_response(status, j);
  r.headers.emplace_back("Cache-Control", "no-store");  // the reply holds a secret
  return r;
}

HttpResponse no_content() {
  HttpResponse r;
  r.status = 204;
  return r;
}

void add_federation_admin_routes(Router& router, federation::FederationRegistry& federations,
                                 federation::ClientRegistry& clients) {
  router.add("POST", "/v1/federations", Access::kAnyone, [&federations](const RequestContext& ctx) {
    auto body = tenants::parse_json_object(ctx.request.body);
    if (!body.ok()) return problem_from_status(body.status());
    auto created = federations.create(ctx.principal, *body);
    if (!created.ok()) return problem_from_status(created.status());
    HttpResponse r = with_enrollment_token(201, *created);
    r.headers.emplace_back("Location", "/v1/federations/" + created->federation.id);
    return r;
  });

  router.add("GET", "/v1/federations", Access::kAnyone, [&federations](const RequestContext& ctx) {
    auto list = federations.list(ctx.principal);
    if (!list.ok()) return problem_from_status(list.status());
    nlohmann::json items = nlohmann::json::array();
    for (const auto& f : *list) items.push_back(view_of(ctx.principal, f));
    return json_response(200, {{"items", items}});
  }, Cost::kQuick);

  router.add("GET", "/v1/federations/{id}", Access::kAnyone, [&federations](const RequestContext& ctx) {
    auto f = federations.get(ctx.principal, ctx.param("id"));
    return f.ok() ? json_response(200, view_of(ctx.principal, *f)) : problem_from_status(f.status());
  }, Cost::kQuick);

  router.add("PATCH", "/v1/federations/{id}", Access::kAnyone, [&federations](const RequestContext& ctx) {
    auto body = tenants::parse_json_object(ctx.request.body);
    if (!body.ok()) return problem_from_status(body.status());
    auto f = federations.update(ctx.principal, ctx.param("id"), *body);
    return f.ok() ? json_response(200, federation::federation_to_json(*f)) : problem_from_status(f.status());
  });

  router.add("DELETE", "/v1/federations/{id}", Access::kAnyone, [&federations](const RequestContext& ctx) {
    Status s = federations.remove(ctx.principal, ctx.param("id"));
    return s.is_ok() ? no_content() : problem_from_status(s);
  });

  router.add("POST", "/v1/federations/{id}/enrollment-token", Access::kAnyone,
             [&federations](const RequestContext& ctx) {
               auto body = optional_body(ctx.request);
               if (!body.ok()) return problem_from_status(body.status());
               auto rotated = federations.rotate_enrollment_token(ctx.principal, ctx.param("id"), *body);
               return rotated.ok() ? with_enrollment_token(200, *rotated) : problem_from_status(rotated.status());
             });

  router.add("GET", "/v1/federations/{id}/clients", Access::kAnyone,
             [&federations, &clients](const RequestContext& ctx) {
               auto f = federations.get_owned(ctx.principal, ctx.param("id"));
               if (!f.ok()) return problem_from_status(f.status());
               auto query = parse_client_query(ctx.request, f->id);
               if (!query.ok()) return problem_from_status(query.status());
               auto page = clients.list(*query);
               if (!page.ok()) return problem_from_status(page.status());
               nlohmann::json items = nlohmann::json::array();
               for (const auto& c : page->items) items.push_back(federation::client_to_json(c, clients));
               nlohmann::json next =
                   page->next_after_seq ? nlohmann::json(std::to_string(*page->next_after_seq)) : nlohmann::json();
               return json_response(200, {{"items", items}, {"next_cursor", next}});
             }, Cost::kQuick);

  router.add("DELETE", "/v1/federations/{id}/clients/{client_id}", Access::kAnyone,
             [&federations, &clients](const RequestContext& ctx) {
               auto f = federations.get_owned(ctx.principal, ctx.param("id"));
               if (!f.ok()) return problem_from_status(f.status());
               auto c = clients.revoke(f->id, ctx.param("client_id"));
               return c.ok() ? json_response(200, federation::client_to_json(*c, clients))
                             : problem_from_status(c.status());
             });
}

void add_client_routes(Router& router, federation::FederationRegistry& federations,
                       federation::ClientRegistry& clients, federation::WorkBoard& work) {
  // Public: the enrollment token is the credential, checked here rather than by the router.
  router.add("POST", "/v1/clients", Access::kPublic, [&clients](const RequestContext& ctx) {
    auto body = tenants::parse_json_object(ctx.request.body);
    auto enrolled = body.ok() ? clients.enroll(bearer_token(ctx.request), *body)
                              : Result<federation::EnrolledClient>(body.status());
    if (!enrolled.ok()) {
      HttpResponse r = problem_from_status(enrolled.status());
      if (r.status == 401) r.headers.emplace_back("WWW-Authenticate", "Bearer realm=\"mufl\", error=\"invalid_token\"");
      return r;
    }
    nlohmann::json j = federation::client_to_json(enrolled->client, clients);
    j["federation"] = federation::federation_summary_json(enrolled->federation);
    j["token"] = enrolled->token;
    HttpResponse r = json_response(201, j);
    r.headers.emplace_back("Cache-Control", "no-store");
    return r;
  });

  // Who the client token belongs to: mufl-client checks its stored token with this at start.
  router.add("GET", "/v1/clients/me", Access::kClient, [&federations](const RequestContext& ctx) {
    auto f = federations.get(Principal::admin(), ctx.principal.federation_id);
    if (!f.ok()) return problem_from_status(f.status());
    nlohmann::json j = {{"id", ctx.principal.client_id},
                        {"federation", federation::federation_summary_json(*f)}};
    return json_response(200, j);
  }, Cost::kQuick);

  // The long poll for work, and the client's heartbeat (authenticating it marks it seen).
  router.add("GET", "/v1/clients/me/work", Access::kClient, [&work](const RequestContext& ctx) {
    // 200 with the client's oldest open lease, when there is one or one is offered before the
    // wait ends; 204 otherwise (also when mufld shuts down meanwhile).
    auto wait = parse_poll_wait(ctx.request);
    if (!wait.ok()) return problem_from_status(wait.status());
    HttpResponse r;
    r.deferred = std::make_shared<BoardPoll>(work, ctx.principal.client_id, *wait, &BoardPoll::item_or_no_content);
    return r;
  }, Cost::kQuick);
}

// A lease's weights and its update (docs/clients.md, "Lease").
void add_work_routes(Router& router, federation::LeaseDesk& leases) {
  router.add("GET", "/v1/work/{id}/weights", Access::kClient, [&leases](const RequestContext& ctx) {
    auto w = leases.weights(ctx.principal.client_id, ctx.param("id"));
    if (!w.ok()) return problem_from_status(w.status());
    HttpResponse r;
    r.content_type = "application/octet-stream";
    r.headers.emplace_back("X-Content-SHA256", w->sha256);
    r.headers.emplace_back("Cache-Control", "no-store");
    r.shared_body = std::move(w->bytes);
    return r;
  }, Cost::kQuick);  // a lease read and the draw's weights from memory: never queued behind updates' fsyncs

  router.add("PUT", "/v1/work/{id}/update", Access::kClient, [&leases](const RequestContext& ctx) {
    auto lease = leases.accept_update(ctx.principal.client_id, ctx.param("id"), ctx.request.body);
    if (!lease.ok()) {
      // Too large for the model: 413, like a body over the server's own limit.
      if (lease.status().code() == Status::Code::kResourceExhausted)
        return problem(413, "about:blank", lease.status().message());
      return problem_from_status(lease.status());
    }
    return json_response(200, {{"id", lease->id}, {"state", storage::lease_state_name(lease->state)}});
  });
}

}  // namespace

std::optional<size_t> work_body_limit(const federation::LeaseDesk& leases, std::string_view method,
                                      std::string_view target) {
  constexpr std::string_view kPrefix = "/v1/work/", kSuffix = "/update";
  if (method != "PUT") return std::nullopt;
  target = target.substr(0, target.find('?'));
  if (target.size() <= kPrefix.size() + kSuffix.size() || target.substr(0, kPrefix.size()) != kPrefix ||
      target.substr(target.size() - kSuffix.size()) != kSuffix)
    return std::nullopt;
  const auto id = target.substr(kPrefix.size(), target.size() - kPrefix.size() - kSuffix.size());
  if (id.find('/') != std::string_view::npos) return std::nullopt;
  return leases.update_body_limit(id);
}

void add_federation_routes(Router& router, federation::FederationRegistry& federations,
                           federation::ClientRegistry& clients, federation::WorkBoard& work,
                           federation::LeaseDesk& leases) {
  add_federation_admin_routes(router, federations, clients);
  add_client_routes(router, federations, clients, work);
  add_work_routes(router, leases);
}

}  // namespace mufl::service
