#include "service/board_poll.h"

#include <cerrno>
#include <cstdlib>

namespace mufl::service {
namespace {
constexpr int64_t kDefaultWaitSeconds = 30, kMaxWaitSeconds = 60;
}  // namespace

BoardPoll::BoardPoll(federation::WorkBoard& board, std::string key, std::chrono::milliseconds wait, Reply reply)
    : board_(board), key_(std::move(key)), wait_(wait), reply_(std::move(reply)) {}

void BoardPoll::start(std::function<void(HttpResponse)> done) {
  std::lock_guard lock(mu_);
  const auto wait = cancelled_ ? std::chrono::milliseconds(0) : wait_;
  id_ = board_.wait(key_, wait, [reply = reply_, done = std::move(done)](std::optional<std::string> item) {
    done(reply(std::move(item)));
  });
}

void BoardPoll::cancel() {
  federation::WorkBoard::WaiterId id;
  {
    std::lock_guard lock(mu_);
    cancelled_ = true;
    id = id_;
  }
  if (id != 0) board_.cancel(id);
}

HttpResponse BoardPoll::item_or_no_content(std::optional<std::string> item) {
  HttpResponse r;
  if (item) {
    r.body = std::move(*item);
  } else {
    r.status = 204;
    r.content_type.clear();
  }
  r.headers.emplace_back("Cache-Control", "no-store");
  return r;
}

Result<std::chrono::milliseconds> parse_poll_wait(const HttpRequest& req) {
  std::vector<FieldError> errors;
  int64_t seconds = kDefaultWaitSeconds;
  for (const auto& [key, value] : req.query) {
    if (key != "wait") {
      errors.push_back({key, "unknown query parameter; this route takes wait"});
      continue;
    }
    char* end = nullptr;
    errno = 0;
    const long long n = std::strtoll(value.c_str(), &end, 10);
    if (value.empty() || *end != '\0' || errno != 0 || n < 0 || n > kMaxWaitSeconds)
      errors.push_back({"wait", "must be an integer number of seconds from 0 to 60"});
    else
      seconds = n;
  }
  if (!errors.empty()) return Status::invalid_argument("the query has invalid parameters", std::move(errors));
  return std::chrono::milliseconds(seconds * 1000);
}

}  // namespace mufl::service
