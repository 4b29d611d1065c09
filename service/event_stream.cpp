#include "service/event_stream.h"

#include <spdlog/spdlog.h>

#include "service/sse.h"

namespace mufl::service {

EventStream::EventStream(storage::EventStore& store, EventHub& hub, EventFilter filter, std::optional<int64_t> after,
                         EventStreamOptions options)
    : EventStream(store, hub, hub.subscribe(std::move(filter)), after, options) {}

EventStream::EventStream(storage::EventStore& store, EventHub& hub, std::shared_ptr<Subscription> sub,
                         std::optional<int64_t> after, EventStreamOptions options)
    : store_(store), hub_(hub), options_(options), sub_(std::move(sub)) {
  // Live only: the replay range (head, head] is empty.
  cursor_ = after ? std::min(*after, sub_->head()) : sub_->head();
}

EventStream::~EventStream() { sub_->close(); }

void EventStream::cancel() {
  cancelled_ = true;
  sub_->close();  // a waiting deliver_live wakes and ends the stream
}

Result<std::string> EventStream::replay_page() {
  const int64_t head = sub_->head();
  const auto& filter = sub_->filter();
  const size_t limit = static_cast<size_t>(std::max(1, options_.page_size));
  std::string out;
  if (auto r = hub_.replay(cursor_.load(), head, filter, limit)) {
    for (const auto& e : r->events) out += e->sse;
    cursor_ = r->scanned_to;
    return out;
  }
  storage::EventQuery q;
  q.scope = filter.tenant_id ? storage::Scope::of(*filter.tenant_id) : storage::Scope::all();
  q.after_id = cursor_;
  q.until_id = head;
  q.activity_id = filter.activity_id;
  q.types = filter.types;
  q.limit = static_cast<int>(limit);
  auto rows = store_.list_events(q);
  if (!rows.ok()) return rows.status();
  for (const auto& e : *rows) out += format_sse_event(e);
  cursor_ = rows->size() < limit ? head : rows->back().id;
  return out;
}

void EventStream::next(std::function<void(StreamChunk)> ready) {
  while (!cancelled_ && cursor_ < sub_->head()) {
    auto page = replay_page();
    if (!page.ok()) {
      spdlog::error("event stream: cannot read stored events: {}", page.status().to_string());
      return ready({": cannot read the stored events; reconnect with Last-Event-ID\n\n", true});
    }
    if (!page->empty()) return ready({std::move(*page), false});
  }
  if (cancelled_) return ready({std::string(kShutdownComment), true});
  deliver_live(std::move(ready));
}

void EventStream::deliver_live(std::function<void(StreamChunk)> ready) {
  // Runs again from the publishing thread when nothing is queued yet (the subscription keeps
  // the wake only until it calls it, so the reference cycle it makes is short-lived).
  // Most calls find events (a wake that just fired, a client catching up): build no wake then.
  auto batch = sub_->take();
  if (!batch.closed && !batch.overflowed && batch.events.empty())
    batch = sub_->take_or_notify([self = shared_from_this(), ready] { self->deliver_live(ready); });
  if (batch.closed) return ready({std::string(kShutdownComment), true});
  if (batch.overflowed) return ready({std::string(kDroppedComment), true});
  if (batch.events.empty()) return;  // the wake is kept
  std::string out;
  size_t bytes = 0;
  for (const auto& e : batch.events) bytes += e->sse.size();
  out.reserve(bytes);
  for (const auto& e : batch.events) out += e->sse;
  ready({std::move(out), false});
}

}  // namespace mufl::service
