#pragma once
// ClientStates: what simulated clients keep between rounds (FedEMA's local models, fl/fedema.h),
// one file per client and round on the disk, committed by the job's checkpoints.
//
// A client's state produced in lineage round r (1-based) is the file c<client>.r<r>.state in the
// directory, written durably (temp file, fsync, rename: core/env.h). Round R reads, for each
// client, the file with the greatest tag below R, so a job restored from the checkpoint of round
// R−1 sees exactly the states of round R−1 even when a process died in round R after some of its
// clients had written theirs: those files carry tag R and are ignored, then overwritten when the
// round is trained again (every draw is seeded, so with the same bytes). The checkpoint is the
// commit point: release(oldest) drops the files no trusted checkpoint needs any more.
//
// Disk: after release(), at most one file per client at or below the oldest trusted round and
// one per later round it trained in; see docs/tasks.md for the bytes of one.
//
// Torch-free: a state is bytes to this class. Thread safety: one thread at a time; one
// ClientStates per directory at a time (the job that owns it).
#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <string>

#include "core/env.h"
#include "core/result.h"

namespace mufl::fl {

class ClientStates {
 public:
  // The states under `dir` (created on the first save). `env` must outlive it.
  explicit ClientStates(std::string dir, Env& env = Env::posix());

  // Reads the directory's file names once (later calls return at once). Files of other names
  // (temp files) are ignored. Errors as Env::list says; a missing directory is empty.
  Status open();

  // The state `client` had before round `round`: its file with the greatest tag < round, or
  // nullopt when it has none. Errors as Env::read says. REQUIRES: open() succeeded.
  Result<std::optional<std::string>> load(int64_t client, int64_t round);

  // Stores `bytes` as `client`'s state produced in `round`, durably (replacing a file of the
  // same client and round). Errors as write_file_durably says. REQUIRES: open() succeeded.
  Status save(int64_t client, int64_t round, const std::string& bytes);

  // The checkpoints the owner trusts are those of rounds ≥ `oldest_round`: for each client,
  // removes its files older than its newest with tag ≤ oldest_round (a restore from any of them
  // still finds what it needs). Opens first. The first error is returned after trying every file.
  Status release(int64_t oldest_round);

  // The file of `client`'s state from `round`: <dir>/c<client>.r<round>.state.
  std::string path(int64_t client, int64_t round) const;
  // How many state files there are (for tests and the disk accounting).
  size_t files() const;

 private:
  std::string dir_;
  Env& env_;
  bool opened_ = false;
  std::map<int64_t, std::set<int64_t>> rounds_;  // client → tags of its files
};

// Parses a state file's name "c<client>.r<round>.state"; false for any other name.
bool parse_state_name(const std::string& name, int64_t& client, int64_t& round);

}  // namespace mufl::fl
