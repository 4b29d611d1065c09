#include "tenants/activity_spec.h"

#include <catch2/catch.hpp>

#include <nlohmann/json.hpp>

#include "core/catalog.h"

using namespace mufl;
using namespace mufl::tenants;
using nlohmann::json;

namespace {

constexpr int64_t kNow = 1'767'225'600'000;  // 2026-01-01T00:00:00Z

json minimal() { return {{"name", "digits"}, {"dataset", "mnist"}, {"task", "class"}, {"rounds", 10}}; }

// The fields named in a failed parse, in order.
std::vector<std::string> bad_fields(const json& body) {
  auto r = parse_activity_spec(body, Catalog::builtin(), kNow);
  REQUIRE_FALSE(r.ok());
  REQUIRE(r.status().is_invalid_argument());
  std::vector<std::string> out;
  const Status st = r.status();
  for (const auto& e : st.field_errors()) {
    CHECK_FALSE(e.detail.empty());
    out.push_back(e.field);
  }
  return out;
}

bool names(const json& body, const std::string& field) {
  auto f = bad_fields(body);
  return std::find(f.begin(), f.end(), field) != f.end();
}

}  // namespace

TEST_CASE("activity spec: the four required fields suffice and defaults are filled in") {
  auto r = parse_activity_spec(minimal(), Catalog::builtin(), kNow);
  REQUIRE(r.ok());
  CHECK(r->name == "digits");
  CHECK(r->rounds == 10);
  CHECK(r->clients == kDefaultClients);
  CHECK(r->clients_per_round == kDefaultClientsPerRound);
  CHECK(r->local_epochs == 1);
  CHECK(r->batch_size == 32);
  CHECK(r->learning_rate == Approx(0.05));
  CHECK(r->aggregator == "fedavg");
  CHECK(r->partition.kind == "iid");
  CHECK(r->merge);
  CHECK(r->priority == 0);
  CHECK(r->min_clients == 1);
  CHECK(r->prox_mu == 0.0);
  CHECK_FALSE(r->deadline_unix_ms);
}

TEST_CASE("activity spec: every field given is kept") {
  json b = minimal();
  b.update({{"clients", 100}, {"clients_per_round", 10}, {"local_epochs", 2}, {"batch_size", 64},
            {"learning_rate", 0.1}, {"aggregator", "fedadam"}, {"partition", {{"kind", "dirichlet"}, {"alpha", 0.3}}},
            {"seed", 7}, {"merge", false}, {"priority", 5}, {"deadline", "2026-06-01T12:00:00Z"},
            {"min_clients", 8}, {"prox_mu", 0.01}});
  auto r = parse_activity_spec(b, Catalog::builtin(), kNow);
  REQUIRE(r.ok());
  CHECK(r->clients == 100);
  CHECK(r->clients_per_round == 10);
  CHECK(r->aggregator == "fedadam");
  CHECK(r->partition == Partition{"dirichlet", 0.3});
  CHECK(r->seed == 7);
  CHECK_FALSE(r->merge);
  CHECK(r->priority == 5);
  CHECK(r->min_clients == 8);
  CHECK(r->prox_mu == Approx(0.01));
  REQUIRE(r->deadline_unix_ms);
  CHECK(*r->deadline_unix_ms > kNow);
}

TEST_CASE("activity spec: clients_per_round defaults to at most clients") {
  json b = minimal();
  b["clients"] = 3;
  auto r = parse_activity_spec(b, Catalog::builtin(), kNow);
  REQUIRE(r.ok());
  CHECK(r->clients_per_round == 3);
}

TEST_CASE("activity spec: missing required fields are all named at once") {
  auto f = bad_fields(json::object());
  CHECK(f == std::vector<std::string>{"name", "dataset", "task", "rounds"});
}

TEST_CASE("activity spec: wrong types are named") {
  json b = minimal();
  b["rounds"] = "ten";
  b["merge"] = 1;
  b["learning_rate"] = "fast";
  b["partition"] = "iid";
  auto f = bad_fields(b);
  for (const char* field : {"rounds", "merge", "learning_rate", "partition"})
    CHECK(std::find(f.begin(), f.end(), field) != f.end());
  CHECK(f.size() == 4);
}

