#pragma once
// Dispatch: the live side of placement. When a device is free, which claimable group should it
// take next, and should the group run now or wait? A placement policy answers
// (scheduler/placement/placement.h): the same filters, scores, orders and deferral rule that mufl-sim
// replays traces with. docs/scheduling.md describes every policy as it runs live.
//
// Each claimable group is one WorkUnit, its next round:
//   priority  : the highest spec priority of its counting members. Every order ranks by it
//               right after its own key (fifo: first; fair: after the dominant share), so fifo
//               takes the highest-priority, oldest group, as Store::claim_next_group does.
//   ready_s   : the group's creation (unix seconds); equal times keep the store's claim order.
//   tenant    : the tenant with the most counting members (the first such in join order).
//               `fair` ranks tenants by devices held ÷ total devices ÷ the tenant's weight
//               (ClaimableMember::tenant_weight, quotas.fair_share_weight): weighted DRF.
//   work_s    : seconds per round on the group's lineage as measured (DispatchInput::
//               round_seconds), else `prior_round_seconds` before its first round; times the
//               device profile's relative_speed, i.e. reference seconds (1 for CPU slots).
//   deadline_s and remaining_work_s: of the binding member, the one with the least slack
//               deadline − now − rounds_left · work_s. A member without a deadline is
//               deferrable within the horizon: it gets first_seen + carbon_horizon_hours +
//               rounds_left · work_s, first_seen being when the executor first saw the group
//               wait (DispatchInput::first_seen_ms), so its holds add up to at most the horizon.
//   host_local: some member keeps client state on this host (ClaimableMember::
//               keeps_client_state), so a cluster GPU (FreeDevice::remote) does not take it.
// Nodes: one per free device, the asking device first, each with one device of its power
// profile. So a tie (identical CPU slots, fifo's and fair's FirstFit) goes to the asking
// device; under `energy` a free device with a strictly lower Zeus cost takes the group instead
// and the asking device moves on to the next group.
//
// Thread safety: a Dispatcher is immutable after create(); choose() and hold() may run on
// several threads at once. PlacementBoard is safe to use from any thread.
#include <cstdint>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "core/result.h"
#include "scheduler/placement/placement.h"
#include "scheduler/placement/waiting.h"
#include "storage/store.h"

namespace mufl::scheduler {

struct DispatchOptions {
  // fifo | fair | energy | carbon (placement.h, make_policy). Default fifo.
  std::string policy = "fifo";
  // energy: η in Zeus's cost η·E + (1−η)·MAXPOWER·T, in [0, 1]. Default 0.9 (as mufl-sim).
  double eta = 0.9;
  // carbon: how far ahead (hours) cleaner hours are looked for, and the most a unit without a
  // deadline is held in all; >= 1. Default 24.
  int carbon_horizon_hours = 24;
  // Seconds per round assumed before a group's first measured round; > 0. Default 60.
  double prior_round_seconds = 60;
  // carbon: the hourly intensity (unix time). Required for carbon; not owned.
  const CarbonIntensity* carbon = nullptr;
};

// A device that runs nothing and may claim. `profile` is not owned and outlives the call.
struct FreeDevice {
  std::string name;
  const PowerProfile* profile = nullptr;
  bool remote = false;  // a Slurm cluster's GPU (Device::on_cluster): its node is Node::remote
};

struct DispatchInput {
  std::vector<storage::ClaimableGroup> groups;  // Store::list_claimable_groups, in its order
  std::vector<FreeDevice> devices;              // the free devices, the asking device first (REQUIRES: not empty)
  // Every device the service trains on (the `fair` shares' denominator); >= 1.
  int total_devices = 1;
  // Devices each tenant holds now: a busy device counts 1/n for each of its group's n live members.
  std::unordered_map<std::string, double> tenant_devices;
  // Group id → measured seconds per round of its lineage; absent: prior_round_seconds.
  std::unordered_map<std::string, double> round_seconds;
  // Group id → when it was first seen waiting (unix ms); absent: now.
  std::unordered_map<std::string, int64_t> first_seen_ms;
  int64_t now_unix_ms = 0;
};

struct DispatchChoice {
  // The group the asking device should claim now (nullopt: none for it), at `limit_watts`
  // (the chosen power limit; a CPU slot's one point).
  std::optional<std::string> group_id;
  double limit_watts = 0;
  // Groups that wait, with why: held by the deferral rule (carbon), left to a better device
  // (better_device), or refused by every filter (no_fit: the framework's rejections).
  std::map<std::string, WaitNote> waiting;
  std::vector<std::string> considered;  // the groups looked at, in the policy's order
  int held = 0;               // groups the deferral rule holds
  bool left_to_other = false;  // a group was left to another free device (wake its worker)
  // Earliest time (unix ms) a hold ends: ask again then without an event.
  std::optional<int64_t> retry_at_ms;
};

class Dispatcher {
 public:
  // kInvalidArgument (field named) for an unknown policy, eta outside [0, 1], a horizon < 1,
  // a prior <= 0, or carbon without an intensity.
  static Result<Dispatcher> create(const DispatchOptions& options);
  Dispatcher(Dispatcher&&) = default;

  const DispatchOptions& options() const { return options_; }
  const Policy& policy() const { return policy_; }
  const std::string& name() const { return policy_.name(); }

  // One decision for the free device input.devices[0] (see the header comment). Never fails.
  DispatchChoice choose(const DispatchInput& input) const;

  // At a round boundary of a group that runs on `device`: a reason when the deferral rule
  // holds its next round (the device lets it go), with retry_at_ms; nullopt to go on. Only
  // `carbon` ever holds. `group` as list_claimable_groups would describe it.
  struct Hold {
    std::string reason;
    int64_t retry_at_ms = 0;
  };
  std::optional<Hold> hold(const storage::ClaimableGroup& group, const FreeDevice& device,
                           const DispatchInput& context) const;

  // The unit placement sees for `group` (public for tests).
  WorkUnit unit_of(const storage::ClaimableGroup& group, const DispatchInput& input, const PowerProfile& profile) const;

 private:
  Dispatcher(DispatchOptions options, Policy policy) : options_(std::move(options)), policy_(std::move(policy)) {}
  std::string hold_reason(const WorkUnit& unit, int64_t now_s, int64_t retry_s) const;

  DispatchOptions options_;
  Policy policy_;
};

// What the executor decided last, for the API and /metrics: why the placement policy keeps each
// group it looked at waiting (scheduler/placement/waiting.h puts these beside the store's and the
// devices' reasons).
class PlacementBoard {
 public:
  // Replaces the notes of the groups a decision looked at (`seen`): those in `waiting` get
  // theirs, the others lose any. A note counts only while its group waits for a device
  // (WaitingExplainer::explain asks only for those); the executor clears it when the group is claimed.
  void update(const std::vector<std::string>& seen, const std::map<std::string, WaitNote>& waiting);
  void set(const std::string& group_id, WaitNote note);
  void clear(const std::string& group_id);
  // The policy's note on the group; nullopt when it has none.
  std::optional<WaitNote> note(const std::string& group_id) const;

 private:
  mutable std::mutex mu_;
  std::map<std::string, WaitNote> notes_;
};

}  // namespace mufl::scheduler
