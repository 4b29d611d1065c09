// WorkBoard: leases offered to clients, long polls answered by an offer, their deadline, a
// cancel or shutdown, and every callback called exactly once.
#include "federation/work_board.h"

#include <catch2/catch.hpp>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

using namespace mufl::federation;
using namespace std::chrono_literals;

namespace {

// Collects what a waiter was called with, and how often.
struct Outcome {
  std::mutex mu;
  std::condition_variable cv;
  int calls = 0;
  std::optional<std::string> lease;

  WorkBoard::Callback callback() {
    return [this](std::optional<std::string> l) {
      std::lock_guard lock(mu);
      ++calls;
      lease = std::move(l);
      cv.notify_all();
    };
  }
  // Waits for the first call (at most 10 s) and returns how many came.
  int wait_called() {
    std::unique_lock lock(mu);
    cv.wait_for(lock, 10s, [&] { return calls > 0; });
    return calls;
  }
};

}  // namespace

TEST_CASE("work board: a waiting client gets the lease offered to it, and only it") {
  WorkBoard board;
  Outcome a, b;
  CHECK(board.wait("cli_a", 30s, a.callback()) != 0);
  CHECK(board.wait("cli_b", 30s, b.callback()) != 0);
  CHECK(board.waiting() == 2);
  board.offer("cli_a", "lea_1", R"({"id":"lea_1"})");
  REQUIRE(a.wait_called() == 1);
  CHECK(a.lease == std::optional<std::string>(R"({"id":"lea_1"})"));
  CHECK(b.calls == 0);
  CHECK(board.waiting() == 1);
  board.cancel(0);  // unknown: nothing happens
  board.shutdown();
  REQUIRE(b.wait_called() == 1);
  CHECK_FALSE(b.lease);
}

TEST_CASE("work board: an open lease is handed out again until withdrawn, oldest first") {
  WorkBoard board;
  board.offer("cli_a", "lea_2", "two");
  board.offer("cli_a", "lea_1", "one");  // offered later: second although its id sorts first
  for (int i = 0; i < 2; ++i) {
    Outcome o;
    CHECK(board.wait("cli_a", 30s, o.callback()) == 0);  // answered at once
    CHECK(o.calls == 1);
    CHECK(o.lease == std::optional<std::string>("two"));
  }
  board.withdraw("lea_2");
  CHECK(board.peek("cli_a") == std::optional<std::string>("one"));
  board.withdraw("lea_1");
  board.withdraw("lea_unknown");
  CHECK_FALSE(board.peek("cli_a"));
  CHECK(board.open_leases() == 0);
}

TEST_CASE("work board: a draw offered at once wakes each waiting client with its own oldest lease") {
  WorkBoard board;
  board.offer("cli_b", "lea_old", "b-old");  // cli_b already holds an older lease
  Outcome a, b, c, late;
  board.wait("cli_a", 30s, a.callback());
  board.wait("cli_c", 30s, c.callback());
  board.wait("cli_c", 30s, late.callback());  // two polls of one client: both answered
  CHECK(board.wait("cli_b", 30s, b.callback()) == 0);  // answered at once with its old lease
  CHECK(b.lease == std::optional<std::string>("b-old"));
  board.offer_all({{"cli_a", "lea_a", "a-new"}, {"cli_b", "lea_b", "b-new"}, {"cli_c", "lea_c", "c-new"}});
  CHECK(a.lease == std::optional<std::string>("a-new"));
  CHECK(c.lease == std::optional<std::string>("c-new"));
  CHECK(late.lease == std::optional<std::string>("c-new"));
  CHECK(board.waiting() == 0);
  CHECK(board.open_leases() == 4);
  CHECK(board.peek("cli_b") == std::optional<std::string>("b-old"));  // oldest first
  board.offer("cli_d", "lea_a", "a-moved");  // the same lease offered to another client moves
  CHECK_FALSE(board.peek("cli_a"));
  CHECK(board.peek("cli_d") == std::optional<std::string>("a-moved"));
  CHECK(board.open_leases() == 4);
}

TEST_CASE("work board: a wait ends empty at its deadline, or at once with no wait") {
  WorkBoard board;
  Outcome now, later, cancelled;
  CHECK(board.wait("cli_a", 0ms, now.callback()) == 0);
  CHECK(now.calls == 1);
  CHECK_FALSE(now.lease);

  const auto start = std::chrono::steady_clock::now();
  board.wait("cli_a", 200ms, later.callback());
  auto id = board.wait("cli_b", 30s, cancelled.callback());
  REQUIRE(later.wait_called() == 1);
  CHECK(std::chrono::steady_clock::now() - start >= 200ms);
  CHECK_FALSE(later.lease);
  CHECK(cancelled.calls == 0);  // its deadline is far off
  board.cancel(id);
  CHECK(cancelled.calls == 1);
  board.cancel(id);  // a second cancel is ignored
  CHECK(cancelled.calls == 1);

  board.shutdown();
  Outcome after;
  CHECK(board.wait("cli_a", 30s, after.callback()) == 0);  // a shut board answers at once
  CHECK(after.calls == 1);
}

TEST_CASE("work board: racing offers, deadlines and cancels call every waiter exactly once") {
  WorkBoard board;
  constexpr int kClients = 200;
  std::vector<Outcome> outcomes(kClients);
  std::vector<WorkBoard::WaiterId> ids(kClients);
  for (int i = 0; i < kClients; ++i)
    ids[static_cast<size_t>(i)] =
        board.wait("cli_" + std::to_string(i), std::chrono::milliseconds(1 + i % 7), outcomes[static_cast<size_t>(i)].callback());
  std::thread offers([&] {
    for (int i = 0; i < kClients; i += 2) board.offer("cli_" + std::to_string(i), "lea_" + std::to_string(i), "x");
  });
  std::thread cancels([&] {
    for (int i = 1; i < kClients; i += 2) board.cancel(ids[static_cast<size_t>(i)]);
  });
  offers.join();
  cancels.join();
  for (auto& o : outcomes) CHECK(o.wait_called() == 1);
  std::this_thread::yield();
  for (auto& o : outcomes) CHECK(o.calls == 1);
  CHECK(board.waiting() == 0);
}
