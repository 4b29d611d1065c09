#include "service/event_hub.h"

#include <algorithm>

#include "service/sse.h"

namespace mufl::service {

bool EventFilter::matches(const std::optional<std::string>& event_tenant, const std::string& event_activity,
                          const std::string& type) const {
  // An event without a tenant (a device's) is everyone's.
  if (tenant_id && event_tenant && *event_tenant != *tenant_id) return false;
  if (activity_id && event_activity != *activity_id) return false;
  return types.empty() || std::find(types.begin(), types.end(), type) != types.end();
}

Subscription::Batch Subscription::take() {
  std::lock_guard lock(mu_);
  Batch b;
  b.closed = closed_;
  b.overflowed = overflowed_;
  if (closed_ || overflowed_ || queue_.empty()) return b;
  b.events.assign(std::make_move_iterator(queue_.begin()), std::make_move_iterator(queue_.end()));
  queue_.clear();
  wake_ = nullptr;
  return b;
}

Subscription::Batch Subscription::take_or_notify(std::function<void()> wake) {
  std::lock_guard lock(mu_);
  Batch b;
  b.closed = closed_;
  b.overflowed = overflowed_;
  if (closed_ || overflowed_) return b;
  if (!queue_.empty()) {
    b.events.assign(std::make_move_iterator(queue_.begin()), std::make_move_iterator(queue_.end()));
    queue_.clear();
    wake_ = nullptr;
    return b;
  }
  wake_ = std::move(wake);
  return b;
}

void Subscription::close() {
  std::function<void()> wake;
  {
    std::lock_guard lock(mu_);
    if (closed_) return;
    closed_ = true;
    queue_.clear();
    wake = std::move(wake_);
    wake_ = nullptr;
  }
  if (wake) wake();
}

void Subscription::offer(const std::vector<HubEventPtr>& events) {
  std::function<void()> wake;
  {
    std::lock_guard lock(mu_);
    if (closed_ || overflowed_) return;
    bool added = false;
    for (const HubEventPtr& e : events) {
      if (!filter_.matches(e->tenant_id, e->activity_id, e->type)) continue;
      added = true;
      if (queue_.size() >= max_queued_) {  // the client reads too slowly: bounded memory, it resumes later
        overflowed_ = true;
        queue_.clear();
        break;
      }
      queue_.push_back(e);
    }
    if (added) {
      wake = std::move(wake_);
      wake_ = nullptr;
    }
  }
  if (wake) wake();
}

bool Subscription::is_closed() const {
  std::lock_guard lock(mu_);
  return closed_ || overflowed_;
}

EventHub::EventHub(EventHubOptions options) : options_(options) {}

void EventHub::start(int64_t last_id) {
  std::lock_guard lock(mu_);
  started_ = true;
  start_id_ = last_id;
  last_id_ = std::max(last_id_, last_id);
}

void EventHub::publish(const std::vector<storage::StoredEvent>& events) {
  std::vector<HubEventPtr> batch;
  batch.reserve(events.size());
  for (const auto& e : events)  // formatted once, outside the locks, for every subscriber
    batch.push_back(std::make_shared<const HubEvent>(HubEvent{e.id, e.tenant_id, e.activity_id, e.type,
                                                              format_sse_event(e)}));
  std::lock_guard serial(publish_mu_);
  std::vector<std::shared_ptr<Subscription>> live;
  {
    std::lock_guard lock(mu_);
    // Ids only go up; anything else was published already.
    batch.erase(std::remove_if(batch.begin(), batch.end(), [&](const HubEventPtr& e) { return e->id <= last_id_; }),
                batch.end());
    if (batch.empty()) return;
    for (const HubEventPtr& e : batch) ring_.push_back(e);
    last_id_ = batch.back()->id;
    while (ring_.size() > options_.ring_capacity) {
      evicted_ = ring_.front()->id;
      ring_.pop_front();
    }
    // Taken with the ring's update: a subscriber made after this gets these events by replay.
    // Ended subscriptions are forgotten here too, so the list does not grow between subscribes.
    live.reserve(subscriptions_.size());
    subscriptions_.erase(std::remove_if(subscriptions_.begin(), subscriptions_.end(),
                                        [&](const std::weak_ptr<Subscription>& weak) {
                                          auto s = weak.lock();
                                          if (!s || s->is_closed()) return true;
                                          live.push_back(std::move(s));
                                          return false;
                                        }),
                         subscriptions_.end());
  }
  for (const auto& s : live) s->offer(batch);
}

std::shared_ptr<Subscription> EventHub::subscribe(EventFilter filter) { return try_subscribe(std::move(filter), 0); }

std::shared_ptr<Subscription> EventHub::try_subscribe(EventFilter filter, size_t max_per_tenant) {
  std::lock_guard lock(mu_);
  subscriptions_.erase(std::remove_if(subscriptions_.begin(), subscriptions_.end(),
                                      [](const std::weak_ptr<Subscription>& w) {
                                        auto s = w.lock();
                                        return !s || s->is_closed();
                                      }),
                       subscriptions_.end());
  if (max_per_tenant > 0 && filter.tenant_id) {
    size_t held = 0;
    for (const auto& weak : subscriptions_)
      if (auto s = weak.lock(); s && s->filter().tenant_id == filter.tenant_id) ++held;
    if (held >= max_per_tenant) return nullptr;
  }
  auto s = std::make_shared<Subscription>(std::move(filter), last_id_, options_.max_queued);
  subscriptions_.push_back(s);
  return s;
}

std::optional<EventHub::Replay> EventHub::replay(int64_t after, int64_t until, const EventFilter& filter,
                                                 size_t limit) const {
  std::lock_guard lock(mu_);
  // (after, start_id_] was never in the ring; (after, evicted_] has left it.
  if (!started_ || after < std::max(start_id_, evicted_)) return std::nullopt;
  Replay r;
  r.scanned_to = until;
  auto it = std::upper_bound(ring_.begin(), ring_.end(), after,
                             [](int64_t id, const HubEventPtr& e) { return id < e->id; });
  for (; it != ring_.end() && (*it)->id <= until; ++it) {
    if (!filter.matches((*it)->tenant_id, (*it)->activity_id, (*it)->type)) continue;
    if (r.events.size() == limit) {
      r.scanned_to = r.events.back()->id;
      break;
    }
    r.events.push_back(*it);
  }
  return r;
}

size_t EventHub::subscribers() const {
  std::lock_guard lock(mu_);
  size_t n = 0;
  for (const auto& weak : subscriptions_)
    if (auto s = weak.lock(); s && !s->is_closed()) ++n;
  return n;
}

int64_t EventHub::last_id() const {
  std::lock_guard lock(mu_);
  return last_id_;
}

}  // namespace mufl::service
