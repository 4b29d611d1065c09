#include "fl/client_states.h"

#include <charconv>
#include <iterator>
#include <utility>

namespace mufl::fl {
namespace {

// A decimal number of `s` from `pos` up to `stop`, no sign, no leading zero but "0".
bool take_number(const std::string& s, size_t& pos, char stop, int64_t& out) {
  const size_t end = s.find(stop, pos);
  if (end == std::string::npos || end == pos) return false;
  if (s[pos] == '0' && end - pos > 1) return false;
  const auto [ptr, ec] = std::from_chars(s.data() + pos, s.data() + end, out);
  if (ec != std::errc() || ptr != s.data() + end) return false;
  pos = end + 1;
  return true;
}

}  // namespace

bool parse_state_name(const std::string& name, int64_t& client, int64_t& round) {
  if (name.size() < 2 || name[0] != 'c') return false;
  size_t pos = 1;
  if (!take_number(name, pos, '.', client)) return false;
  if (pos >= name.size() || name[pos] != 'r') return false;
  ++pos;
  if (!take_number(name, pos, '.', round)) return false;
  return name.compare(pos, std::string::npos, "state") == 0;
}

ClientStates::ClientStates(std::string dir, Env& env) : dir_(std::move(dir)), env_(env) {}

Status ClientStates::open() {
  if (opened_) return Status::ok();
  auto names = env_.list(dir_);
  if (!names.ok()) return names.status();
  for (const auto& name : *names) {
    int64_t client = 0, round = 0;
    if (parse_state_name(name, client, round)) rounds_[client].insert(round);
  }
  opened_ = true;
  return Status::ok();
}

std::string ClientStates::path(int64_t client, int64_t round) const {
  return dir_ + "/c" + std::to_string(client) + ".r" + std::to_string(round) + ".state";
}

Result<std::optional<std::string>> ClientStates::load(int64_t client, int64_t round) {
  const auto it = rounds_.find(client);
  if (it == rounds_.end()) return std::optional<std::string>();
  auto below = it->second.lower_bound(round);  // the first tag ≥ round
  if (below == it->second.begin()) return std::optional<std::string>();
  auto bytes = env_.read(path(client, *std::prev(below)));
  if (!bytes.ok()) return bytes.status();
  return std::optional<std::string>(std::move(*bytes));
}

Status ClientStates::save(int64_t client, int64_t round, const std::string& bytes) {
  if (Status s = write_file_durably(env_, path(client, round), bytes); !s.is_ok()) return s;
  rounds_[client].insert(round);
  return Status::ok();
}

Status ClientStates::release(int64_t oldest_round) {
  if (Status s = open(); !s.is_ok()) return s;
  Status first = Status::ok();
  for (auto& [client, tags] : rounds_) {
    auto keep = tags.upper_bound(oldest_round);  // the first tag > oldest_round
    if (keep == tags.begin()) continue;          // nothing at or below it
    keep = std::prev(keep);                      // the newest at or below: still needed
    for (auto it = tags.begin(); it != keep;) {
      if (Status s = env_.remove(path(client, *it)); !s.is_ok()) {
        if (first.is_ok()) first = s;
        ++it;
        continue;
      }
      it = tags.erase(it);
    }
  }
  return first;
}

size_t ClientStates::files() const {
  size_t n = 0;
  for (const auto& [client, tags] : rounds_) n += tags.size();
  return n;
}

}  // namespace mufl::fl
