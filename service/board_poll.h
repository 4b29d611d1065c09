#pragma once
// The long polls of a federation::WorkBoard: a federation client's work (GET
// /v1/clients/me/work) and a cluster worker's rounds (GET /v1/workers/{id}/work). The reply
// comes when the board offers something to the key or the wait ends; no thread waits meanwhile.
#include <chrono>
#include <functional>
#include <mutex>
#include <optional>
#include <string>

#include "core/result.h"
#include "federation/work_board.h"
#include "service/deferred_response.h"
#include "service/http_types.h"

namespace mufl::service {

class BoardPoll final : public DeferredResponse {
 public:
  // The reply to what the board gave (nullopt: nothing before the wait ended, or shutdown).
  using Reply = std::function<HttpResponse(std::optional<std::string>)>;
  BoardPoll(federation::WorkBoard& board, std::string key, std::chrono::milliseconds wait, Reply reply);

  void start(std::function<void(HttpResponse)> done) override;
  void cancel() override;

  // 200 with the item as the body, or 204 without one; Cache-Control: no-store.
  static HttpResponse item_or_no_content(std::optional<std::string> item);

 private:
  federation::WorkBoard& board_;
  const std::string key_;
  const std::chrono::milliseconds wait_;
  const Reply reply_;
  std::mutex mu_;
  federation::WorkBoard::WaiterId id_ = 0;
  bool cancelled_ = false;
};

// The `wait` query parameter of a long poll: whole seconds from 0 to 60, default 30; any other
// parameter is refused (kInvalidArgument naming it).
Result<std::chrono::milliseconds> parse_poll_wait(const HttpRequest& req);

}  // namespace mufl::service
