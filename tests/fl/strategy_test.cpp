#include <catch2/catch.hpp>

#include "fl/strategy.h"

#include <cmath>
// Last: after the torch headers (Catch's CHECK, not glog's).
#include "tests/support/catch_over_torch.h"

using mufl::fl::ClientUpdate;
using mufl::fl::make_strategy;
using mufl::fl::Strategy;
using mufl::fl::StrategyOptions;
using mufl::fl::Weights;

namespace {

torch::Tensor vec(std::vector<float> v) { return torch::tensor(v); }
torch::Tensor mat2(std::vector<float> v) { return torch::tensor(v).reshape({2, 2}); }
// torch::tensor of doubles gives the default dtype (float32); these stay float64.
torch::Tensor dvec(std::vector<double> v) { return torch::tensor(v, torch::kFloat64); }

std::unique_ptr<Strategy> make(const std::string& name, const StrategyOptions& options = {}) {
  auto r = make_strategy(name, options);
  REQUIRE(r.ok());
  return std::move(r).value();
}

// Element-wise against hand-computed values; float32 results carry ~7 significant digits.
void check_values(const torch::Tensor& t, const std::vector<double>& expected) {
  const auto d = t.detach().to(torch::kFloat64).contiguous().flatten();
  REQUIRE(d.numel() == static_cast<int64_t>(expected.size()));
  for (size_t i = 0; i < expected.size(); ++i) {
    INFO("element " << i);
    CHECK(d[static_cast<int64_t>(i)].item<double>() == Approx(expected[i]).epsilon(1e-6).margin(1e-7));
  }
}

bool equal_all(const Weights& a, const Weights& b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i)
    if (a[i].sizes() != b[i].sizes() || a[i].scalar_type() != b[i].scalar_type() || !torch::equal(a[i], b[i]))
      return false;
  return true;
}

// Random rounds for the properties that do not need hand values.
Weights random_weights() { return {torch::randn({3, 2}), torch::randn({4})}; }
std::vector<ClientUpdate> random_round() {
  return {{random_weights(), 10}, {random_weights(), 25}, {random_weights(), 7}};
}

const std::vector<std::string> kStateful = {"fedavgm", "fedadam", "fedyogi", "fedadagrad"};
const std::vector<std::string> kAll = {"fedavg", "fedavgm", "fedadam", "fedyogi", "fedadagrad"};

// The adaptive hand cases share one setting with round numbers: η = 1, β1 = 0.5, β2 = 0.75,
// τ = 0.5 (so v starts at τ² = 0.25), one tensor of two elements.
//   Round 1: global [1, 1]; clients [3, 1]×1 sample and [3, −1]×3 samples
//            avg = ([3, 1] + 3·[3, −1]) / 4 = [3, −0.5];  Δ1 = avg − global = [2, −1.5];  Δ1² = [4, 2.25]
//            m1 = 0.5·0 + 0.5·Δ1 = [1, −0.75]                     (the same for all three)
//   Round 2: global [0, 0] (the state, not the global, carries the history); one client
//            [0.5, 2]×2 samples:  Δ2 = [0.5, 2];  Δ2² = [0.25, 4]
//            m2 = 0.5·m1 + 0.5·Δ2 = [0.5 + 0.25, −0.375 + 1] = [0.75, 0.625]
StrategyOptions hand_options() {
  StrategyOptions o;
  o.adaptive_learning_rate = 1.0;
  o.beta1 = 0.5;
  o.beta2 = 0.75;
  o.tau = 0.5;
  return o;
}

struct TwoRounds {
  Weights x1, x2;                       // the returned globals
  std::vector<torch::Tensor> s0, s1, s2;  // state before, after round 1, after round 2
};

TwoRounds run_hand_rounds(const std::string& name) {
  auto s = make(name, hand_options());
  TwoRounds r;
  r.s0 = s->state();
  r.x1 = s->aggregate({vec({1, 1})}, {{{vec({3, 1})}, 1}, {{vec({3, -1})}, 3}});
  r.s1 = s->state();
  r.x2 = s->aggregate({vec({0, 0})}, {{{vec({0.5, 2})}, 2}});
  r.s2 = s->state();
  return r;
}

}  // namespace

