#pragma once
// RoundClients: who trains the clients of one FL round, FlJob's seam (in the spirit of
// Flower's ClientManager and ClientProxy). FlJob samples the round's clients, decides the
// simulated dropouts, aggregates through its Strategy and evaluates; a RoundClients only
// trains. SimulatedClients trains partitions of a catalog data set in this process; a
// federation's implementation hands each real client a lease and waits for its update
// (docs/clients.md). Both train with the same train_local, so a round with the same clients,
// seeds and data gives the same weights either way.
// Internal to fl/ (torch types). Thread safety: one round at a time.
#include <cstdint>
#include <functional>
#include <vector>

#include "core/result.h"
#include "fl/assignment.h"
#include "fl/fedema_clients.h"
#include "fl/model.h"
#include "fl/partition.h"
#include "fl/training.h"
#include "fl/weights.h"

namespace mufl::fl {

// One client's part of a round.
struct ClientTask {
  int64_t client = 0;  // its number in the population (0-based)
  uint64_t seed = 0;   // the seed of its local training this round and attempt
};

// What a client sent back.
struct ClientResult {
  int64_t client = 0;
  ClientUpdate update;  // its weights after training, and its number of training samples
  LocalResult local;    // its loss, samples trained and affinity
  // Its own evaluation of the model it trained, on its held-out part (real clients only:
  // federated evaluation); empty when it holds none.
  int64_t test_samples = 0;
  std::vector<HeadEval> eval;
  // The joules the client's own meter measured over its lease (real clients that meter
  // themselves); energy_meter "" when it did not.
  std::string energy_meter;
  double energy_joules = 0;
};

// Which round and draw a train() call is (real clients' leases are named by them).
struct RoundDraw {
  int64_t round = 0;  // the lineage round, 1-based
  int attempt = 0;    // 0-based
  // Which start model of the round (client clustering: the cluster; else 0). A round trains
  // one train() call per start model.
  int part = 0;
};

class RoundClients {
 public:
  virtual ~RoundClients() = default;

  // The clients a round may sample from now, ascending. Real clients: waits (bounded, and
  // `should_stop` ends it) until enough of them are online to make the round.
  virtual Result<std::vector<int64_t>> candidates(const std::function<bool()>& should_stop) = 0;

  // Trains every task, each starting from `global`, with `options`, and hands each result that
  // came back to `report` at once, in `tasks` order (a client that did not report is skipped).
  // The caller folds a result's weights into the round's sum and drops them, so that a round
  // never holds every client's weights at once (fl/strategy.h, UpdateSum). When `should_stop`
  // fires, sets `stopped` and returns: the caller aggregates nothing.
  virtual Status train(const Weights& global, const LocalTrainOptions& options, const RoundDraw& draw,
                       const std::vector<ClientTask>& tasks, const std::function<void(ClientResult)>& report,
                       const std::function<bool()>& should_stop, bool& stopped) = 0;

  // True when the clients train elsewhere (train() waits for them rather than working here).
  virtual bool remote() const { return false; }
};

// The simulation: client i holds the samples partition[i] of `data`, and trains on `worker`,
// a model of the job's shape. Each client starts from the global model, or with `fedema` from
// its FedEMA start, and then keeps its trained model there (fl/fedema_clients.h); a failure to
// read or keep a state fails train(). The references and `fedema` must outlive it.
class SimulatedClients final : public RoundClients {
 public:
  SimulatedClients(MultiTaskNet& worker, const TaskData& data, const Partition& partition,
                   FedEmaClients* fedema = nullptr)
      : worker_(worker), data_(data), partition_(partition), fedema_(fedema) {}

  Result<std::vector<int64_t>> candidates(const std::function<bool()>& should_stop) override;
  Status train(const Weights& global, const LocalTrainOptions& options, const RoundDraw& draw,
               const std::vector<ClientTask>& tasks, const std::function<void(ClientResult)>& report,
               const std::function<bool()>& should_stop, bool& stopped) override;

 private:
  MultiTaskNet& worker_;
  const TaskData& data_;
  const Partition& partition_;
  FedEmaClients* fedema_;
};

}  // namespace mufl::fl
