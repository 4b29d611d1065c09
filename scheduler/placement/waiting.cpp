#include "scheduler/placement/waiting.h"

#include <string>

#include "scheduler/device_inventory.h"
#include "scheduler/placement/dispatch.h"

namespace mufl::scheduler {

const char* to_string(WaitReason r) {
  switch (r) {
    case WaitReason::kBudget: return "budget";
    case WaitReason::kMaxDevices: return "max_devices";
    case WaitReason::kStorage: return "storage";
    case WaitReason::kCarbon: return "carbon";
    case WaitReason::kBetterDevice: return "better_device";
    case WaitReason::kNoFit: return "no_fit";
    case WaitReason::kNoFreeDevice: return "no_free_device";
    case WaitReason::kPending: return "pending";
  }
  return "pending";
}

DeviceAvailability device_availability(DeviceInventory* inventory, bool one_group_at_a_time) {
  DeviceAvailability a;
  a.one_group_at_a_time = one_group_at_a_time;
  if (!inventory) return a;
  for (DeviceState s : inventory->states()) {  // the meters are not read: /metrics and the API ask often
    ++a.devices;
    if (s == DeviceState::kIdle) ++a.free;
    if (s == DeviceState::kBusy || s == DeviceState::kDraining) ++a.busy;
  }
  return a;
}

WaitNote wait_reason(const storage::UnclaimedGroup& group, const std::optional<WaitNote>& board_note,
                     const DeviceAvailability& d) {
  // What the store refuses comes first: no device and no policy could run the group now.
  if (group.over_budget)
    return {WaitReason::kBudget,
            "every tenant with a live activity in the group has used its energy budget; raising a budget resumes it"};
  if (group.at_max_devices)
    return {WaitReason::kMaxDevices,
            "a tenant with a live activity in the group already occupies its quotas.max_devices devices"};
  if (board_note) return *board_note;
  if (d.devices == 0) return {WaitReason::kNoFreeDevice, "mufld trains on no device (--devices none)"};
  if (d.one_group_at_a_time && d.busy > 0)
    return {WaitReason::kNoFreeDevice, "grouping sequential trains one group at a time, and another group is training"};
  if (d.free == 0)
    return {WaitReason::kNoFreeDevice, "all " + std::to_string(d.devices) + " devices are busy, draining or drained (" +
                                           std::to_string(d.busy) + " training)"};
  return {WaitReason::kPending, "claimable, and a device is free: its next decision takes the group"};
}

Result<std::map<std::string, WaitNote>> WaitingExplainer::explain(const std::optional<std::string>& id) const {
  auto groups = store_.list_unclaimed_groups(id);
  if (!groups.ok()) return groups.status();
  std::map<std::string, WaitNote> out;
  if (groups->empty()) return out;  // nothing waits: the devices need not be asked
  const DeviceAvailability devices = device_availability(inventory_, one_group_at_a_time_);
  for (const storage::UnclaimedGroup& g : *groups)
    out[g.id] = wait_reason(g, board_ ? board_->note(g.id) : std::nullopt, devices);
  return out;
}

WaitNote WaitingExplainer::explain(const storage::UnclaimedGroup& group) const {
  return wait_reason(group, board_ ? board_->note(group.id) : std::nullopt,
                     device_availability(inventory_, one_group_at_a_time_));
}

std::map<WaitReason, int64_t> count_by_reason(const std::map<std::string, WaitNote>& waiting) {
  std::map<WaitReason, int64_t> counts;
  for (WaitReason r : kAllWaitReasons) counts[r] = 0;
  for (const auto& [id, note] : waiting) ++counts[note.reason];
  return counts;
}

}  // namespace mufl::scheduler