TEST_CASE("weighted_average: sample-weighted mean over tensors of different shapes", "[strategy]") {
  // Client A (1 sample): [1, 2] and [[0, 4], [8, −4]]; client B (3 samples): [3, 6] and [[4, 0], [0, 4]].
  //   tensor 0: (1·[1, 2] + 3·[3, 6]) / 4 = [10, 20] / 4 = [2.5, 5]
  //   tensor 1: ([[0, 4], [8, −4]] + [[12, 0], [0, 12]]) / 4 = [[12, 4], [8, 8]] / 4 = [[3, 1], [2, 2]]
  const std::vector<ClientUpdate> updates = {{{vec({1, 2}), mat2({0, 4, 8, -4})}, 1},
                                             {{vec({3, 6}), mat2({4, 0, 0, 4})}, 3}};
  const auto avg = mufl::fl::weighted_average(updates);
  REQUIRE(avg.size() == 2);
  CHECK(avg[0].sizes() == vec({0, 0}).sizes());
  CHECK(avg[1].sizes() == mat2({0, 0, 0, 0}).sizes());
  CHECK(avg[0].scalar_type() == torch::kFloat32);
  // Dyadic values: exact, not just close.
  CHECK(torch::equal(avg[0], vec({2.5, 5})));
  CHECK(torch::equal(avg[1], mat2({3, 1, 2, 2})));

  // Float64 accumulation: in float32, 1e8 + 1 rounds back to 1e8 (its spacing there is 8), so a
  // float32 sum of [1e8, 1, −1e8] would give 0; in float64 the mean is (1e8 + 1 − 1e8) / 3 = 1/3.
  const auto big = mufl::fl::weighted_average({{{vec({1e8f})}, 1}, {{vec({1})}, 1}, {{vec({-1e8f})}, 1}});
  check_values(big[0], {1.0 / 3.0});

  // float64 inputs stay float64.
  const auto d = mufl::fl::weighted_average({{{dvec({1.0, 2.0})}, 1}, {{dvec({3.0, 6.0})}, 3}});
  CHECK(d[0].scalar_type() == torch::kFloat64);
  CHECK(torch::equal(d[0], dvec({2.5, 5.0})));
}

TEST_CASE("fedavg: the weighted mean, bit-identical on repeat, no state", "[strategy]") {
  auto s = make("fedavg");
  CHECK(s->name() == "fedavg");
  const Weights global = {vec({100, 100}), mat2({7, 7, 7, 7})};  // FedAvg ignores the global's values
  const std::vector<ClientUpdate> updates = {{{vec({1, 2}), mat2({0, 4, 8, -4})}, 1},
                                             {{vec({3, 6}), mat2({4, 0, 0, 4})}, 3}};
  const auto x = s->aggregate(global, updates);
  CHECK(torch::equal(x[0], vec({2.5, 5})));
  CHECK(torch::equal(x[1], mat2({3, 1, 2, 2})));
  CHECK(s->state().empty());

  torch::manual_seed(1);
  const auto round = random_round();
  const auto g = random_weights();
  CHECK(equal_all(s->aggregate(g, round), s->aggregate(g, round)));
  CHECK(equal_all(make("fedavg")->aggregate(g, round), s->aggregate(g, round)));
}

