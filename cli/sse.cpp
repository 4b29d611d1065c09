#include "cli/sse.h"

namespace mufl::cli {

void SseParser::feed(std::string_view bytes, const std::function<void(const SseEvent&)>& on_event) {
  for (char c : bytes) {
    if (after_cr_) {
      after_cr_ = false;
      if (c == '\n') continue;  // the \n of a \r\n
    }
    if (c == '\r' || c == '\n') {
      after_cr_ = c == '\r';
      std::string l;
      l.swap(pending_);
      line(l, on_event);
    } else {
      pending_ += c;
    }
  }
}

void SseParser::line(std::string_view l, const std::function<void(const SseEvent&)>& on_event) {
  if (l.empty()) {  // a blank line ends the event
    if (have_data_) {
      event_.id = last_id_;
      if (event_.event.empty()) event_.event = "message";
      on_event(event_);
    }
    event_ = SseEvent{};
    have_data_ = false;
    return;
  }
  if (l.front() == ':') return;  // a comment
  const size_t colon = l.find(':');
  std::string_view field = l.substr(0, colon), value;
  if (colon != std::string_view::npos) {
    value = l.substr(colon + 1);
    if (!value.empty() && value.front() == ' ') value.remove_prefix(1);
  }
  if (field == "data") {
    if (have_data_) event_.data += '\n';
    event_.data.append(value);
    have_data_ = true;
  } else if (field == "event") {
    event_.event = std::string(value);
  } else if (field == "id") {
    if (value.find('\0') == std::string_view::npos) last_id_ = std::string(value);
  }
}

}  // namespace mufl::cli
