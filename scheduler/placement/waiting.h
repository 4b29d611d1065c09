#pragma once
// Why a live group without a device waits, as one reason from a bounded set: the code that
// /metrics counts (mufl_scheduler_waiting_groups{reason}) and the API shows as
// `waiting_reason`, beside the `waiting` text (GET /v1/groups, /v1/activities/{id}).
// docs/scheduling.md, "Why a group waits", is the user's version of this file.
//
// A group's reason is the first of these that holds:
//   budget          no live member's tenant is within its energy budget (raise it to resume)
//   max_devices     a live member's tenant already occupies its quotas.max_devices devices
//   storage         a storage error (full disk, I/O error, busy database) stopped its last round;
//                   it is claimed again after a backoff and redoes the round from its checkpoint
//   carbon          the carbon policy holds it back for a cleaner hour (deferral)
//   better_device   the policy left it to another free device, a better fit (energy, carbon)
//   no_fit          the policy's filters refused every free device
//   no_free_device  no device may take it: every device is busy, draining or drained, there is
//                   none, or (grouping `sequential`) another group is training
//   pending         claimable with a device free: the next decision takes it (a moment)
// The store decides the first two (Store::list_unclaimed_groups), the executor the next four
// (PlacementBoard: its storage backoff and its last placement decision), the devices the last two.
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "core/result.h"
#include "storage/store.h"

namespace mufl::scheduler {

class DeviceInventory;
class PlacementBoard;

enum class WaitReason { kBudget, kMaxDevices, kStorage, kCarbon, kBetterDevice, kNoFit, kNoFreeDevice, kPending };
inline constexpr WaitReason kAllWaitReasons[] = {WaitReason::kBudget,       WaitReason::kMaxDevices,
                                                 WaitReason::kStorage,      WaitReason::kCarbon,
                                                 WaitReason::kBetterDevice, WaitReason::kNoFit,
                                                 WaitReason::kNoFreeDevice, WaitReason::kPending};
// "budget", "max_devices", "storage", "carbon", "better_device", "no_fit", "no_free_device", "pending".
const char* to_string(WaitReason r);

// A reason with the sentence the API shows (which may name hours, intensities and devices, so
// it is never a label value).
struct WaitNote {
  WaitReason reason = WaitReason::kPending;
  std::string text;
  bool operator==(const WaitNote&) const = default;
};

// The devices as far as waiting is concerned.
struct DeviceAvailability {
  int devices = 0;  // every training device
  int free = 0;     // idle and claimable (not draining or drained)
  int busy = 0;     // running a group (busy or draining)
  bool one_group_at_a_time = false;  // grouping `sequential`: no claim while a group has a device
};

// The devices' availability now; all zero without an inventory.
DeviceAvailability device_availability(DeviceInventory* inventory, bool one_group_at_a_time);

// The reason for one unclaimed group (see the header comment). `board_note`: what the
// placement policy said of it last (PlacementBoard::note), nullopt when nothing.
WaitNote wait_reason(const storage::UnclaimedGroup& group, const std::optional<WaitNote>& board_note,
                     const DeviceAvailability& devices);

// Why each live group without a device waits, from the store, the policy's notes and the
// devices together: what GET /v1/groups, GET /v1/activities/{id} and /metrics ask.
// Thread safety: explain() may run on several threads at once.
class WaitingExplainer {
 public:
  // `board` and `inventory` may be null (no policy notes; no devices). None is owned; all
  // outlive the explainer. `one_group_at_a_time`: grouping `sequential`.
  WaitingExplainer(storage::GroupStore& store, const PlacementBoard* board, DeviceInventory* inventory,
                   bool one_group_at_a_time)
      : store_(store), board_(board), inventory_(inventory), one_group_at_a_time_(one_group_at_a_time) {}

  // Every live group without a device (or only group `id`: none when it has a device or has
  // ended), with its reason. Errors are the store's.
  Result<std::map<std::string, WaitNote>> explain(const std::optional<std::string>& id = std::nullopt) const;
  // The reason for one group the caller read from the store itself (Store::list_unclaimed_groups,
  // or ActivityDetail::waiting_group): explain() without the store's query.
  WaitNote explain(const storage::UnclaimedGroup& group) const;

 private:
  storage::GroupStore& store_;
  const PlacementBoard* board_;
  DeviceInventory* inventory_;
  bool one_group_at_a_time_;
};

// How many groups wait for each reason: every reason present, zeros included.
std::map<WaitReason, int64_t> count_by_reason(const std::map<std::string, WaitNote>& waiting);

}  // namespace mufl::scheduler