TEST_CASE("fedavgm: two rounds carry momentum", "[strategy]") {
  // Defaults: η_s = 1, β = 0.9; v starts at 0.
  //   Round 1: global [1, −1]; clients [2, 0]×1, [2, −4]×1 → avg [2, −2]; Δ1 = [1, −1]
  //            v1 = 0.9·0 + Δ1 = [1, −1];  x1 = [1, −1] + 1·v1 = [2, −2]      (= FedAvg)
  //   Round 2: global x1 = [2, −2]; clients [3, −2]×1, [2, −2]×1 → avg [2.5, −2]; Δ2 = [0.5, 0]
  //            v2 = 0.9·[1, −1] + [0.5, 0] = [1.4, −0.9];  x2 = [2, −2] + v2 = [3.4, −2.9]
  //            FedAvg would give [2.5, −2]: the momentum overshoots on the first coordinate and
  //            keeps moving the second although this round's Δ is 0 there.
  auto s = make("fedavgm");
  CHECK(s->name() == "fedavgm");
  CHECK(s->state().empty());
  const auto x1 = s->aggregate({vec({1, -1})}, {{{vec({2, 0})}, 1}, {{vec({2, -4})}, 1}});
  check_values(x1[0], {2, -2});
  REQUIRE(s->state().size() == 1);
  check_values(s->state()[0], {1, -1});
  const auto x2 = s->aggregate(x1, {{{vec({3, -2})}, 1}, {{vec({2, -2})}, 1}});
  check_values(x2[0], {3.4, -2.9});
  check_values(s->state()[0], {1.4, -0.9});
  CHECK(s->state()[0].scalar_type() == torch::kFloat64);

  SECTION("server learning rate scales the step, not the momentum") {
    // η_s = 0.5, β = 0.5, same rounds:
    //   x1 = [1, −1] + 0.5·[1, −1] = [1.5, −1.5]
    //   round 2 with global [2, −2] as above: v2 = 0.5·[1, −1] + [0.5, 0] = [1, −0.5];
    //   x2 = [2, −2] + 0.5·[1, −0.5] = [2.5, −2.25]
    StrategyOptions o;
    o.server_learning_rate = 0.5;
    o.server_momentum = 0.5;
    auto h = make("fedavgm", o);
    check_values(h->aggregate({vec({1, -1})}, {{{vec({2, 0})}, 1}, {{vec({2, -4})}, 1}})[0], {1.5, -1.5});
    check_values(h->aggregate({vec({2, -2})}, {{{vec({3, -2})}, 1}, {{vec({2, -2})}, 1}})[0], {2.5, -2.25});
    check_values(h->state()[0], {1, -0.5});
  }
}

TEST_CASE("fedavgm: momentum 0 and learning rate 1 equal fedavg", "[strategy]") {
  StrategyOptions o;
  o.server_momentum = 0;
  o.server_learning_rate = 1;
  auto m = make("fedavgm", o);
  auto a = make("fedavg");
  torch::manual_seed(2);
  auto global = random_weights();
  for (int round = 0; round < 3; ++round) {
    const auto updates = random_round();
    const auto xm = m->aggregate(global, updates);
    const auto xa = a->aggregate(global, updates);
    for (size_t i = 0; i < xa.size(); ++i) CHECK(torch::allclose(xm[i], xa[i], /*rtol=*/1e-6, /*atol=*/1e-7));
    global = xa;
  }
}

TEST_CASE("fedadam: two rounds by hand", "[strategy]") {
  // v ← β2·v + (1−β2)·Δ²;  x ← global + η·m / (√v + τ)       (setting in hand_options())
  //   Round 1: v1 = 0.75·0.25 + 0.25·[4, 2.25] = [1.1875, 0.75];  √v1 = [1.0897247, 0.8660254]
  //            x1 = [1 + 1/1.5897247, 1 − 0.75/1.3660254] = [1.6290397, 0.4509619]
  //   Round 2: v2 = 0.75·[1.1875, 0.75] + 0.25·[0.25, 4] = [0.953125, 1.5625];  √v2 = [0.9762812, 1.25]
  //            x2 = [0.75/1.4762812, 0.625/1.75] = [0.5080333, 0.3571429]
  const auto r = run_hand_rounds("fedadam");
  CHECK(r.s0.empty());
  check_values(r.x1[0], {1.629039718, 0.450961894});
  REQUIRE(r.s1.size() == 2);  // [m, v]
  check_values(r.s1[0], {1, -0.75});
  check_values(r.s1[1], {1.1875, 0.75});
  check_values(r.x2[0], {0.508033290, 0.357142857});
  check_values(r.s2[0], {0.75, 0.625});
  check_values(r.s2[1], {0.953125, 1.5625});
}

