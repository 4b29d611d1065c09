#pragma once
// FederationPool: a federation's enrolled mufl-client processes as the ClientPool of the jobs
// on it (fl/client_pool.h). A client's number is its place in enrollment order (revoked ones
// keep theirs), so a job's seeded choice of clients means the same clients across restarts.
// A draw becomes one work lease per chosen client (federation/lease_desk.h); the pool waits
// for their updates, and a restarted draw (same job, round and attempt) keeps the leases and
// reports it already has.
//
// Thread safety: run() may be called from several threads for distinct jobs. Blocking: the
// store, files, and run() waits for the clients.
#include <string>

#include "core/clock.h"
#include "federation/client_registry.h"
#include "federation/lease_desk.h"
#include "fl/client_pool.h"
#include "storage/store.h"

namespace mufl::federation {

class FederationPool final : public fl::ClientPool {
 public:
  FederationPool(std::string federation_id, storage::FederationStore& store, const ClientRegistry& clients,
                 LeaseDesk& leases, const Clock& clock)
      : federation_id_(std::move(federation_id)), store_(store), clients_(clients), leases_(leases), clock_(clock) {}

  Result<std::vector<int64_t>> candidates(size_t wanted, int64_t wait_ms,
                                          const std::function<bool()>& should_stop) override;
  Result<int64_t> largest_train_samples() override;
  Result<std::vector<fl::RemoteUpdate>> run(const fl::RemoteDraw& draw, const std::function<bool()>& should_stop,
                                            bool& stopped) override;

 private:
  // Every client ever enrolled, in enrollment order (its number is its index).
  Result<std::vector<Client>> all_clients() const;
  Result<std::vector<int64_t>> online_now();

  std::string federation_id_;
  storage::FederationStore& store_;
  const ClientRegistry& clients_;
  LeaseDesk& leases_;
  const Clock& clock_;
};

}  // namespace mufl::federation
