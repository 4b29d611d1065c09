#include "storage/writer_queue.h"

#include <catch2/catch.hpp>

#include <algorithm>
#include <atomic>
#include <mutex>
#include <set>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "core/clock.h"
#include "storage/sqlite_store.h"
#include "tests/storage/store_fixtures.h"
#include "tests/support/temp_dir.h"

using namespace mufl;
using namespace mufl::storage;

namespace {

// Waits (yielding) until `q` holds `n` writers: the others have lined up behind the leader.
void await_pending(const WriterQueue& q, size_t n) {
  while (q.pending() < n) std::this_thread::yield();
}

}  // namespace

TEST_CASE("writer queue: writers that queue behind a running batch run together in the next one") {
  WriterQueue q(64);
  std::mutex mu;
  std::vector<size_t> sizes;
  std::atomic<int> bodies{0};
  bool first = true;
  const WriterQueue::RunBatch run = [&](const std::vector<WriterQueue::Writer*>& batch) {
    bool hold = false;
    {
      std::lock_guard lock(mu);
      sizes.push_back(batch.size());
      hold = std::exchange(first, false);
    }
    if (hold) await_pending(q, 4);  // the leader's batch is running while three more arrive
    for (auto* w : batch) w->status = WriterQueue::run_body(*w);
    return batch.size();
  };
  std::vector<std::thread> threads;
  std::vector<Status> outcomes(4);
  WriterQueue::Writer leader;
  leader.body = [&] { return ++bodies, Status::ok(); };
  threads.emplace_back([&] { q.submit(leader, run); });
  await_pending(q, 1);
  for (int i = 1; i < 4; ++i)
    threads.emplace_back([&, i] {
      WriterQueue::Writer w;
      w.body = [&, i] { return ++bodies, i == 2 ? Status::invalid_argument("two") : Status::ok(); };
      q.submit(w, run);
      outcomes[static_cast<size_t>(i)] = w.status;
    });
  for (auto& t : threads) t.join();
  CHECK(sizes == std::vector<size_t>{1, 3});
  CHECK(bodies == 4);
  CHECK(q.batches() == 2);
  CHECK(q.writes() == 4);
  CHECK(q.pending() == 0);
  CHECK(leader.status.is_ok());
  CHECK(outcomes[1].is_ok());
  CHECK(outcomes[2].is_invalid_argument());  // each writer gets its own outcome
  CHECK(outcomes[3].is_ok());
}

TEST_CASE("writer queue: writers a batch did not finish stay queued and are run once by a later leader") {
  WriterQueue q(64);
  std::atomic<int> batches_seen{0};
  std::vector<int> runs(5, 0);
  bool first = true;
  // Every batch finishes only its leader (as when a transaction is lost after the first body).
  const WriterQueue::RunBatch run = [&](const std::vector<WriterQueue::Writer*>& batch) {
    if (std::exchange(first, false)) await_pending(q, 5);
    ++batches_seen;
    batch[0]->status = WriterQueue::run_body(*batch[0]);
    return size_t{1};
  };
  std::vector<std::thread> threads;
  std::vector<WriterQueue::Writer> writers(5);
  for (size_t i = 0; i < writers.size(); ++i) writers[i].body = [&runs, i] { return ++runs[i], Status::ok(); };
  threads.emplace_back([&] { q.submit(writers[0], run); });
  await_pending(q, 1);
  for (size_t i = 1; i < writers.size(); ++i) threads.emplace_back([&, i] { q.submit(writers[i], run); });
  for (auto& t : threads) t.join();
  CHECK(runs == std::vector<int>{1, 1, 1, 1, 1});
  CHECK(batches_seen == 5);
  CHECK(q.writes() == 5);
  for (const auto& w : writers) CHECK(w.done);
}

TEST_CASE("writer queue: a body that throws gets a failed status and its exception is kept for its caller") {
  WriterQueue::Writer w;
  w.body = []() -> Status { throw std::runtime_error("boom"); };
  Status s = WriterQueue::run_body(w);
  CHECK_FALSE(s.is_ok());
  REQUIRE(w.thrown);
  CHECK_THROWS_WITH(std::rethrow_exception(w.thrown), "boom");
}

TEST_CASE("group commit: concurrent submissions keep the quota exactly, and a refused one leaves nothing") {
  ManualClock clock;
  mufl::testing::TempDir dir;
  auto store = open_store(dir.path() + "/m.db", clock);
  constexpr int kQuota = 5, kThreads = 24;
  REQUIRE(store->create_tenant(make_tenant("ten_a", "alpha", kQuota), "ha").ok());
  std::atomic<int> accepted{0}, refused{0}, other{0};
  std::vector<std::thread> threads;
  for (int i = 0; i < kThreads; ++i)
    threads.emplace_back([&, i] {
      // Two of them share an Idempotency-Key with different bodies: at most one may win it.
      std::optional<IdempotencyKey> idem;
      if (i < 2) idem = IdempotencyKey{"same-key", "hash-" + std::to_string(i)};
      auto r = store->submit_activity(queued_activity("act_" + std::to_string(i), "ten_a"), kQuota, idem);
      if (r.ok())
        ++accepted;
      else if (r.status().code() == Status::Code::kResourceExhausted || r.status().code() == Status::Code::kConflict)
        ++refused;
      else
        ++other;
    });
  for (auto& t : threads) t.join();
  CHECK(accepted == kQuota);
  CHECK(refused == kThreads - kQuota);
  CHECK(other == 0);
  CHECK(store->writes() >= static_cast<size_t>(kThreads));
  CHECK(store->write_batches() <= store->writes());
  int stored = 0;
  for (int i = 0; i < kThreads; ++i)
    stored += store->get_activity("act_" + std::to_string(i), Scope::all()).ok() ? 1 : 0;
  CHECK(stored == kQuota);  // exactly the acknowledged ones, nothing of the refused ones
  // And they are all still there for a fresh connection after the store closes.
  store.reset();
  auto reopened = open_store(dir.path() + "/m.db", clock);
  int durable = 0;
  for (int i = 0; i < kThreads; ++i)
    durable += reopened->get_activity("act_" + std::to_string(i), Scope::all()).ok() ? 1 : 0;
  CHECK(durable == kQuota);
}
