// service/sse.h: the wire text of an event, and the strict reading of GET /v1/events requests.
#include "service/sse.h"

#include <catch2/catch.hpp>

#include <limits>
#include <nlohmann/json.hpp>

using namespace mufl;
using namespace mufl::service;

namespace {

storage::StoredEvent event(int64_t id, const std::string& type, const std::string& data) {
  storage::StoredEvent e;
  e.id = id;
  e.time_unix_ms = 1'767'225'600'123;  // 2026-01-01T00:00:00.123Z
  e.tenant_id = "ten_a";
  e.activity_id = "act_1";
  e.type = type;
  e.data_json = data;
  return e;
}

HttpRequest request(std::map<std::string, std::string> query, std::vector<std::pair<std::string, std::string>> headers = {}) {
  HttpRequest r;
  r.method = "GET";
  r.path = "/v1/events";
  r.query = std::move(query);
  r.headers = std::move(headers);
  return r;
}

std::vector<std::string> error_fields(const Status& s) {
  std::vector<std::string> out;
  for (const auto& e : s.field_errors()) out.push_back(e.field);
  return out;
}

}  // namespace

TEST_CASE("sse: an event is id, event and one data line of JSON with id, type and time first") {
  auto e = event(42, "activity.state", R"({"activity_id":"act_1","state":"queued","previous":null,"reason":""})");
  CHECK(format_sse_event(e) ==
        "id: 42\nevent: activity.state\n"
        R"(data: {"id":42,"type":"activity.state","time":"2026-01-01T00:00:00.123Z","activity_id":"act_1",)"
        R"("state":"queued","previous":null,"reason":""})"
        "\n\n");
  auto j = nlohmann::json::parse(event_json(e));
  CHECK(j["id"] == 42);
  CHECK(j["state"] == "queued");
}

TEST_CASE("sse: empty or broken stored fields give just id, type and time, and a line break starts a data line") {
  CHECK(event_json(event(1, "device.changed", "{}")) ==
        R"({"id":1,"type":"device.changed","time":"2026-01-01T00:00:00.123Z"})");
  CHECK(event_json(event(1, "device.changed", "not json")) ==
        R"({"id":1,"type":"device.changed","time":"2026-01-01T00:00:00.123Z"})");
  const std::string text = format_sse_event(event(2, "device.changed", "{\"a\":1,\n\"b\":2}"));
  CHECK(text.find("data: {\"id\":2") != std::string::npos);
  CHECK(text.find("\ndata: \"b\":2}\n\n") != std::string::npos);
}

TEST_CASE("sse: event ids are decimal digits from 0 to 2^63-1") {
  CHECK(parse_event_id("0") == 0);
  CHECK(parse_event_id("1234") == 1234);
  CHECK(parse_event_id("9223372036854775807") == std::numeric_limits<int64_t>::max());
  for (const char* bad : {"", "-1", "+1", " 1", "1 ", "1a", "0x10", "9223372036854775808", "99999999999999999999"})
    CHECK_FALSE(parse_event_id(bad).has_value());
}

TEST_CASE("sse: a request reads after, activity and types, and Last-Event-ID wins over after") {
  auto r = parse_event_request(request({{"after", "5"}, {"activity", "act_1"}, {"types", "round.finished,activity.state,round.finished"}}));
  REQUIRE(r.ok());
  CHECK(r->after == 5);
  CHECK(r->activity_id == std::optional<std::string>("act_1"));
  CHECK(r->types == std::vector<std::string>{"round.finished", "activity.state"});

  auto both = parse_event_request(request({{"after", "0"}}, {{"last-event-id", "17"}}));
  REQUIRE(both.ok());
  CHECK(both->after == 17);

  auto live = parse_event_request(request({}));
  REQUIRE(live.ok());
  CHECK_FALSE(live->after.has_value());
  CHECK(live->types.empty());
}

TEST_CASE("sse: a bad id, type, activity or parameter is a 400 naming each field") {
  auto r = parse_event_request(request({{"after", "-1"}, {"types", "round.finished,bogus"}, {"limit", "3"}},
                                       {{"last-event-id", "x"}}));
  REQUIRE(r.status().is_invalid_argument());
  CHECK(error_fields(r.status()) == std::vector<std::string>{"after", "limit", "types", "Last-Event-ID"});
  CHECK(parse_event_request(request({{"types", ""}})).status().is_invalid_argument());
  CHECK(parse_event_request(request({{"types", "activity.state,"}})).status().is_invalid_argument());
  CHECK(parse_event_request(request({{"activity", ""}})).status().is_invalid_argument());
  CHECK(parse_event_request(request({{"after", "99999999999999999999"}})).status().is_invalid_argument());
}