TEST_CASE("activity spec: out-of-range numbers are named") {
  auto with = [](const char* key, json v) {
    json b = minimal();
    b[key] = std::move(v);
    return b;
  };
  CHECK(names(with("rounds", 0), "rounds"));
  CHECK(names(with("rounds", kMaxRounds + 1), "rounds"));
  CHECK(names(with("rounds", 2.5), "rounds"));
  CHECK(names(with("clients", 0), "clients"));
  CHECK(names(with("local_epochs", kMaxLocalEpochs + 1), "local_epochs"));
  CHECK(names(with("batch_size", 0), "batch_size"));
  CHECK(names(with("learning_rate", 0), "learning_rate"));
  CHECK(names(with("learning_rate", 11), "learning_rate"));
  CHECK(names(with("priority", kMaxPriority + 1), "priority"));
  CHECK(names(with("seed", -1), "seed"));
  json b = minimal();
  b["clients"] = 4;
  b["clients_per_round"] = 5;
  CHECK(names(b, "clients_per_round"));
  CHECK(names(with("clients_per_round", kDefaultClients + 1), "clients_per_round"));
  CHECK(names(with("min_clients", kDefaultClientsPerRound + 1), "min_clients"));
  CHECK(names(with("min_clients", 0), "min_clients"));
  CHECK(names(with("prox_mu", -0.1), "prox_mu"));
  CHECK(names(with("prox_mu", kMaxProxMu + 1), "prox_mu"));
}

TEST_CASE("activity spec: unknown data set, task, aggregator, partition and fields are named") {
  auto with = [](const char* key, json v) {
    json b = minimal();
    b[key] = std::move(v);
    return b;
  };
  CHECK(names(with("dataset", "cifar-1000"), "dataset"));
  CHECK(names(with("task", "poetry"), "task"));
  CHECK(names(with("aggregator", "fedmagic"), "aggregator"));
  CHECK(names(with("colour", "blue"), "colour"));
  CHECK(names(with("partition", json{{"kind", "skewed"}}), "partition.kind"));
  CHECK(names(with("partition", json{{"kind", "dirichlet"}, {"alpha", -1}}), "partition.alpha"));
  CHECK(names(with("partition", json{{"kind", "iid"}, {"alpha", 1}}), "partition.alpha"));
  CHECK(names(with("partition", json{{"kind", "iid"}, {"beta", 1}}), "partition.beta"));
  CHECK(names(with("name", ""), "name"));
  CHECK(names(with("name", std::string(kMaxNameLength + 1, 'x')), "name"));
}

TEST_CASE("activity spec: deadlines must be RFC 3339 and in the future") {
  json b = minimal();
  b["deadline"] = "tomorrow";
  CHECK(names(b, "deadline"));
  b["deadline"] = "2025-01-01T00:00:00Z";
  CHECK(names(b, "deadline"));
}

TEST_CASE("activity spec: weighting is samples by default, cosine on request, anything else is named") {
  auto plain = parse_activity_spec(minimal(), Catalog::builtin(), kNow);
  REQUIRE(plain.ok());
  CHECK(plain->weighting == "samples");
  json body = minimal();
  body["weighting"] = "cosine";
  auto cosine = parse_activity_spec(body, Catalog::builtin(), kNow);
  REQUIRE(cosine.ok());
  CHECK(cosine->weighting == "cosine");
  body["weighting"] = "volume";
  CHECK(bad_fields(body) == std::vector<std::string>{"weighting"});
  body["weighting"] = 3;
  CHECK(bad_fields(body) == std::vector<std::string>{"weighting"});
  // The stored form round-trips.
  CHECK(spec_from_json(spec_to_json(*cosine)) == *cosine);
}

