#include "service/sse.h"

#include <algorithm>
#include <nlohmann/json.hpp>

#include "core/strings.h"
#include "core/time_format.h"

namespace mufl::service {

const std::vector<std::string>& event_types() {
  static const std::vector<std::string> types = {"activity.state", "round.finished", "group.merged", "group.split",
                                                 "device.changed", "budget.changed"};
  return types;
}

std::string event_json(const storage::StoredEvent& e) {
  std::string out = "{\"id\":" + std::to_string(e.id) + ",\"type\":" + nlohmann::json(e.type).dump() +
                    ",\"time\":\"" + format_rfc3339(e.time_unix_ms) + "\"";
  // The stored fields are a compact JSON object: splice its members in after ours.
  const std::string& d = e.data_json;
  const bool object = d.size() >= 2 && d.front() == '{' && d.back() == '}';
  const bool members = object && d.find_first_not_of(" \t\r\n", 1) != d.size() - 1;
  if (members) {
    out += ',';
    out.append(d, 1, std::string::npos);
  } else {
    out += '}';
  }
  return out;
}

std::string format_sse_event(const storage::StoredEvent& e) {
  std::string out = "id: " + std::to_string(e.id) + "\nevent: " + e.type + "\n";
  const std::string json = event_json(e);
  size_t start = 0;
  for (;;) {
    const size_t nl = json.find('\n', start);
    out += "data: ";
    out.append(json, start, nl == std::string::npos ? std::string::npos : nl - start);
    out += '\n';
    if (nl == std::string::npos) break;
    start = nl + 1;
  }
  out += '\n';
  return out;
}

std::optional<int64_t> parse_event_id(std::string_view text) {
  if (text.empty() || text.size() > 19 || text.find_first_not_of("0123456789") != std::string_view::npos)
    return std::nullopt;
  // 19 digits may pass 2^63 − 1 = 9223372036854775807: compare as text of equal length.
  if (text.size() == 19 && text > "9223372036854775807") return std::nullopt;
  int64_t v = 0;
  for (char c : text) v = v * 10 + (c - '0');
  return v;
}

Result<EventRequest> parse_event_request(const HttpRequest& req) {
  EventRequest out;
  std::vector<FieldError> errors;
  const std::string id_rule = "must be an event id: an integer from 0 to 9223372036854775807";
  for (const auto& [key, value] : req.query) {
    if (key == "after") {
      if (auto id = parse_event_id(value))
        out.after = *id;
      else
        errors.push_back({"after", id_rule});
    } else if (key == "activity") {
      if (value.empty())
        errors.push_back({"activity", "must be an activity id"});
      else
        out.activity_id = value;
    } else if (key == "types") {
      const auto& known = event_types();
      for (std::string_view t : split_fields(value, ',')) {
        if (std::find(known.begin(), known.end(), t) == known.end()) {
          errors.push_back({"types", t.empty() ? std::string("has an empty item; give a comma-separated list of types")
                                               : "unknown event type '" + std::string(t) +
                                                     "'; one of activity.state, round.finished, group.merged, "
                                                     "group.split, device.changed, budget.changed"});
          continue;
        }
        if (std::find(out.types.begin(), out.types.end(), t) == out.types.end()) out.types.emplace_back(t);
      }
    } else {
      errors.push_back({key, "unknown query parameter; this route takes after, activity and types"});
    }
  }
  // An EventSource that reconnects sends the last id it saw: newer than any ?after in its URL.
  if (auto last = req.header("last-event-id")) {
    if (auto id = parse_event_id(*last))
      out.after = *id;
    else
      errors.push_back({"Last-Event-ID", id_rule});
  }
  if (!errors.empty()) return Status::invalid_argument("the event stream request is invalid", std::move(errors));
  return out;
}

}  // namespace mufl::service
