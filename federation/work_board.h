#pragma once
// WorkBoard: the open work leases of federation clients, in memory, and the clients waiting
// for one (the long poll of GET /v1/clients/me/work). Whoever creates a lease commits it to the
// store first and then offers it here; a waiting client gets it at once. A lease stays offered
// until it is withdrawn (reported, expired, or its round ended), so a client that asks again
// (it restarted, or its reply was lost) gets the same lease again: handing out work is
// idempotent. A client with several open leases (several groups on one federation) gets the
// oldest first.
//
// No thread waits per client: a waiter is a callback, completed by offer(), by its deadline
// (one timer thread for all of them), by cancel() or by shutdown().
//
// Thread safety: every method may be called from any thread. Callbacks run outside the
// board's lock, on the calling thread (offer, cancel, shutdown, or wait when work is there)
// or on the timer thread (a deadline).
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

namespace mufl::federation {

class WorkBoard {
 public:
  // The lease's JSON (the assignment), or nullopt: none before the deadline, or shutdown.
  using Callback = std::function<void(std::optional<std::string>)>;
  using WaiterId = uint64_t;

  WorkBoard();
  ~WorkBoard();  // shutdown()
  WorkBoard(const WorkBoard&) = delete;
  WorkBoard& operator=(const WorkBoard&) = delete;

  // Offers lease `lease_id` (its assignment JSON) to `client_id`, waking the client if it
  // waits. Offering an id again replaces its JSON.
  void offer(const std::string& client_id, const std::string& lease_id, std::string assignment_json);
  // offer() of each, under one lock, the waiters woken after: a round's draw at once.
  struct Offer {
    std::string client_id, lease_id, assignment_json;
  };
  void offer_all(std::vector<Offer> offers);
  // Takes the lease off the board (reported, expired, abandoned); unknown ids are ignored.
  void withdraw(const std::string& lease_id);
  // The oldest lease offered to the client and not withdrawn, now.
  std::optional<std::string> peek(const std::string& client_id) const;

  // Calls `done` with the client's oldest open lease: at once when there is one (or `wait` is
  // zero, or the board shut down), else when one is offered, or with nullopt after `wait`.
  // Returns an id for cancel() (0 when `done` already ran).
  WaiterId wait(const std::string& client_id, std::chrono::milliseconds wait, Callback done);
  // Completes a waiter now with nullopt; a finished or unknown waiter is ignored.
  void cancel(WaiterId id);
  // Completes every waiter with nullopt, and every later wait() at once.
  void shutdown();

  size_t waiting() const;      // clients waiting now
  size_t open_leases() const;  // leases on the board

 private:
  using TimePoint = std::chrono::steady_clock::time_point;
  struct Lease {
    uint64_t order;  // offer order: oldest first
    std::string client_id, assignment_json;
  };
  struct Waiter {
    std::string client_id;
    TimePoint deadline;
    Callback done;
  };
  std::optional<std::string> oldest_locked(const std::string& client_id) const;
  // Removes waiter `it` from every index; returns its callback.
  Callback take_locked(std::map<WaiterId, Waiter>::iterator it);
  void run_timer();

  // Every lookup is by key, so that a round offering a thousand leases to a thousand waiting
  // clients costs a thousand lookups, not a million comparisons.
  mutable std::mutex mu_;
  std::condition_variable timer_cv_;
  std::map<std::string, Lease> leases_;                              // lease id → lease
  std::map<std::string, std::map<uint64_t, std::string>> by_client_;  // client → order → lease id
  std::map<WaiterId, Waiter> waiters_;
  std::multimap<std::string, WaiterId> waiting_;  // client → its waiters
  std::multimap<TimePoint, WaiterId> deadlines_;  // the timer's queue
  uint64_t next_order_ = 1;
  WaiterId next_waiter_ = 1;
  bool stopped_ = false;
  std::thread timer_;  // last: started after the members it uses
};

}  // namespace mufl::federation