TEST_CASE("fedyogi: two rounds by hand, v moves by (1-β2)Δ² towards Δ², unlike Adam", "[strategy]") {
  // v ← v − (1−β2)·Δ²·sign(v − Δ²)
  //   Round 1: v0 = 0.25 < Δ1² = [4, 2.25] → sign −1: v1 = 0.25 + 0.25·[4, 2.25] = [1.25, 0.8125]
  //            (Adam: [1.1875, 0.75] — Yogi does not decay v, it only adds)
  //            √v1 = [1.1180340, 0.9013878];  x1 = [1 + 1/1.6180340, 1 − 0.75/1.4013878] = [1.6180340, 0.4648162]
  //   Round 2: v1 − Δ2² = [1.25 − 0.25, 0.8125 − 4] = [1, −3.1875] → signs [+1, −1]
  //            v2 = [1.25 − 0.0625, 0.8125 + 1] = [1.1875, 1.8125]
  //            (Adam: [0.953125, 1.5625] — where v > Δ², Yogi subtracts only (1−β2)Δ² = 0.0625,
  //             Adam shrinks by (1−β2)(v − Δ²) = 0.25; where v < Δ², Yogi adds all of (1−β2)Δ²)
  //            √v2 = [1.0897247, 1.3462912];  x2 = [0.75/1.5897247, 0.625/1.8462912] = [0.4717798, 0.3385165]
  const auto r = run_hand_rounds("fedyogi");
  CHECK(r.s0.empty());
  check_values(r.x1[0], {1.618033989, 0.464816242});
  check_values(r.s1[0], {1, -0.75});
  check_values(r.s1[1], {1.25, 0.8125});
  check_values(r.x2[0], {0.471779789, 0.338516481});
  check_values(r.s2[0], {0.75, 0.625});
  check_values(r.s2[1], {1.1875, 1.8125});

  const auto adam = run_hand_rounds("fedadam");
  CHECK(torch::all(r.s1[1] > adam.s1[1]).item<bool>());   // v < Δ²: Yogi's v is larger
  CHECK(r.s2[1][0].item<double>() > adam.s2[1][0].item<double>());  // v > Δ²: Yogi shrinks v less
}

TEST_CASE("fedadagrad: two rounds by hand", "[strategy]") {
  // v ← v + Δ² (β2 unused); m keeps Algorithm 2's β1 momentum.
  //   Round 1: v1 = 0.25 + [4, 2.25] = [4.25, 2.5];  √v1 = [2.0615528, 1.5811388]
  //            x1 = [1 + 1/2.5615528, 1 − 0.75/2.0811388] = [1.3903882, 0.6396204]
  //   Round 2: v2 = [4.25 + 0.25, 2.5 + 4] = [4.5, 6.5];  √v2 = [2.1213203, 2.5495098]
  //            x2 = [0.75/2.6213203, 0.625/3.0495098] = [0.2861154, 0.2049510]
  const auto r = run_hand_rounds("fedadagrad");
  CHECK(r.s0.empty());
  check_values(r.x1[0], {1.390388203, 0.639620390});
  check_values(r.s1[0], {1, -0.75});
  check_values(r.s1[1], {4.25, 2.5});
  check_values(r.x2[0], {0.286115355, 0.204950976});
  check_values(r.s2[0], {0.75, 0.625});
  check_values(r.s2[1], {4.5, 6.5});
}