TEST_CASE("activity spec: local_epochs \"personalized\" takes max_local_epochs, default 5") {
  json body = minimal();
  body["local_epochs"] = "personalized";
  auto p = parse_activity_spec(body, Catalog::builtin(), kNow);
  REQUIRE(p.ok());
  CHECK(p->personalized_epochs);
  CHECK(p->local_epochs == kDefaultPersonalizedEpochs);
  body["max_local_epochs"] = 8;
  p = parse_activity_spec(body, Catalog::builtin(), kNow);
  REQUIRE(p.ok());
  CHECK(p->local_epochs == 8);
  // The API shows it as it was asked for, and the stored form round-trips.
  const json shown = spec_to_json(*p);
  CHECK(shown["local_epochs"] == "personalized");
  CHECK(shown["max_local_epochs"] == 8);
  CHECK(spec_from_json(shown) == *p);
  CHECK(!spec_to_json(*parse_activity_spec(minimal(), Catalog::builtin(), kNow)).contains("max_local_epochs"));
  // Bad values name their field.
  body["local_epochs"] = "adaptive";
  CHECK(names(body, "local_epochs"));
  body["local_epochs"] = "personalized";
  body["max_local_epochs"] = 0;
  CHECK(bad_fields(body) == std::vector<std::string>{"max_local_epochs"});
  json fixed = minimal();
  fixed["local_epochs"] = 2;
  fixed["max_local_epochs"] = 4;
  CHECK(bad_fields(fixed) == std::vector<std::string>{"max_local_epochs"});
}

TEST_CASE("activity spec: personalized epochs apply on a federation too, with their bound") {
  json body = {{"name", "f"}, {"federation", "fed_1"}, {"task", "class"}, {"rounds", 3}, {"local_epochs", "personalized"}};
  auto spec = parse_activity_spec(body, Catalog::builtin(), kNow);
  REQUIRE(spec.ok());
  CHECK(spec->personalized_epochs);
  CHECK(spec->local_epochs == kDefaultPersonalizedEpochs);
  body["max_local_epochs"] = 0;
  CHECK(bad_fields(body) == std::vector<std::string>{"max_local_epochs"});
}

TEST_CASE("activity spec: local_update is fedavg by default, fedema takes ema_lambda, bad values are named") {
  auto plain = parse_activity_spec(minimal(), Catalog::builtin(), kNow);
  REQUIRE(plain.ok());
  CHECK(plain->local_update == "fedavg");
  CHECK(!spec_to_json(*plain).contains("ema_lambda"));
  json body = minimal();
  body["local_update"] = "fedema";
  auto ema = parse_activity_spec(body, Catalog::builtin(), kNow);
  REQUIRE(ema.ok());
  CHECK(ema->local_update == "fedema");
  CHECK(ema->ema_lambda == 0.0);  // auto
  CHECK(spec_to_json(*ema)["ema_lambda"] == "auto");
  CHECK(spec_from_json(spec_to_json(*ema)) == *ema);
  body["ema_lambda"] = "auto";
  CHECK(parse_activity_spec(body, Catalog::builtin(), kNow).ok());
  body["ema_lambda"] = 0.25;
  auto given = parse_activity_spec(body, Catalog::builtin(), kNow);
  REQUIRE(given.ok());
  CHECK(given->ema_lambda == 0.25);
  CHECK(spec_to_json(*given)["ema_lambda"] == 0.25);
  CHECK(spec_from_json(spec_to_json(*given)) == *given);
  for (const json& bad : {json(0), json(-1), json("fast"), json(true), json(2e6)}) {
    body["ema_lambda"] = bad;
    CHECK(bad_fields(body) == std::vector<std::string>{"ema_lambda"});
  }
  body["ema_lambda"] = 0.25;
  body["local_update"] = "fedavg";  // λ without FedEMA
  CHECK(bad_fields(body) == std::vector<std::string>{"ema_lambda"});
  body.erase("ema_lambda");
  body["local_update"] = "fedbyol";
  CHECK(bad_fields(body) == std::vector<std::string>{"local_update"});
  body["local_update"] = 1;
  CHECK(bad_fields(body) == std::vector<std::string>{"local_update"});
}

