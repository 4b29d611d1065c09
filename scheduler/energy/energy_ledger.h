#pragma once
// The energy ledger's rule: what one work unit (a group round on one device) costs, in joules,
// device-seconds and grams CO2e, and who pays for it.
//
// Attribution (docs/energy.md, "Ledger and attribution"): a unit is split evenly over the heads
// that trained in it, i.e. the group's live members at the start of the round, each with
// share 1/K of the joules, device-seconds and grams. Every member runs the same shared encoder,
// which carries most of a step's cost (docs/merge-and-split.md), and its own light head, so the
// per-task cost differences are small against an even split. A member cancelled during the
// round still trained in it and keeps its share. Each share is charged to the member's tenant.
//
// Carbon: grams CO2e = kWh × the grid intensity (g/kWh) averaged over the unit's time span
// (CarbonIntensity::mean_over), kWh = joules / 3.6e6.
//
// Client energy (a federation round): the joules the clients metered over their leases and
// reported are split over the heads by the same shares, beside the server's joules. They add
// no grams (a client's grid is not known) and do not count against energy budgets.
//
// Thread safety: pure functions.
#include <string>
#include <vector>

#include "core/group.h"
#include "scheduler/device_inventory.h"
#include "scheduler/energy/carbon_intensity.h"
#include "storage/store.h"

namespace mufl::scheduler {

// The carbon intensity charged when no --carbon-file is given: 475 g CO2e/kWh, the IEA's world
// average for electricity generation (Global Energy & CO2 Status Report 2019).
inline constexpr double kDefaultCarbonGPerKwh = 475.0;

// What a federation round's clients reported spending (fl::RoundReport::client_joules).
struct ClientEnergy {
  double joules = 0;
  std::string meters;  // "" when none reported energy
};

// The unit of round `round` of `group` measured by `m`, split over `heads` (the heads that
// trained; tenants from group.members), with the clients' energy beside it. REQUIRES: heads
// is not empty, and every head is a member of `group`.
storage::EnergyUnit make_energy_unit(const Group& group, int64_t round, const std::vector<GroupHead>& heads,
                                     const UnitMeasurement& m, const CarbonIntensity& carbon,
                                     const ClientEnergy& clients = {});

}  // namespace mufl::scheduler