TEST_CASE("adaptive strategies: default options use adaptive_learning_rate", "[strategy]") {
  // Defaults η = 0.01, β1 = 0.9, β2 = 0.99, τ = 1e-3 (v0 = 1e-6); float64 tensors so Δ is exact.
  // Global [0, 0], one client [0.02, −0.01]: Δ = [0.02, −0.01], Δ² = [4e-4, 1e-4], m1 = 0.1·Δ = [2e-3, −1e-3]
  //   Adam:    v1 = 0.99e-6 + 0.01·Δ² = [4.99e-6, 1.99e-6]; √v1 = [2.2338308e-3, 1.4106736e-3]
  //            x1 = 0.01·[2e-3/3.2338308e-3, −1e-3/2.4106736e-3] = [6.1846155e-3, −4.1482182e-3]
  //   Yogi:    v1 = 1e-6 + 0.01·Δ² = [5e-6, 2e-6]; √v1 = [2.2360680e-3, 1.4142136e-3]
  //            x1 = 0.01·[2e-3/3.2360680e-3, −1e-3/2.4142136e-3] = [6.1803399e-3, −4.1421356e-3]
  //   Adagrad: v1 = 1e-6 + Δ² = [4.01e-4, 1.01e-4]; √v1 = [2.0024984e-2, 1.0049876e-2]
  //            x1 = 0.01·[2e-3/2.1024984e-2, −1e-3/1.1049876e-2] = [9.5124922e-4, −9.0498756e-4]
  // Each coordinate moves by about η·(1−β1)/(1−β2)^½ = η for Adam and Yogi, whatever |Δ| is.
  const StrategyOptions d;
  CHECK(d.adaptive_learning_rate == 0.01);
  CHECK(d.tau == 1e-3);
  const Weights global = {torch::zeros({2}, torch::kFloat64)};
  const std::vector<ClientUpdate> updates = {{{dvec({0.02, -0.01})}, 4}};
  const std::vector<std::pair<std::string, std::vector<double>>> cases = {
      {"fedadam", {6.18461549e-3, -4.14821816e-3}},
      {"fedyogi", {6.18033989e-3, -4.14213562e-3}},
      {"fedadagrad", {9.5124922e-4, -9.04987562e-4}}};
  for (const auto& [name, expected] : cases) {
    INFO(name);
    const auto x = make(name)->aggregate(global, updates);
    CHECK(x[0].scalar_type() == torch::kFloat64);
    for (size_t i = 0; i < expected.size(); ++i)
      CHECK(x[0][static_cast<int64_t>(i)].item<double>() == Approx(expected[i]).epsilon(1e-8));
  }
}

TEST_CASE("state round-trip: a strategy restored from state() continues exactly", "[strategy]") {
  for (const auto& name : kStateful) {
    INFO(name);
    torch::manual_seed(3);
    auto a = make(name);
    auto global = a->aggregate(random_weights(), random_round());

    auto saved = a->state();
    CHECK(saved.size() == (name == "fedavgm" ? 2u : 4u));
    auto b = make(name);
    REQUIRE(b->load_state(saved).is_ok());
    for (auto& t : saved) t.add_(1);  // load_state cloned: the caller's tensors are its own
    auto peek = a->state();
    for (auto& t : peek) t.fill_(123);  // state() cloned: mutating it does not reach the strategy

    for (int round = 0; round < 2; ++round) {
      const auto updates = random_round();
      const auto xa = a->aggregate(global, updates);
      const auto xb = b->aggregate(global, updates);
      CHECK(equal_all(xa, xb));
      CHECK(equal_all(a->state(), b->state()));
      global = xa;
    }
  }
}

