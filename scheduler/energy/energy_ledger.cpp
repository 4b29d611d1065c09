#include "scheduler/energy/energy_ledger.h"

namespace mufl::scheduler {

storage::EnergyUnit make_energy_unit(const Group& group, int64_t round, const std::vector<GroupHead>& heads,
                                     const UnitMeasurement& m, const CarbonIntensity& carbon,
                                     const ClientEnergy& clients) {
  storage::EnergyUnit u;
  u.group_id = group.id;
  u.round = round;
  u.device = m.device;
  u.meter = m.meter;
  u.start_unix_ms = m.start_unix_ms;
  u.end_unix_ms = m.end_unix_ms;
  u.seconds = m.seconds;
  u.joules = m.joules;
  u.carbon_g_per_kwh = carbon.mean_over(m.start_unix_ms / 1000, (m.end_unix_ms + 999) / 1000);
  u.grams_co2e = m.joules / 3.6e6 * u.carbon_g_per_kwh;
  u.client_joules = clients.joules;
  u.client_meters = clients.meters;
  const double share = heads.empty() ? 0.0 : 1.0 / static_cast<double>(heads.size());
  for (const auto& h : heads) {
    storage::EnergyShare s;
    s.activity_id = h.key;
    for (const auto& member : group.members)
      if (member.activity_id == h.key) s.tenant_id = member.tenant_id;
    s.share = share;
    s.joules = u.joules * share;
    s.device_seconds = u.seconds * share;
    s.grams_co2e = u.grams_co2e * share;
    s.client_joules = u.client_joules * share;
    u.shares.push_back(std::move(s));
  }
  return u;
}

}  // namespace mufl::scheduler
