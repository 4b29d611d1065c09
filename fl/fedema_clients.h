#pragma once
// FedEmaClients: FedEMA for simulated clients (fl/fedema.h is the rule): before a client trains
// it sets the worker model to the client's EMA start from its kept state, and after training
// keeps the trained weights (and its λ) as the client's new state, on the disk through
// ClientStates (fl/client_states.h), so that a checkpoint resumes exactly.
//
// A state file is safetensors (protocol/safetensors.h): every parameter of the model, named as
// weight_names() names it, F32, with metadata "lambda" (the client's λ, 17 significant digits;
// "0" while undecided). Parameters are matched by name and shape, so a state kept before a head
// joined or left the group still serves: a parameter the state lacks starts from the global
// model (and adds nothing to the divergence), one the model lacks is ignored. The EMA covers
// every parameter, the shared encoder and the heads alike.
//
// Internal to fl/ (torch types). Thread safety: one round at a time.
#include <cstdint>
#include <string>

#include "core/result.h"
#include "fl/client_states.h"
#include "fl/fedema.h"
#include "fl/model.h"

namespace mufl::fl {

class FedEmaClients {
 public:
  // States under `dir`; `lambda` > 0 is the given λ, 0 is "auto" (τ = kFedEmaTau).
  FedEmaClients(std::string dir, double lambda);

  // Sets `worker` to `client`'s start in lineage round `round` (1-based) from `global`, as the
  // rule says, and remembers its λ for keep(). Errors: the state's file cannot be read
  // (Env's errors) or is not a state (kInternal, naming the file).
  Result<FedEmaStart> start(int64_t client, int64_t round, const Weights& global, MultiTaskNet& worker);

  // Keeps `worker`'s weights as `client`'s state produced in `round`, with the λ its start()
  // decided. Errors as write_file_durably says.
  Status keep(int64_t client, int64_t round, MultiTaskNet& worker);

  // As ClientStates::release.
  Status release(int64_t oldest_round) { return states_.release(oldest_round); }
  ClientStates& states() { return states_; }

 private:
  ClientStates states_;
  double lambda_;
  double started_lambda_ = 0;  // the λ of the last start()
};

}  // namespace mufl::fl
