#pragma once
// What the files implementing SqliteStore share (sqlite_store.cpp, sqlite_federation_store.cpp,
// sqlite_lease_store.cpp): the reader lease, the write transaction and small statement
// helpers. Not for other callers.
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "storage/sqlite_db.h"
#include "storage/sqlite_store.h"

namespace mufl::storage {
namespace internal {

inline void bind_optional(Statement& st, int idx, const std::optional<double>& v) {
  if (v)
    st.bind(idx, *v);
  else
    st.bind_null(idx);
}
inline void bind_optional(Statement& st, int idx, const std::optional<int64_t>& v) {
  if (v)
    st.bind(idx, *v);
  else
    st.bind_null(idx);
}

inline Status status_of(const Status& s) { return s; }
template <typename T>
Status status_of(const Result<T>& r) {
  return r.status();
}

// Reads the one row `stmt` selects as T, or kNotFound with `what`.
template <typename T, typename Reader>
Result<T> one_row(StatementRef& stmt, Reader read, const std::string& what) {
  auto row = stmt->step();
  if (!row.ok()) return row.status();
  if (!*row) return Status::not_found(what);
  return read(*stmt);
}

// Deletes the live federations tenant `tenant_id` owns and revokes their clients (the tenant
// is being deleted); defined with the federation methods.
Status delete_owned_federations(Connection& c, const std::string& tenant_id, int64_t now_ms);

}  // namespace internal

// Borrows a reader connection for one call and gives it back afterwards.
class SqliteStore::ReaderLease {
 public:
  explicit ReaderLease(SqliteStore& store) : store_(store) {
    if (store_.use_writer_for_reads_) {
      writer_lock_ = std::unique_lock(store_.writer_mu_);
      conn_ = store_.writer_.get();
      return;
    }
    std::unique_lock lock(store_.readers_mu_);
    store_.readers_cv_.wait(lock, [&] { return !store_.idle_readers_.empty(); });
    owned_ = std::move(store_.idle_readers_.back());
    store_.idle_readers_.pop_back();
    conn_ = owned_.get();
  }
  ~ReaderLease() {
    if (!owned_) return;
    {
      std::lock_guard lock(store_.readers_mu_);
      store_.idle_readers_.push_back(std::move(owned_));
    }
    store_.readers_cv_.notify_one();
  }
  Connection& operator*() { return *conn_; }

 private:
  SqliteStore& store_;
  std::unique_lock<std::mutex> writer_lock_;
  std::unique_ptr<Connection> owned_;
  Connection* conn_ = nullptr;
};

template <typename Fn>
auto SqliteStore::write_transaction(Fn&& body) -> decltype(body(std::declval<Connection&>())) {
  using R = decltype(body(std::declval<Connection&>()));
  std::optional<R> result;
  WriterQueue::Writer w;
  w.body = [&]() -> Status {
    result.emplace(body(*writer_));
    return internal::status_of(*result);
  };
  writers_.submit(w, [this](const std::vector<WriterQueue::Writer*>& batch) { return commit_batch(batch); });
  if (w.thrown) std::rethrow_exception(w.thrown);
  if (result && !internal::status_of(*result).is_ok()) return std::move(*result);  // the body's own failure
  if (!w.status.is_ok()) return R(w.status);  // nothing of it was committed
  return std::move(*result);
}

}  // namespace mufl::storage
