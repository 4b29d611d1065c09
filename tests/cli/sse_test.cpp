#include <catch2/catch.hpp>

#include <string>
#include <vector>

#include "cli/sse.h"

using mufl::cli::SseEvent;
using mufl::cli::SseParser;

namespace {

std::vector<SseEvent> feed_in_pieces(SseParser& p, const std::string& text, size_t piece) {
  std::vector<SseEvent> out;
  for (size_t i = 0; i < text.size(); i += piece)
    p.feed(std::string_view(text).substr(i, piece), [&](const SseEvent& e) { out.push_back(e); });
  return out;
}

}  // namespace

TEST_CASE("cli sse: events come out whole however the bytes are cut") {
  const std::string stream =
      ": keep-alive\n\n"
      "id: 7\nevent: round.finished\ndata: {\"round\":1}\n\n"
      "id: 8\r\nevent: activity.state\r\ndata: {\"a\":\r\ndata: 1}\r\n\r\n"
      "id: 9\revent: x\rdata:no-space\r\r";
  for (size_t piece : {size_t{1}, size_t{2}, size_t{5}, stream.size()}) {
    INFO("piece " << piece);
    SseParser p;
    auto events = feed_in_pieces(p, stream, piece);
    REQUIRE(events.size() == 3);
    CHECK(events[0].id == "7");
    CHECK(events[0].event == "round.finished");
    CHECK(events[0].data == "{\"round\":1}");
    CHECK(events[1].id == "8");
    CHECK(events[1].data == "{\"a\":\n1}");
    CHECK(events[2].event == "x");
    CHECK(events[2].data == "no-space");
    CHECK(p.last_event_id() == "9");
  }
}

TEST_CASE("cli sse: an unfinished event waits, comments and data-less events are not dispatched") {
  SseParser p;
  std::vector<SseEvent> events;
  auto sink = [&](const SseEvent& e) { events.push_back(e); };
  p.feed("id: 3\n\n: keep-alive\n\ndata: x\n", sink);
  CHECK(events.empty());
  CHECK(p.last_event_id() == "3");  // an id without data still counts for Last-Event-ID
  p.feed("\n", sink);
  REQUIRE(events.size() == 1);
  CHECK(events[0].event == "message");
  CHECK(events[0].id == "3");
  CHECK(events[0].data == "x");
}
