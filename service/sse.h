#pragma once
// Server-Sent Events for GET /v1/events (docs/events.md): the wire text of an event, and the
// strict reading of a request's resume point (Last-Event-ID, ?after) and filters.
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/result.h"
#include "service/http_types.h"
#include "storage/store.h"

namespace mufl::service {

// Written when a stream has been silent for the keep-alive interval.
inline constexpr std::string_view kKeepAliveComment = ": keep-alive\n\n";

// The types an event may have, in the order docs/events.md lists them.
const std::vector<std::string>& event_types();

// The data line's JSON: {"id":…,"type":…,"time":"…Z"} followed by the stored fields of `e`
// (its data_json; anything but a JSON object there counts as no fields).
std::string event_json(const storage::StoredEvent& e);

// "id: N\nevent: TYPE\ndata: JSON\n\n". A line break inside the JSON (there is none in compact
// JSON) would start another data line, as SSE defines.
std::string format_sse_event(const storage::StoredEvent& e);

// An event id as Last-Event-ID or ?after carries it: decimal digits only, 0 to 2^63−1.
// nullopt otherwise (empty, a sign, spaces, too large).
std::optional<int64_t> parse_event_id(std::string_view text);

// What a GET /v1/events request asks for.
struct EventRequest {
  std::optional<int64_t> after;            // replay after this id; nullopt: live only
  std::optional<std::string> activity_id;  // ?activity=
  std::vector<std::string> types;          // ?types=, deduplicated; empty: every type
};

// Reads Last-Event-ID (it wins over ?after), ?after, ?activity and ?types. kInvalidArgument,
// naming each bad field, for a malformed id, an empty or unknown type, an empty activity, or an
// unknown query parameter. Whether the activity exists is the caller's question.
Result<EventRequest> parse_event_request(const HttpRequest& request);

}  // namespace mufl::service