TEST_CASE("load_state rejects state that does not fit", "[strategy]") {
  using Code = mufl::Status::Code;
  const Weights global = {vec({0, 0}), mat2({0, 0, 0, 0})};
  const std::vector<ClientUpdate> updates = {{{vec({1, 2}), mat2({1, 2, 3, 4})}, 1}};

  SECTION("fedavg has no state") {
    auto s = make("fedavg");
    CHECK(s->load_state({}).is_ok());
    CHECK(s->load_state({vec({1})}).code() == Code::kInvalidArgument);
  }
  SECTION("fedavgm against the state it holds") {
    auto s = make("fedavgm");
    s->aggregate(global, updates);
    const auto before = s->state();
    CHECK(s->load_state({vec({1, 2})}).code() == Code::kInvalidArgument);                      // count
    CHECK(s->load_state({vec({1, 2}), vec({1, 2, 3, 4})}).code() == Code::kInvalidArgument);   // shape
    CHECK(s->load_state({vec({1, 2}), torch::zeros({2, 2}, torch::kInt64)}).code() == Code::kInvalidArgument);
    CHECK(equal_all(s->state(), before));  // a rejected load changes nothing
  }
  SECTION("adaptive: layout, pairs and v >= 0 on a fresh strategy") {
    auto s = make("fedadam");
    CHECK(s->load_state({vec({0, 0})}).code() == Code::kInvalidArgument);                       // odd count
    CHECK(s->load_state({vec({0, 0}), vec({1, 1, 1})}).code() == Code::kInvalidArgument);       // m, v shapes
    CHECK(s->load_state({vec({0, 0}), vec({1, -1})}).code() == Code::kInvalidArgument);         // v < 0
    CHECK(s->load_state({vec({0, 0}), vec({1, NAN})}).code() == Code::kInvalidArgument);        // v NaN
    CHECK(s->load_state({vec({0, 0}), torch::Tensor()}).code() == Code::kInvalidArgument);      // undefined
    CHECK(s->state().empty());
  }
  SECTION("adaptive: against the state it holds") {
    auto s = make("fedyogi");
    s->aggregate(global, updates);
    const auto before = s->state();
    REQUIRE(before.size() == 4);
    auto wrong = before;
    wrong[3] = torch::ones({4});  // v_1 as [4] instead of [2, 2]
    wrong[1] = torch::zeros({4});
    CHECK(s->load_state(wrong).code() == Code::kInvalidArgument);
    CHECK(s->load_state({before[0], before[2]}).code() == Code::kInvalidArgument);  // one tensor's m, v
    CHECK(equal_all(s->state(), before));
  }
  SECTION("a state loaded before the first round must fit the model") {
    auto s = make("fedadam");
    const std::vector<torch::Tensor> other_model = {torch::zeros({3}), torch::ones({3})};
    REQUIRE(s->load_state(other_model).is_ok());  // consistent in itself; the model is unknown yet
    CHECK_THROWS_AS(s->aggregate(global, updates), c10::Error);
    CHECK(equal_all(s->state(), {torch::zeros({3}, torch::kFloat64), torch::ones({3}, torch::kFloat64)}));
  }
  SECTION("empty state resets to the initial state") {
    auto s = make("fedadagrad");
    s->aggregate(global, updates);
    REQUIRE(s->load_state({}).is_ok());
    CHECK(s->state().empty());
    CHECK(equal_all(s->aggregate(global, updates), make("fedadagrad")->aggregate(global, updates)));
  }
}

TEST_CASE("make_strategy: the five names, and invalid names or options", "[strategy]") {
  for (const auto& name : kAll) {
    auto r = make_strategy(name);
    REQUIRE(r.ok());
    CHECK(r.value()->name() == name);
  }
  for (const std::string bad : {"", "FedAvg", "fedprox", "fedadam "}) {
    INFO(bad);
    CHECK(make_strategy(bad).status().code() == mufl::Status::Code::kInvalidArgument);
  }
  StrategyOptions o;
  o.beta1 = 1.0;
  o.tau = 0;
  const auto r = make_strategy("fedyogi", o);
  REQUIRE(r.status().is_invalid_argument());
  REQUIRE(r.status().field_errors().size() == 2);
  CHECK(r.status().field_errors()[0].field == "beta1");
  CHECK(r.status().field_errors()[1].field == "tau");
  CHECK(make_strategy("fedavg", o).ok());  // fedavg uses none of them
  StrategyOptions m;
  m.server_momentum = -0.1;
  CHECK(make_strategy("fedavgm", m).status().field_errors().at(0).field == "server_momentum");
}

