#include "federation/federation_pool.h"

#include <algorithm>
#include <chrono>
#include <thread>

namespace mufl::federation {

Result<std::vector<Client>> FederationPool::all_clients() const {
  std::vector<Client> out;
  storage::ClientQuery q;
  q.federation_id = federation_id_;
  q.limit = 1000;
  for (;;) {
    auto page = store_.list_clients(q);
    if (!page.ok()) return page.status();
    out.insert(out.end(), page->items.begin(), page->items.end());
    if (!page->next_after_seq) return out;
    q.after_seq = *page->next_after_seq;
  }
}

Result<std::vector<int64_t>> FederationPool::candidates(size_t wanted, int64_t wait_ms,
                                                        const std::function<bool()>& should_stop) {
  const int64_t until = clock_.now_unix_ms() + wait_ms;
  for (;;) {
    auto online = online_now();
    if (!online.ok() || online->size() >= wanted || clock_.now_unix_ms() >= until || (should_stop && should_stop()))
      return online;
    // Clients come back by polling, not by telling us: look again shortly.
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
  }
}

Result<std::vector<int64_t>> FederationPool::online_now() {
  auto all = all_clients();
  if (!all.ok()) return all.status();
  std::vector<int64_t> online;
  for (size_t i = 0; i < all->size(); ++i)
    if (clients_.state((*all)[i]) == ClientState::kOnline) online.push_back(static_cast<int64_t>(i));
  return online;
}

Result<int64_t> FederationPool::largest_train_samples() {
  auto all = all_clients();
  if (!all.ok()) return all.status();
  int64_t largest = 0;
  for (const Client& c : *all)
    if (!c.revoked_unix_ms) largest = std::max(largest, c.train_samples);
  return largest;
}

Result<std::vector<fl::RemoteUpdate>> FederationPool::run(const fl::RemoteDraw& draw,
                                                          const std::function<bool()>& should_stop, bool& stopped) {
  stopped = false;
  auto all = all_clients();
  if (!all.ok()) return all.status();
  DrawRequest req;
  // A clustered round's other clusters are draws of their own: "<group>-c<part>".
  req.group_id = draw.part == 0 ? draw.job : draw.job + "-c" + std::to_string(draw.part);
  req.round = draw.round;
  req.attempt = draw.attempt;
  req.global_weights = draw.global_weights;
  req.tensors = draw.tensors;
  req.deadline_unix_ms = clock_.now_unix_ms() + draw.timeout_ms;
  for (const auto& task : draw.tasks) {
    // A client revoked since it was chosen is a dropout: it could not report anyway.
    if (task.client < 0 || task.client >= static_cast<int64_t>(all->size())) continue;
    const Client& c = (*all)[static_cast<size_t>(task.client)];
    if (c.revoked_unix_ms) continue;
    req.slots.push_back({c.id, task.client, task.assignment});
  }
  auto opened = leases_.open_draw(req);
  if (!opened.ok()) return opened.status();
  auto done = leases_.wait_draw(req.group_id, draw.round, draw.attempt, opened->deadline_unix_ms, should_stop, stopped);
  if (!done.ok()) return done.status();
  std::vector<fl::RemoteUpdate> out;
  if (stopped) return out;
  for (const auto& slot : req.slots) {
    const auto lease = std::find_if(done->begin(), done->end(), [&](const storage::Lease& l) {
      return l.client_id == slot.client_id && l.state == storage::LeaseState::kReported;
    });
    if (lease == done->end()) continue;  // did not report in time: a dropout
    // Read when the round decodes it: one update in memory at a time.
    out.push_back({slot.client_index, {}, [this, l = *lease] { return leases_.read_update(l); }});
  }
  return out;
}

}  // namespace mufl::federation
