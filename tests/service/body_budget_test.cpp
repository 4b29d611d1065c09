// BodyBudget: first come, first served room for large request bodies.
#include "service/body_budget.h"

#include <catch2/catch.hpp>

#include <vector>

using mufl::service::BodyBudget;

TEST_CASE("body budget: grants what fits at once, queues the rest in order, and wakes them as room frees") {
  BodyBudget budget(100);
  std::vector<int> granted;
  budget.acquire(60, [&] { granted.push_back(1); });
  budget.acquire(30, [&] { granted.push_back(2); });
  budget.acquire(50, [&] { granted.push_back(3); });  // 140 > 100: waits
  budget.acquire(5, [&] { granted.push_back(4); });   // would fit, but waits behind 3 (no overtaking)
  CHECK(granted == std::vector<int>{1, 2});
  CHECK(budget.held() == 90);
  CHECK(budget.waiting() == 2);
  budget.release(30);  // 60 + 50 = 110 still does not fit
  CHECK(granted == std::vector<int>{1, 2});
  budget.release(60);  // empty: 3 and then 4 fit
  CHECK(granted == std::vector<int>{1, 2, 3, 4});
  CHECK(budget.held() == 55);
  CHECK(budget.waiting() == 0);
}

TEST_CASE("body budget: a request larger than the whole budget is granted alone, never starved") {
  BodyBudget budget(100);
  std::vector<int> granted;
  budget.acquire(10, [&] { granted.push_back(1); });
  budget.acquire(500, [&] { granted.push_back(2); });
  budget.acquire(10, [&] { granted.push_back(3); });
  CHECK(granted == std::vector<int>{1});
  budget.release(10);
  CHECK(granted == std::vector<int>{1, 2});  // alone
  CHECK(budget.held() == 500);
  budget.release(500);
  CHECK(granted == std::vector<int>{1, 2, 3});
  BodyBudget alone(100);
  bool big = false;
  alone.acquire(1000, [&] { big = true; });  // nothing held: at once
  CHECK(big);
}

TEST_CASE("body budget: a held grant releases when its last copy goes") {
  BodyBudget budget(100);
  bool second = false;
  budget.acquire(80, [] {});
  auto grant = BodyBudget::hold(budget, 80);
  budget.acquire(80, [&] { second = true; });
  auto copy = grant;
  grant.reset();
  CHECK_FALSE(second);
  copy.reset();
  CHECK(second);
  CHECK(budget.held() == 80);
}