TEST_CASE("aggregate leaves its inputs unchanged and returns fresh tensors", "[strategy]") {
  for (const auto& name : kAll) {
    INFO(name);
    torch::manual_seed(4);
    auto s = make(name);
    for (int round = 0; round < 2; ++round) {
      const auto global = random_weights();
      const auto updates = random_round();
      const auto global_copy = mufl::fl::clone(global);
      std::vector<Weights> update_copies;
      for (const auto& u : updates) update_copies.push_back(mufl::fl::clone(u.weights));

      const auto x = s->aggregate(global, updates);
      CHECK(equal_all(global, global_copy));
      for (size_t k = 0; k < updates.size(); ++k) CHECK(equal_all(updates[k].weights, update_copies[k]));
      for (size_t i = 0; i < x.size(); ++i) {
        CHECK_FALSE(x[i].requires_grad());
        CHECK(x[i].data_ptr() != global[i].data_ptr());
        for (const auto& u : updates) CHECK(x[i].data_ptr() != u.weights[i].data_ptr());
      }
    }
    // The easiest case to alias: one float64 client whose mean is its own weights.
    const Weights g = {torch::zeros({2}, torch::kFloat64)};
    const std::vector<ClientUpdate> one = {{{dvec({1.0, 2.0})}, 1}};
    const auto x = make(name)->aggregate(g, one);
    CHECK(x[0].data_ptr() != one[0].weights[0].data_ptr());
    CHECK(x[0].data_ptr() != g[0].data_ptr());
  }
  const std::vector<ClientUpdate> one = {{{dvec({1.0, 2.0})}, 1}};
  CHECK(mufl::fl::weighted_average(one)[0].data_ptr() != one[0].weights[0].data_ptr());
}

TEST_CASE("aggregate rejects broken preconditions and keeps its state", "[strategy]") {
  const Weights global = {vec({0, 0})};
  const std::vector<ClientUpdate> good = {{{vec({1, 2})}, 1}};
  for (const auto& name : kAll) {
    INFO(name);
    auto s = make(name);
    s->aggregate(global, good);
    const auto before = s->state();
    CHECK_THROWS_AS(s->aggregate(global, {}), c10::Error);                                     // no updates
    CHECK_THROWS_AS(s->aggregate(global, {{{vec({1, 2})}, 0}}), c10::Error);                   // 0 samples
    CHECK_THROWS_AS(s->aggregate(global, {{{vec({1, 2})}, 1}, {{vec({1})}, 1}}), c10::Error);  // shapes differ
    CHECK_THROWS_AS(s->aggregate({vec({0, 0, 0})}, good), c10::Error);                         // global's shape
    CHECK_THROWS_AS(s->aggregate({vec({0, 0}), vec({0})}, good), c10::Error);                  // tensor count
    CHECK_THROWS_AS(s->aggregate(global, {{{torch::tensor({1, 2})}, 1}}), c10::Error);         // integer weights
    CHECK(equal_all(s->state(), before));
  }
}

TEST_CASE("UpdateSum: summed one update at a time, its mean is the float64 weighted mean bit for bit") {
  torch::manual_seed(11);
  const auto round = random_round();
  mufl::fl::UpdateSum sum;
  for (const auto& u : round) sum.add(u);
  CHECK(sum.count() == 3);
  CHECK(sum.samples() == 42);
  // The reference: Σ n_k w_k in float64 in the given order, one division at the end.
  const auto mean = sum.mean();
  REQUIRE(mean.size() == 2);
  for (size_t i = 0; i < mean.size(); ++i) {
    auto acc = torch::zeros(round[0].weights[i].sizes(), torch::kFloat64);
    for (const auto& u : round) acc.add_(u.weights[i].to(torch::kFloat64), static_cast<double>(u.num_samples));
    CHECK(mean[i].scalar_type() == torch::kFloat64);
    CHECK(torch::equal(mean[i], acc.div_(42.0)));
  }
  const auto avg = mufl::fl::weighted_average(round);
  CHECK(avg[0].scalar_type() == torch::kFloat32);
  CHECK(torch::equal(avg[0], mean[0].to(torch::kFloat32)));
  // A strategy fed the sum gives what it gives fed the updates.
  CHECK(equal_all(make("fedavgm")->aggregate_sum(round[0].weights, sum), make("fedavgm")->aggregate(round[0].weights, round)));
}

