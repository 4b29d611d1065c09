#include "scheduler/cluster/cluster_watch.h"

#include <spdlog/spdlog.h>

#include <map>

#include "scheduler/cluster/cluster_devices.h"
#include "scheduler/energy/reported_meter.h"
#include "scheduler/energy/power_profile.h"

namespace mufl::scheduler {

ClusterWatch::ClusterWatch(SlurmClient& slurm, DeviceInventory& inventory, const Clock& clock,
                           ClusterWatchOptions options, std::function<void(const std::vector<Device>&)> on_added)
    : slurm_(slurm), inventory_(inventory), clock_(clock), options_(std::move(options)), on_added_(std::move(on_added)) {}

ClusterWatch::~ClusterWatch() { stop(); }

Status ClusterWatch::refresh() {
  auto nodes = slurm_.nodes();
  Status status = nodes.ok() ? Status::ok() : nodes.status();
  {
    std::lock_guard lock(mu_);
    if (!status.is_ok() && status.message() != last_error_.message())
      spdlog::warn("cluster: cannot list Slurm's nodes: {}; the cluster devices stay as they were",
                   status.message());
    if (status.is_ok() && !last_error_.is_ok()) spdlog::info("cluster: Slurm answers again");
    last_error_ = status;
  }
  if (!status.is_ok()) return status;
  std::vector<MeteredDevice> found;
  std::map<std::string, bool> usable;  // every GPU Slurm lists: whether its node takes work
  for (const ClusterDevice& c : cluster_devices(*nodes)) {
    usable[c.device.name] = c.usable;
    MeteredDevice m;
    m.device = c.device;
    auto profile = find_power_profile(power_profile_of(c.device, options_.gpu_profile));
    if (!profile.ok()) profile = find_power_profile("V100");
    m.profile = profile->model;
    m.meter = std::make_unique<ReportedMeter>("model", *profile);  // the worker meters each round
    found.push_back(std::move(m));
  }
  std::vector<Device> added = inventory_.add_devices(std::move(found));
  for (const Device& d : added) spdlog::info("cluster: {} ({} on {}) is a device", d.name, d.gres, d.host);
  // Availability follows the node; a GPU Slurm no longer lists is unavailable.
  for (const Device& d : inventory_.devices()) {
    if (!d.on_cluster()) continue;
    const auto it = usable.find(d.name);
    (void)inventory_.set_available(d.name, it != usable.end() && it->second);
  }
  if (!added.empty() && on_added_) on_added_(added);
  return Status::ok();
}

Status ClusterWatch::start() {
  Status first = refresh();
  std::lock_guard lock(mu_);
  if (thread_.joinable()) return first;
  stopping_ = false;
  thread_ = std::thread([this] {
    std::unique_lock lock(mu_);
    while (!cv_.wait_for(lock, std::chrono::milliseconds(options_.period_ms), [this] { return stopping_; })) {
      lock.unlock();
      (void)refresh();
      lock.lock();
    }
  });
  return first;
}

void ClusterWatch::stop() {
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

Status ClusterWatch::last_error() const {
  std::lock_guard lock(mu_);
  return last_error_;
}

}  // namespace mufl::scheduler
