#include "scheduler/energy/meters.h"

#include <spdlog/spdlog.h>

#include "scheduler/energy/model_meter.h"
#include "scheduler/energy/power_profile.h"
#include "scheduler/energy/rapl_meter.h"

namespace mufl::scheduler {

namespace {
bool is_cuda(const Device& d) { return d.torch_device.rfind("cuda", 0) == 0; }
}  // namespace

Result<std::vector<MeteredDevice>> make_metered_devices(const std::vector<Device>& devices, const MeterOptions& options,
                                                        const Clock& clock) {
  if (options.mode != "auto" && options.mode != "model")
    return Status::invalid_argument("--energy-meter must be auto or model, not '" + options.mode + "'");
  const bool best = options.mode == "auto";
  int cpu_slots = 0, gpus = 0;
  for (const auto& d : devices) (is_cuda(d) ? gpus : cpu_slots) += 1;

  std::shared_ptr<const NvmlApi> nvml;
  if (best && gpus > 0) {
    auto loaded = options.load_nvml ? options.load_nvml() : NvmlApi::load();
    if (loaded.ok())
      nvml = *loaded;
    else
      spdlog::info("energy: {}; GPUs use the power model", loaded.status().message());
  }
  std::shared_ptr<RaplPackages> rapl;
  if (best && cpu_slots > 0) {
    auto opened = RaplPackages::open(options.rapl_root, cpu_slots, clock);
    if (opened.ok()) {
      rapl = *opened;
      std::string names;
      for (const auto& n : rapl->domain_names()) names += (names.empty() ? "" : ", ") + n;
      spdlog::info("energy: CPU slots share RAPL {} under {}", names, options.rapl_root);
    } else {
      spdlog::info("energy: no RAPL ({}); CPU slots use the power model", opened.status().message());
    }
  }

  std::vector<MeteredDevice> out;
  int cpu_index = 0;
  for (const auto& d : devices) {
    MeteredDevice m;
    m.device = d;
    if (is_cuda(d) && nvml) {
      const auto index = static_cast<unsigned>(std::stoul(d.torch_device.substr(5)));
      auto meter = NvmlMeter::open(nvml, index);
      if (meter.ok())
        m.meter = std::move(*meter);
      else
        spdlog::warn("energy: {}: {}; it uses the power model", d.name, meter.status().message());
    } else if (!is_cuda(d) && rapl) {
      m.meter = rapl->slot_meter(cpu_index);
    }
    if (!is_cuda(d)) ++cpu_index;
    if (!m.meter) {
      const std::string& model = is_cuda(d) ? options.gpu_profile : options.cpu_profile;
      auto profile = find_power_profile(model);
      if (!profile.ok()) return Status::invalid_argument("no power profile '" + model + "' for " + d.name);
      m.profile = profile->model;
      // Profiles are per device: the "cpu" profile is one CPU slot's power.
      m.meter = std::make_unique<ModelMeter>(*profile, clock);
    }
    spdlog::info("energy: {} is metered by {}{}", d.name, m.meter->name(),
                 m.profile.empty() ? "" : " (profile " + m.profile + ")");
    out.push_back(std::move(m));
  }
  return out;
}

}  // namespace mufl::scheduler
