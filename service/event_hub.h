#pragma once
// EventHub: hands committed events (storage/store.h, StoredEvent) to the open event streams
// without touching SQLite. The Store's event listener calls publish() after each commit; each
// event is formatted as SSE text once and shared by every subscriber whose filter selects it.
//
// It keeps a ring of the most recent events so that a stream resuming from a recent id replays
// from memory (replay()); older ones come from Store::list_events. A Subscription queues what
// is published after it was made, so a stream that replays (after, head] and then reads its
// subscription misses nothing and repeats nothing (docs/events.md, "How it works").
//
// Thread safety: every method may be called from any thread. publish() calls must not overlap
// (the Store calls it under its writer lock); the hub serialises them anyway.
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "storage/store.h"

namespace mufl::service {

// Which events a subscriber sees (docs/events.md, "Who sees what" and "Filters").
struct EventFilter {
  std::optional<std::string> tenant_id;    // nullopt: every tenant's (the admin); else its own and device events
  std::optional<std::string> activity_id;  // only this activity's events
  std::vector<std::string> types;          // only these types; empty: every type

  bool matches(const std::optional<std::string>& event_tenant, const std::string& activity_id,
               const std::string& type) const;
};

// An event as the hub keeps it: what filtering needs, and its SSE text.
struct HubEvent {
  int64_t id = 0;
  std::optional<std::string> tenant_id;
  std::string activity_id;
  std::string type;
  std::string sse;  // format_sse_event()
};
using HubEventPtr = std::shared_ptr<const HubEvent>;

// The live part of one stream: the events published after it was made that its filter selects,
// queued until the stream takes them. Made by EventHub::subscribe.
class Subscription {
 public:
  struct Batch {
    std::vector<HubEventPtr> events;  // oldest first
    bool overflowed = false;          // more than max_queued waited: the queue was dropped
    bool closed = false;              // close() was called
  };

  Subscription(EventFilter filter, int64_t head, size_t max_queued)
      : filter_(std::move(filter)), head_(head), max_queued_(max_queued) {}

  // The newest event id when it was made: it queues only larger ids.
  int64_t head() const { return head_; }
  const EventFilter& filter() const { return filter_; }

  // The queued events, or overflowed/closed (an empty batch when there is none of that).
  Batch take();
  // As take(), but when there is nothing to take, `wake` is kept and called once, from the
  // publishing thread, as soon as there is (it must not block); the batch is then empty. A later
  // call replaces a kept `wake`.
  Batch take_or_notify(std::function<void()> wake);

  // Stops queueing and calls a kept `wake`. Idempotent.
  void close();

  // Called by the hub: queues what the filter selects; calls a kept `wake` if anything came.
  void offer(const std::vector<HubEventPtr>& events);
  bool is_closed() const;

 private:
  const EventFilter filter_;
  const int64_t head_;
  const size_t max_queued_;
  mutable std::mutex mu_;
  std::deque<HubEventPtr> queue_;
  bool overflowed_ = false;
  bool closed_ = false;
  std::function<void()> wake_;
};

struct EventHubOptions {
  size_t ring_capacity = 4096;  // recent events kept in memory for replays. Default 4,096.
  size_t max_queued = 10000;    // events one subscription may hold before it is dropped. Default 10,000.
};

class EventHub {
 public:
  // Install publish() as the Store's listener first, then call start() with the id the Store
  // returned: events published in between are kept, and none is missed.
  explicit EventHub(EventHubOptions options = {});
  // `last_id`: the newest event committed before the listener was installed. Every event after
  // it reaches publish(). REQUIRES: called once, before the first subscribe().
  void start(int64_t last_id);
  EventHub(const EventHub&) = delete;
  EventHub& operator=(const EventHub&) = delete;

  // The Store's listener: `events` were committed, in id order, each newer than the last.
  void publish(const std::vector<storage::StoredEvent>& events);

  // A subscription that gets every event published from now on that `filter` selects. Its head()
  // is the newest id published before it.
  std::shared_ptr<Subscription> subscribe(EventFilter filter);
  // As subscribe(), unless `filter` is a tenant's and that tenant already holds `max_per_tenant`
  // open subscriptions: then nullptr and nothing changes. 0: no limit. The count and the new
  // subscription are one step, so concurrent callers cannot pass the limit together.
  std::shared_ptr<Subscription> try_subscribe(EventFilter filter, size_t max_per_tenant);

  struct Replay {
    std::vector<HubEventPtr> events;  // in (after, until] that match, oldest first, at most `limit`
    int64_t scanned_to = 0;           // the range is done up to this id (`until` when it is all done)
  };
  // From the ring: the events in (after, until] that `filter` selects. nullopt when the ring no
  // longer holds every event of that range (the caller reads the Store instead).
  std::optional<Replay> replay(int64_t after, int64_t until, const EventFilter& filter, size_t limit) const;

  // Open subscriptions (for metrics and tests).
  size_t subscribers() const;
  int64_t last_id() const;

 private:
  const EventHubOptions options_;
  std::mutex publish_mu_;  // publish() calls one at a time, so queues stay in id order
  mutable std::mutex mu_;
  std::deque<HubEventPtr> ring_;
  bool started_ = false;
  int64_t start_id_ = 0;  // start()'s last_id: the ring holds every event after it…
  int64_t evicted_ = 0;   // …and after the newest event it dropped
  int64_t last_id_ = 0;   // the newest event published, or start_id_
  std::vector<std::weak_ptr<Subscription>> subscriptions_;
};

}  // namespace mufl::service
