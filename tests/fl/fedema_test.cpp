// FedEMA's rule on hand-made tensors (fl/fedema.h) and the clients' kept states on the disk
// (fl/client_states.h, fl/fedema_clients.h).
#include <catch2/catch.hpp>

#include "core/file_io.h"
#include "fl/client_states.h"
#include "fl/fedema.h"
#include "fl/fedema_clients.h"
#include "fl/model.h"
#include "fl/tasks.h"
#include "tests/support/temp_dir.h"
// Last: after the torch headers (Catch's CHECK, not glog's).
#include "tests/support/catch_over_torch.h"

using namespace mufl;
using namespace mufl::fl;

namespace {

// Global {[1, 2], [3]} and local {[4, 6], [3]}: ‖w_g − w_l‖ = √(3² + 4²) = 5.
Weights global_w() { return {torch::tensor({1.0f, 2.0f}), torch::tensor({3.0f})}; }
Weights local_w() { return {torch::tensor({4.0f, 6.0f}), torch::tensor({3.0f})}; }

std::vector<float> values(const torch::Tensor& t) {
  auto c = t.contiguous();
  return std::vector<float>(c.data_ptr<float>(), c.data_ptr<float>() + c.numel());
}

MultiTaskNet net(const std::vector<std::string>& tasks) {
  std::vector<TaskDef> defs;
  for (const auto& t : tasks) defs.push_back(*find_task(t, 10));
  return MultiTaskNet(defs, tasks, InputShape{1, 28, 28});
}

}  // namespace

TEST_CASE("fedema: the divergence is the L2 norm of all parameters as one vector", "[fedema]") {
  CHECK(weight_distance(global_w(), local_w()) == Approx(5.0).epsilon(1e-12));
  CHECK(weight_distance(global_w(), global_w()) == 0.0);
}

TEST_CASE("fedema: mu is lambda times the divergence, clamped at 1", "[fedema]") {
  CHECK(fedema_mu(0.1, 5.0) == Approx(0.5));
  CHECK(fedema_mu(0.2, 5.0) == 1.0);
  CHECK(fedema_mu(1.0, 5.0) == 1.0);  // clamped, not 5
  CHECK(fedema_mu(0.3, 0.0) == 0.0);
}

TEST_CASE("fedema: lambda auto is tau over the first divergence, then kept", "[fedema]") {
  CHECK(fedema_lambda(0.0, 0.0, 5.0) == Approx(0.7 / 5.0));  // auto, first divergence
  CHECK(fedema_lambda(0.0, 0.3, 5.0) == 0.3);                // auto, decided before: kept
  CHECK(fedema_lambda(0.25, 0.3, 5.0) == 0.25);              // given: always
  CHECK(fedema_lambda(0.0, 0.0, 0.0) == 0.0);                // no divergence: undecided
  CHECK(fedema_lambda(0.0, 0.0, 2.0, 0.5) == Approx(0.25));  // another tau
}

TEST_CASE("fedema: the start mixes mu of the local model with 1 - mu of the global one", "[fedema]") {
  const Weights g = global_w(), l = local_w();
  SECTION("no kept model: the global model, lambda as given") {
    FedEmaStart s = fedema_start(g, nullptr, 0.0, 0.0);
    CHECK(s.mu == 0.0);
    CHECK(s.lambda == 0.0);
    CHECK(values(s.weights[0]) == std::vector<float>{1.0f, 2.0f});
    CHECK(s.weights[0].data_ptr() != g[0].data_ptr());  // a copy
  }
  SECTION("auto: at the first divergence mu is tau") {
    FedEmaStart s = fedema_start(g, &l, 0.0, 0.0);
    CHECK(s.divergence == Approx(5.0));
    CHECK(s.lambda == Approx(0.14));
    CHECK(s.mu == Approx(0.7));
    const auto w = values(s.weights[0]);
    CHECK(w[0] == Approx(0.7 * 4 + 0.3 * 1));  // μ on the local side
    CHECK(w[1] == Approx(0.7 * 6 + 0.3 * 2));
    CHECK(values(s.weights[1])[0] == Approx(3.0f));
  }
  SECTION("a kept lambda with a smaller divergence gives a smaller mu") {
    const Weights near = {torch::tensor({1.6f, 2.8f}), torch::tensor({3.0f})};  // divergence 1
    FedEmaStart s = fedema_start(g, &near, 0.0, 0.14);
    CHECK(s.divergence == Approx(1.0));
    CHECK(s.mu == Approx(0.14));
    CHECK(values(s.weights[0])[0] == Approx(0.14 * 1.6 + 0.86 * 1.0));
  }
  SECTION("mu clamped at 1: the local model exactly") {
    FedEmaStart s = fedema_start(g, &l, 1.0, 0.0);
    CHECK(s.mu == 1.0);
    CHECK(values(s.weights[0]) == std::vector<float>{4.0f, 6.0f});
  }
}

