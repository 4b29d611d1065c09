#pragma once
// An incremental parser of a text/event-stream body (the HTML Living Standard's Server-Sent
// Events): bytes go in as they arrive, in pieces of any size; whole events come out.
#include <functional>
#include <string>
#include <string_view>

namespace mufl::cli {

struct SseEvent {
  std::string id;     // the last id: field seen so far in the stream ("" when none)
  std::string event;  // the event: field; "message" when the event had none
  std::string data;   // the data: lines joined with '\n'
};

class SseParser {
 public:
  // Parses `bytes` and calls `on_event` for each event that a blank line completes. Comment
  // lines (": keep-alive") and unknown fields are skipped; an event without data is not
  // dispatched (its id still counts). Lines end in \n, \r\n or \r, split anywhere.
  void feed(std::string_view bytes, const std::function<void(const SseEvent&)>& on_event);

  // The id to send as Last-Event-ID when reconnecting ("" when the stream named none).
  const std::string& last_event_id() const { return last_id_; }

 private:
  void line(std::string_view l, const std::function<void(const SseEvent&)>& on_event);

  std::string pending_;  // an unfinished line
  bool after_cr_ = false;
  bool have_data_ = false;
  std::string last_id_;
  SseEvent event_;
};

}  // namespace mufl::cli
