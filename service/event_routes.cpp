// GET /v1/events: the caller's live event stream (docs/events.md). The handler checks the
// request and the activity filter, then hands an EventStream to the HTTP server, which writes
// it from its I/O threads.
#include "service/event_stream.h"
#include "service/problem.h"
#include "service/routes.h"
#include "service/sse.h"

namespace mufl::service {

void add_event_routes(Router& router, storage::Store& store, EventHub& hub, EventStreamOptions options) {
  router.add("GET", "/v1/events", Access::kAnyone, [&store, &hub, options](const RequestContext& ctx) {
    auto req = parse_event_request(ctx.request);
    if (!req.ok()) return problem_from_status(req.status());
    const storage::Scope scope =
        ctx.principal.is_admin() ? storage::Scope::all() : storage::Scope::of(ctx.principal.tenant_id);
    EventFilter filter;
    filter.tenant_id = scope.tenant_id;
    filter.activity_id = req->activity_id;
    filter.types = req->types;
    if (filter.activity_id) {
      // Unknown, or another tenant's: 404, as GET /v1/activities/{id} answers.
      if (auto a = store.get_activity(*filter.activity_id, scope); !a.ok()) return problem_from_status(a.status());
    }
    auto sub = hub.try_subscribe(std::move(filter), options.max_per_tenant);
    if (!sub) {
      HttpResponse busy = problem(429, "/problems/quota-exceeded",
                                  "this tenant already has " + std::to_string(options.max_per_tenant) +
                                      " open event streams, the most one tenant may hold; close one first");
      busy.headers.emplace_back("Retry-After", "5");
      return busy;
    }
    HttpResponse r;
    r.content_type = "text/event-stream";
    r.headers = {{"Cache-Control", "no-store"}, {"X-Accel-Buffering", "no"}};  // the latter: nginx, do not buffer
    r.stream = std::make_shared<EventStream>(store, hub, std::move(sub), req->after, options);
    return r;
  });
}

}  // namespace mufl::service
