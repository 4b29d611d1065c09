#pragma once
// EventStream: the body of one GET /v1/events response (docs/events.md). It subscribes to the
// EventHub when it is made, and notes the newest id N at that moment. With a resume point it
// first replays (after, N]: from the hub's ring when the ring still holds all of that range,
// else from the Store, one page per chunk. Then it writes what its subscription queued: exactly
// the ids above N. No event is missed or repeated at that hand-over.
//
// Thread safety: as ResponseStream. next() blocks only while it reads a page from the Store.
#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>

#include "service/event_hub.h"
#include "service/response_stream.h"
#include "service/sse.h"
#include "storage/store.h"

namespace mufl::service {

struct EventStreamOptions {
  std::chrono::milliseconds keepalive{15'000};  // ": keep-alive" after this much silence. Default 15 s.
  int page_size = 500;                          // events per replay chunk. Default 500.
  // Open streams one tenant may hold; one more gets 429 (the admin has no limit). 0: no limit.
  // Default 16: every commit visits every stream, so one tenant must not open thousands.
  size_t max_per_tenant = 16;
};

// The comments a stream ends with (docs/events.md).
inline constexpr std::string_view kShutdownComment = ": mufld is shutting down\n\n";
inline constexpr std::string_view kDroppedComment =
    ": dropped: the client reads too slowly; reconnect with Last-Event-ID\n\n";

class EventStream final : public ResponseStream, public std::enable_shared_from_this<EventStream> {
 public:
  // Subscribes to `hub` now. `after`: replay the stored events after this id first; nullopt:
  // live only. `filter` holds the caller's scope and filters, already checked. `store` and
  // `hub` must outlive the stream. Make it with std::make_shared.
  EventStream(storage::EventStore& store, EventHub& hub, EventFilter filter, std::optional<int64_t> after,
              EventStreamOptions options = {});
  // As above, over a subscription the caller took from `hub` (EventHub::try_subscribe).
  EventStream(storage::EventStore& store, EventHub& hub, std::shared_ptr<Subscription> sub, std::optional<int64_t> after,
              EventStreamOptions options = {});
  ~EventStream() override;

  // A replay page, or the queued live events; when none are queued, `ready` runs as soon as one
  // is published. Ends (last) after cancel(), when the subscription overflowed, or when the
  // Store cannot be read.
  void next(std::function<void(StreamChunk)> ready) override;
  void cancel() override;
  // Only a replay page reads the Store; live events come from memory.
  bool next_may_block() const override { return cursor_ < sub_->head(); }
  std::string heartbeat() const override { return std::string(kKeepAliveComment); }
  std::chrono::milliseconds heartbeat_interval() const override { return options_.keepalive; }

 private:
  // The next replay page as SSE text ("" when the page held nothing for this caller); moves
  // cursor_ on. Blocks on the Store when the ring does not cover the range.
  Result<std::string> replay_page();
  void deliver_live(std::function<void(StreamChunk)> ready);

  storage::EventStore& store_;
  EventHub& hub_;
  const EventStreamOptions options_;
  const std::shared_ptr<Subscription> sub_;
  std::atomic<int64_t> cursor_;  // replayed up to here; only next() moves it, never two at once
  std::atomic<bool> cancelled_{false};
};

}  // namespace mufl::service
