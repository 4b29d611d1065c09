#pragma once
// DetailCache: the ActivityDetail reads of SqliteStore, kept until the next write transaction.
//
// GET /v1/activities/{id} is the API's hottest read (curl scripts and dashboards poll it). Its
// answer comes from one read snapshot of five queries, which costs more than the rest of the
// request together (bench/api). mufld is the only writer of its database and every write runs
// through one write transaction, so "nothing was written since this read" is known exactly: the
// store bumps a generation after every write transaction (committed or not) and an entry is
// served only while the generation it was read at is still current. A hit is therefore never
// staler than the snapshot a miss would take; a write empties the cache as a whole, so the gain
// is for reads between writes (all of them while nothing trains; between round commits while
// groups train).
//
// Thread safety: every method may be called from any thread.
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <shared_mutex>
#include <string>
#include <string_view>
#include <unordered_map>

#include "storage/store.h"

namespace mufl::storage {

class DetailCache {
 public:
  // At most `capacity` details are kept; when a new one would exceed that, the cache is emptied
  // first (a workload that cycles through more activities reads as if there were no cache).
  // capacity 0 turns the cache off: find() always misses and put() keeps nothing.
  explicit DetailCache(size_t capacity) : capacity_(capacity) {}
  DetailCache(const DetailCache&) = delete;
  DetailCache& operator=(const DetailCache&) = delete;

  // The generation a read must be tagged with. REQUIRES: taken before the read's snapshot
  // begins, so that every write whose end bumped the generation before it is in the snapshot.
  uint64_t generation() const { return generation_.load(std::memory_order_acquire); }

  // Called after every write transaction ends, committed or rolled back (a rollback changed
  // nothing, but a bump is never wrong: it only costs misses).
  void invalidate() { generation_.fetch_add(1, std::memory_order_acq_rel); }

  // The detail of activity `id` as read at the current generation, or nullopt (a miss).
  std::optional<ActivityDetail> find(std::string_view id) const;

  // Keeps `detail` of activity `id`, read at `generation` (see generation()). A detail read at
  // an older generation than the current one is not kept: it may already be stale.
  void put(const std::string& id, uint64_t generation, const ActivityDetail& detail);

  // Reads served by find() and missed since construction (bench/api and the tests read them).
  int64_t hits() const { return hits_.load(std::memory_order_relaxed); }
  int64_t misses() const { return misses_.load(std::memory_order_relaxed); }

 private:
  struct Entry {
    uint64_t generation;
    std::shared_ptr<const ActivityDetail> detail;
  };
  // Hashes std::string keys and std::string_view probes alike (C++20 heterogeneous lookup).
  struct IdHash {
    using is_transparent = void;
    size_t operator()(std::string_view s) const noexcept { return std::hash<std::string_view>{}(s); }
  };

  const size_t capacity_;
  std::atomic<uint64_t> generation_{0};
  mutable std::atomic<int64_t> hits_{0}, misses_{0};
  mutable std::shared_mutex mu_;
  std::unordered_map<std::string, Entry, IdHash, std::equal_to<>> entries_;  // guarded by mu_
};

}  // namespace mufl::storage