TEST_CASE("activity spec: fedema is taken on a federation too: its clients keep their models") {
  json body = {{"name", "f"}, {"federation", "fed_1"}, {"task", "class"}, {"rounds", 3}, {"local_update", "fedema"}};
  auto spec = parse_activity_spec(body, Catalog::builtin(), kNow);
  REQUIRE(spec.ok());
  CHECK(spec->local_update == "fedema");
}

TEST_CASE("activity spec: task ssl is accepted on a catalog data set and on a federation") {
  json body = minimal();
  body["task"] = "ssl";
  auto ssl = parse_activity_spec(body, Catalog::builtin(), kNow);
  REQUIRE(ssl.ok());
  CHECK(ssl->task == "ssl");
  json fed = {{"name", "f"}, {"federation", "fed_1"}, {"task", "ssl"}, {"rounds", 3}, {"local_update", "fedema"}};
  auto on_fed = parse_activity_spec(fed, Catalog::builtin(), kNow);
  REQUIRE(on_fed.ok());
  CHECK(on_fed->task == "ssl");
  body["task"] = "simclr";
  CHECK(bad_fields(body) == std::vector<std::string>{"task"});
}

TEST_CASE("activity spec: client_clusters is 1 (off) by default, 2 to 16 on request, and stored only then") {
  auto plain = parse_activity_spec(minimal(), Catalog::builtin(), kNow);
  REQUIRE(plain.ok());
  CHECK(plain->client_clusters == 1);
  CHECK_FALSE(spec_to_json(*plain).contains("client_clusters"));  // other specs are stored as before
  json body = minimal();
  body["client_clusters"] = 3;
  auto three = parse_activity_spec(body, Catalog::builtin(), kNow);
  REQUIRE(three.ok());
  CHECK(three->client_clusters == 3);
  CHECK(three->cluster_round == 1);
  body["cluster_round"] = 4;
  auto later = parse_activity_spec(body, Catalog::builtin(), kNow);
  REQUIRE(later.ok());
  CHECK(later->cluster_round == 4);
  CHECK(spec_from_json(spec_to_json(*later)) == *later);
}

TEST_CASE("activity spec: bad client_clusters and cluster_round values are named") {
  json body = minimal();
  for (const json& bad : {json(0), json(17), json("two"), json(2.5)}) {
    body["client_clusters"] = bad;
    CHECK(bad_fields(body) == std::vector<std::string>{"client_clusters"});
  }
  body["client_clusters"] = 5;
  body["clients"] = 4;  // more clusters than clients
  body["clients_per_round"] = 2;
  CHECK(bad_fields(body) == std::vector<std::string>{"client_clusters"});
  body["clients"] = kMaxClusteredClients + 1;  // the clustering round would compare too many updates
  CHECK(bad_fields(body) == std::vector<std::string>{"client_clusters"});
  body = minimal();
  body["cluster_round"] = 2;  // without clustering
  CHECK(bad_fields(body) == std::vector<std::string>{"cluster_round"});
  body["client_clusters"] = 2;
  body["cluster_round"] = 11;  // after the last of 10 rounds
  CHECK(bad_fields(body) == std::vector<std::string>{"cluster_round"});
  body["cluster_round"] = 0;
  CHECK(bad_fields(body) == std::vector<std::string>{"cluster_round"});
}

TEST_CASE("activity spec: client_clusters applies on a federation (any k: its clients are known later) and is refused for ssl") {
  json fed = {{"name", "f"}, {"federation", "fed_1"}, {"task", "class"}, {"rounds", 3}, {"client_clusters", 16}};
  auto on_fed = parse_activity_spec(fed, Catalog::builtin(), kNow);
  REQUIRE(on_fed.ok());
  CHECK(on_fed->client_clusters == 16);
  fed["client_clusters"] = 17;
  CHECK(bad_fields(fed) == std::vector<std::string>{"client_clusters"});
  json ssl = minimal();
  ssl["task"] = "ssl";
  ssl["client_clusters"] = 2;
  CHECK(bad_fields(ssl) == std::vector<std::string>{"client_clusters"});
}
