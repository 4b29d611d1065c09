#include "scheduler/energy/rapl_meter.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fcntl.h>
#include <unistd.h>

namespace mufl::scheduler {
namespace {

constexpr int64_t kPowerWindowNs = 500'000'000;  // power is averaged over at least 0.5 s

// The first line of a small file (sysfs), without its newline; errno's Status when unreadable.
Result<std::string> read_first_line(const std::string& path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    const int err = errno;
    if (err == EACCES || err == EPERM) return Status::permission_denied(path + " is not readable by mufld");
    return Status::not_found(path + ": " + std::strerror(err));
  }
  char buf[128];
  const ssize_t n = ::read(fd, buf, sizeof buf - 1);
  const int err = errno;
  ::close(fd);
  if (n < 0) return Status::internal(path + ": " + std::strerror(err));
  std::string line(buf, static_cast<size_t>(n));
  return line.substr(0, line.find('\n'));
}

// A counter file in microjoules.
Result<double> read_number(const std::string& path) {
  auto line = read_first_line(path);
  if (!line.ok()) return line.status();
  if (line->empty() || line->find_first_not_of("0123456789") != std::string::npos)
    return Status::invalid_argument(path + " does not hold a counter ('" + *line + "')");
  return std::stod(*line);
}

std::string read_line(const std::string& path) {
  auto line = read_first_line(path);
  return line.ok() ? *line : "";
}

class RaplMeter final : public EnergyMeter {
 public:
  RaplMeter(std::shared_ptr<RaplPackages> packages, int index) : packages_(std::move(packages)), index_(index) {}
  std::string name() const override { return "rapl"; }
  double energy_joules() override { return packages_->slot_joules(index_); }
  double power_watts() override { return packages_->slot_watts(index_); }
  void set_busy(bool busy) override { packages_->set_slot_busy(index_, busy); }

 private:
  std::shared_ptr<RaplPackages> packages_;
  int index_;
};

}  // namespace

Result<std::shared_ptr<RaplPackages>> RaplPackages::open(const std::string& root, int slots, const Clock& clock) {
  namespace fs = std::filesystem;
  if (slots < 1) return Status::invalid_argument("RAPL needs at least one CPU slot");
  std::error_code ec;
  std::vector<fs::path> dirs;
  for (fs::directory_iterator it(root, ec), end; !ec && it != end; it.increment(ec)) {
    const std::string base = it->path().filename().string();
    // Top-level domains only: "intel-rapl:0", not "intel-rapl:0:1" (a part of package 0).
    if (base.rfind("intel-rapl:", 0) != 0 || base.find(':', 11) != std::string::npos) continue;
    if (read_line((it->path() / "name").string()).rfind("package", 0) != 0) continue;  // psys, dram
    dirs.push_back(it->path());
  }
  if (dirs.empty()) return Status::not_found("no RAPL package domain under " + root);
  std::sort(dirs.begin(), dirs.end());
  std::vector<Domain> domains;
  for (const auto& d : dirs) {
    Domain dom;
    dom.name = read_line((d / "name").string());
    dom.energy_path = (d / "energy_uj").string();
    auto range = read_number((d / "max_energy_range_uj").string());
    if (!range.ok()) return range.status();
    auto now = read_number(dom.energy_path);
    if (!now.ok()) return now.status();
    if (*range <= 0) return Status::invalid_argument((d / "max_energy_range_uj").string() + " is 0");
    dom.max_range_uj = *range;
    dom.last_uj = *now;
    domains.push_back(std::move(dom));
  }
  return std::shared_ptr<RaplPackages>(new RaplPackages(std::move(domains), slots, clock));
}

RaplPackages::RaplPackages(std::vector<Domain> domains, int slots, const Clock& clock)
    : clock_(clock),
      domains_(std::move(domains)),
      slot_joules_(static_cast<size_t>(slots), 0.0),
      busy_(static_cast<size_t>(slots), false),
      window_start_ns_(clock.monotonic_ns()) {}

std::unique_ptr<EnergyMeter> RaplPackages::slot_meter(int index) {
  return std::make_unique<RaplMeter>(shared_from_this(), index);
}

void RaplPackages::sample_locked() {
  double delta_uj = 0;
  for (auto& d : domains_) {
    auto now = read_number(d.energy_path);
    if (!now.ok()) {  // keep the count as it is; the next good reading catches up
      spdlog::warn("rapl: {}", now.status().message());
      continue;
    }
    delta_uj += *now >= d.last_uj ? *now - d.last_uj : d.max_range_uj - d.last_uj + *now;
    d.last_uj = *now;
  }
  const double joules = delta_uj / 1e6;
  total_joules_ += joules;
  const int n = slots();
  const auto busy = static_cast<int>(std::count(busy_.begin(), busy_.end(), true));
  for (int i = 0; i < n; ++i)
    if (busy == 0 || busy_[static_cast<size_t>(i)]) slot_joules_[static_cast<size_t>(i)] += joules / (busy ? busy : n);
  const int64_t now_ns = clock_.monotonic_ns();
  if (now_ns - window_start_ns_ >= kPowerWindowNs) {
    watts_ = (total_joules_ - window_start_joules_) / (static_cast<double>(now_ns - window_start_ns_) / 1e9);
    window_start_ns_ = now_ns;
    window_start_joules_ = total_joules_;
  }
}

double RaplPackages::share_locked(int index) const {
  const auto busy = static_cast<int>(std::count(busy_.begin(), busy_.end(), true));
  if (busy == 0) return 1.0 / slots();
  return busy_[static_cast<size_t>(index)] ? 1.0 / busy : 0.0;
}

void RaplPackages::sample() {
  std::lock_guard lock(mu_);
  sample_locked();
}

double RaplPackages::total_joules() {
  std::lock_guard lock(mu_);
  sample_locked();
  return total_joules_;
}

std::vector<std::string> RaplPackages::domain_names() const {
  std::lock_guard lock(mu_);
  std::vector<std::string> out;
  for (const auto& d : domains_) out.push_back(d.name);
  return out;
}

double RaplPackages::slot_joules(int index) {
  std::lock_guard lock(mu_);
  sample_locked();
  return slot_joules_.at(static_cast<size_t>(index));
}

double RaplPackages::slot_watts(int index) {
  std::lock_guard lock(mu_);
  sample_locked();
  return watts_ * share_locked(index);
}

void RaplPackages::set_slot_busy(int index, bool busy) {
  std::lock_guard lock(mu_);
  sample_locked();  // the energy so far belongs to the slots as they were
  busy_.at(static_cast<size_t>(index)) = busy;
}

}  // namespace mufl::scheduler