TEST_CASE("UpdateSum: an update that does not fit throws and leaves the sum as it was") {
  mufl::fl::UpdateSum sum;
  CHECK_THROWS_AS(sum.mean(), c10::Error);  // nothing yet
  sum.add({{vec({1, 2}), vec({3})}, 1});
  CHECK_THROWS_AS(sum.add({{vec({1, 2, 3}), vec({3})}, 1}), c10::Error);  // a shape
  CHECK_THROWS_AS(sum.add({{vec({1, 2})}, 1}), c10::Error);               // a tensor missing
  CHECK_THROWS_AS(sum.add({{vec({1, 2}), vec({3})}, 0}), c10::Error);     // no samples
  CHECK_THROWS_AS(sum.add({{torch::tensor({1, 2}), vec({3})}, 1}), c10::Error);  // integers
  CHECK(sum.count() == 1);
  CHECK(sum.samples() == 1);
  sum.add({{vec({3, 4}), vec({5})}, 3});
  check_values(sum.mean()[0], {2.5, 3.5});
  check_values(sum.mean()[1], {4.5});
}

TEST_CASE("cosine weight: the cosine distance of the two models' parameters, as one vector") {
  using mufl::fl::Weights;
  // global = (1, 0 | 0), update = (1, 1 | 0): cos = 1/√2, distance 1 − 1/√2.
  const Weights global = {torch::tensor({1.0f, 0.0f}), torch::tensor({0.0f})};
  const Weights moved = {torch::tensor({1.0f, 1.0f}), torch::tensor({0.0f})};
  CHECK(mufl::fl::cosine_weight(global, moved) == Approx(1.0 - 1.0 / std::sqrt(2.0)).epsilon(1e-12));
  // The second tensor counts: (1, 0 | 1) against (1, 0 | 0): cos = 1/√2 too.
  const Weights other = {torch::tensor({1.0f, 0.0f}), torch::tensor({1.0f})};
  CHECK(mufl::fl::cosine_weight(global, other) == Approx(1.0 - 1.0 / std::sqrt(2.0)).epsilon(1e-12));
  // Scale does not matter, only direction: a model that did not turn gets the floor.
  const Weights scaled = {torch::tensor({3.0f, 0.0f}), torch::tensor({0.0f})};
  CHECK(mufl::fl::cosine_weight(global, scaled) == 1e-12);
  CHECK(mufl::fl::cosine_weight(global, global) == 1e-12);
  // Opposite: distance 2.
  const Weights opposite = {torch::tensor({-1.0f, 0.0f}), torch::tensor({0.0f})};
  CHECK(mufl::fl::cosine_weight(global, opposite) == Approx(2.0));
  CHECK_THROWS(mufl::fl::cosine_weight(global, Weights{torch::tensor({1.0f})}));
}

TEST_CASE("UpdateSum: weights of its own replace the sample counts in the mean") {
  using mufl::fl::ClientUpdate;
  mufl::fl::UpdateSum sum;
  // Two clients with 100 and 1 samples, weighted 1 and 3: the mean follows the weights.
  sum.add(ClientUpdate{{torch::tensor({0.0f})}, 100}, 1.0);
  sum.add(ClientUpdate{{torch::tensor({4.0f})}, 1}, 3.0);
  CHECK(sum.samples() == 101);
  CHECK(sum.mean()[0].item<double>() == 3.0);
  CHECK_THROWS(sum.add(ClientUpdate{{torch::tensor({1.0f})}, 1}, 0.0));
  CHECK_THROWS(sum.add(ClientUpdate{{torch::tensor({1.0f})}, 1}, std::nan("")));
  CHECK(sum.count() == 2);
}
