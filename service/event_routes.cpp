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
    HttpResponse r;
    r.content_type = "text/event-stream";
    r.headers = {{"Cache-Control", "no-store"}, {"X-Accel-Buffering", "no"}};  // the latter: nginx, do not buffer
    r.stream = std::make_shared<EventStream>(store, hub, std::move(filter), req->after, options);
    return r;
  });
}

}  // namespace mufl::service