TEST_CASE("client states: round R reads the newest state below R, and release keeps what trusted rounds need",
          "[fedema]") {
  testing::TempDir dir;
  ClientStates states(dir.file("clients"));
  REQUIRE(states.open().is_ok());
  CHECK(!states.load(3, 5).value().has_value());  // no state yet
  REQUIRE(states.save(3, 2, "two").is_ok());
  REQUIRE(states.save(3, 4, "four").is_ok());
  REQUIRE(states.save(3, 6, "six").is_ok());
  REQUIRE(states.save(5, 1, "other").is_ok());
  CHECK(!states.load(3, 2).value().has_value());  // its own round's file is not its past
  CHECK(states.load(3, 3).value().value() == "two");
  CHECK(states.load(3, 5).value().value() == "four");
  CHECK(states.load(3, 6).value().value() == "four");  // a file of round ≥ 6 is ignored in round 6
  CHECK(states.load(3, 7).value().value() == "six");
  CHECK(states.load(5, 9).value().value() == "other");
  // Trusted checkpoints from round 5 on: round 6 still needs "four", round 7 "six".
  REQUIRE(states.release(5).is_ok());
  CHECK(states.files() == 3);
  CHECK(!read_file(states.path(3, 2)).ok());
  CHECK(read_file(states.path(3, 4)).ok());
  CHECK(read_file(states.path(5, 1)).ok());  // its only file: still its newest
  // Another process finds the same files on the disk (temp files and strangers ignored).
  REQUIRE(write_file_durably(dir.file("clients/.c3.r9.state.tmp"), "x").is_ok());
  REQUIRE(write_file_durably(dir.file("clients/notes"), "x").is_ok());
  ClientStates again(dir.file("clients"));
  REQUIRE(again.open().is_ok());
  CHECK(again.files() == 3);
  CHECK(again.load(3, 7).value().value() == "six");
  int64_t c = 0, r = 0;
  CHECK(parse_state_name("c12.r3.state", c, r));
  CHECK((c == 12 && r == 3));
  CHECK(!parse_state_name("c12.r3.state.tmp", c, r));
  CHECK(!parse_state_name("c012.r3.state", c, r));
  CHECK(!parse_state_name("c.r3.state", c, r));
}

TEST_CASE("fedema clients: a kept state serves a model whose heads changed, by name", "[fedema]") {
  testing::TempDir dir;
  torch::manual_seed(1);
  MultiTaskNet two = net({"class", "parity"});
  MultiTaskNet other = net({"class", "magnitude"});  // parity left, magnitude joined
  FedEmaClients ema(dir.file("clients"), 0.0);
  const Weights g2 = get_weights(two);
  // Round 1: no state, the global model; the worker then "trains" (moves) and is kept.
  auto first = ema.start(0, 1, g2, two);
  REQUIRE(first.ok());
  CHECK(first->mu == 0.0);
  {
    torch::NoGradGuard no_grad;
    for (auto& p : two->parameters()) p.add_(0.01);
  }
  REQUIRE(ema.keep(0, 1, two).is_ok());
  // Round 2 with the other model: the encoder and the class head come from the state; the
  // magnitude head from the global model, adding nothing to the divergence.
  torch::manual_seed(2);
  MultiTaskNet fresh = net({"class", "magnitude"});
  const Weights g = get_weights(fresh);
  auto second = ema.start(0, 2, g, other);
  REQUIRE(second.ok());
  CHECK(second->mu == Approx(kFedEmaTau));
  const auto names = weight_names(other);
  const Weights started = get_weights(other);
  for (size_t i = 0; i < names.size(); ++i)
    if (names[i].rfind("head_magnitude", 0) == 0) CHECK(torch::equal(started[i], g[i]));
  // A state that is not one fails with the client named.
  REQUIRE(write_file_durably(ema.states().path(1, 1), "not safetensors").is_ok());
  FedEmaClients reread(dir.file("clients"), 0.0);
  auto bad = reread.start(1, 2, g, other);
  REQUIRE(!bad.ok());
  CHECK_THAT(bad.status().message(), Catch::Contains("client 1"));
}
