// The worker protocol's wire format (fl/job_wire.h): a JobConfig and a RoundReport go through
// JSON text and come back equal in every field; anything malformed is refused naming the field.
#include "fl/job_wire.h"

#include <catch2/catch.hpp>

#include <cmath>
#include <cstdint>
#include <limits>
#include <string>

using namespace mufl;
using namespace mufl::fl;
using nlohmann::json;

namespace {

// Every field away from its default; a federation job with its schema.
JobConfig full_config() {
  JobConfig c;
  c.dataset = "";
  c.federation = "fed_0123abcd";
  c.schema = {3, 32, 24, 7};
  c.name = "grp_42";
  c.round_timeout_seconds = 123;
  c.tasks = {"class", "segment", "parity"};
  c.heads = {"act_a", "act_b", "act_c"};
  c.rounds = 17;
  c.round_offset = 5;
  c.affinity_every = 4;
  c.encoder_gradient = EncoderGradient::kSum;
  c.balance = TaskBalance::kCap;
  c.final_heads = {"act_b"};
  c.head_calibration = true;
  c.calibrate_every_client = true;
  c.clients = 64;
  c.clients_per_round = 9;
  c.local_epochs = 3;
  c.batch_size = 48;
  c.learning_rate = 0.1 + 0.2;  // 0.30000000000000004: needs all 17 digits
  c.lr_decay = 0.987654321;
  c.aggregator = "fedprox";
  c.weighting = "cosine";
  c.personalized_epochs = true;
  c.local_update = "fedema";
  c.ema_lambda = 0.1 + 0.2;
  c.client_clusters = 3;
  c.cluster_round = 2;
  c.partition = "dirichlet";
  c.dirichlet_alpha = 1.0 / 3.0;
  c.seed = std::numeric_limits<uint64_t>::max();
  c.prox_mu = 1e-300;
  c.client_failure_rate = 0.125;
  c.min_clients = 2;
  c.max_round_attempts = 6;
  return c;
}

// Three heads, a 3×3 affinity, every counter set.
RoundReport full_report() {
  RoundReport r;
  r.round = 23;
  r.attempts = 2;
  r.clients_sampled = 10;
  r.clients_reported = 4;
  r.clients_dropped = 6;
  r.samples = 98765;
  r.train_loss = 0.1 + 0.2;
  r.learning_rate = 0.05 * std::pow(0.99, 22);
  r.eval = {{"act_a", "class", 0.51, "accuracy", 0.875},
            {"act_b", "segment", 0.072, "iou", 2.0 / 3.0},
            {"act_c", "parity", -1e-9, "mse", 1e300}};
  r.affinity = {{0.0, 0.25, -0.125}, {1.0 / 7.0, 0.0, 5e-324}, {-2.5, 1e-17, 0.0}};
  r.lookaheads = 31;
  r.affinity_seconds = 1.5;
  r.alignment = {{"act_a", 0.125}, {"act_b", -1.0 / 3.0}, {"act_c", 1.0}};
  r.calibration_samples = 1234;
  r.calibrated = {"act_b", "act_c"};
  r.clusters = {{{0, 2, 5}, 300, 2, {{"act_a", "class", 0.4, "accuracy", 0.9}}},
                {{1, 3}, 120, 0, {}}};
  r.seconds = 12.75;
  r.client_wait_seconds = 3.0 / 7.0;
  r.client_joules = 4567.891;
  r.client_meters = "model+rapl";
  r.stopped = true;
  return r;
}

// Through the text, as the worker and mufld exchange it.
json through_text(const json& j) { return json::parse(j.dump()); }

// The field the refusal names (requires kInvalidArgument with exactly one field error).
std::string refused_field(const Status& s) {
  REQUIRE(s.code() == Status::Code::kInvalidArgument);
  REQUIRE(s.field_errors().size() == 1);
  return s.field_errors()[0].field;
}

std::string config_refusal(const json& j) {
  const auto c = job_config_from_json(j);
  REQUIRE_FALSE(c.ok());
  return refused_field(c.status());
}

std::string report_refusal(const json& j) {
  const auto r = round_report_from_json(j);
  REQUIRE_FALSE(r.ok());
  return refused_field(r.status());
}

}  // namespace

TEST_CASE("job_wire: a fully populated JobConfig round-trips through JSON text, field by field") {
  const JobConfig c = full_config();
  const auto back = job_config_from_json(through_text(job_config_to_json(c)));
  REQUIRE(back.ok());
  CHECK(back->dataset == c.dataset);
  CHECK(back->federation == c.federation);
  CHECK(back->schema == c.schema);
  CHECK(back->name == c.name);
  CHECK(back->round_timeout_seconds == c.round_timeout_seconds);
  CHECK(back->tasks == c.tasks);
  CHECK(back->heads == c.heads);
  CHECK(back->rounds == c.rounds);
  CHECK(back->round_offset == c.round_offset);
  CHECK(back->affinity_every == c.affinity_every);
  CHECK(back->encoder_gradient == c.encoder_gradient);
  CHECK(back->balance == c.balance);
  CHECK(back->final_heads == c.final_heads);
  CHECK(back->head_calibration);
  CHECK(back->calibrate_every_client);
  CHECK(back->clients == c.clients);
  CHECK(back->clients_per_round == c.clients_per_round);
  CHECK(back->local_epochs == c.local_epochs);
  CHECK(back->batch_size == c.batch_size);
  CHECK(back->learning_rate == c.learning_rate);
  CHECK(back->lr_decay == c.lr_decay);
  CHECK(back->aggregator == c.aggregator);
  CHECK(back->partition == c.partition);
  CHECK(back->dirichlet_alpha == c.dirichlet_alpha);
  CHECK(back->seed == c.seed);
  CHECK(back->prox_mu == c.prox_mu);
  CHECK(back->weighting == "cosine");
  CHECK(back->personalized_epochs);
  CHECK(back->local_update == "fedema");
  CHECK(back->ema_lambda == c.ema_lambda);
  CHECK(back->client_clusters == 3);
  CHECK(back->cluster_round == 2);
  CHECK(back->client_failure_rate == c.client_failure_rate);
  CHECK(back->min_clients == c.min_clients);
  CHECK(back->max_round_attempts == c.max_round_attempts);
}

TEST_CASE("job_wire: the config's wire names are the API") {
  const json j = job_config_to_json(full_config());
  CHECK(j.size() == 35);
  CHECK(j.at("calibrate_every_client") == true);
  CHECK(j.at("client_clusters") == 3);
  CHECK(j.at("cluster_round") == 2);
  CHECK(j.at("final_heads") == json{"act_b"});
  CHECK(j.at("head_calibration") == true);
  CHECK(j.at("local_update") == "fedema");
  CHECK(j.at("weighting") == "cosine");
  CHECK(j.at("personalized_epochs") == true);
  CHECK(j.at("seed") == "18446744073709551615");  // a string: JSON numbers lose bits in many readers
  CHECK(j.at("encoder_gradient") == "sum");
  CHECK(j.at("balance") == "cap");
  CHECK(j.at("schema") == json{{"channels", 3}, {"height", 32}, {"width", 24}, {"labels", 7}});
  CHECK(j.at("tasks") == json{"class", "segment", "parity"});

  SECTION("a catalog job's defaults round-trip too, with an empty federation and heads") {
    JobConfig d;
    d.dataset = "synthetic";
    d.tasks = {"class"};
    d.seed = (uint64_t{1} << 63) + 1;
    const auto back = job_config_from_json(through_text(job_config_to_json(d)));
    REQUIRE(back.ok());
    CHECK(back->dataset == "synthetic");
    CHECK(back->heads.empty());
    CHECK(back->encoder_gradient == EncoderGradient::kMean);
    CHECK(back->balance == TaskBalance::kNone);
    CHECK(back->seed == d.seed);
  }
}

TEST_CASE("job_wire: a malformed config is refused, naming the field") {
  json j = job_config_to_json(full_config());

  SECTION("not an object") { CHECK(config_refusal(json::array()) == "job"); }
  SECTION("a missing field") {
    j.erase("lr_decay");
    CHECK(config_refusal(j) == "lr_decay");
  }
  SECTION("a missing schema field") {
    j["schema"].erase("labels");
    CHECK(config_refusal(j) == "schema.labels");
  }
  SECTION("a string for a number") {
    j["learning_rate"] = "0.05";
    CHECK(config_refusal(j) == "learning_rate");
  }
  SECTION("a string for an integer") {
    j["rounds"] = "17";
    CHECK(config_refusal(j) == "rounds");
  }
  SECTION("client clusters below 1") {
    j["client_clusters"] = 0;
    CHECK(config_refusal(j) == "client_clusters");
  }
  SECTION("a float for an integer") {
    j["batch_size"] = 32.5;
    CHECK(config_refusal(j) == "batch_size");
  }
  SECTION("a bool for an integer") {
    j["clients"] = true;
    CHECK(config_refusal(j) == "clients");
  }
  SECTION("an int field out of an int's range") {
    j["max_round_attempts"] = int64_t{1} << 40;
    CHECK(config_refusal(j) == "max_round_attempts");
  }
  SECTION("an int64 field above int64's range") {
    j["round_offset"] = std::numeric_limits<uint64_t>::max();
    CHECK(config_refusal(j) == "round_offset");
  }
  SECTION("a number in the string array") {
    j["tasks"][1] = 5;
    CHECK(config_refusal(j) == "tasks[1]");
  }
  SECTION("an unknown key") {
    j["learning_rte"] = 0.05;
    CHECK(config_refusal(j) == "learning_rte");
  }
  SECTION("an unknown key in the schema") {
    j["schema"]["depth"] = 3;
    CHECK(config_refusal(j) == "schema.depth");
  }
  SECTION("an unknown enum name") {
    j["encoder_gradient"] = "max";
    CHECK(config_refusal(j) == "encoder_gradient");
    j["encoder_gradient"] = "sum";
    j["balance"] = "Cap";
    CHECK(config_refusal(j) == "balance");
  }
  SECTION("a seed that is a number, negative, too large or not decimal") {
    for (const json& seed : {json(5), json("-1"), json("18446744073709551616"), json("0x10"), json(""), json(" 1")}) {
      j["seed"] = seed;
      CHECK(config_refusal(j) == "seed");
    }
  }
  SECTION("NaN as a string, as null (what dump() writes for NaN), or in the json itself") {
    for (const json& nan : {json("NaN"), json(nullptr), json(std::nan(""))}) {
      j["dirichlet_alpha"] = nan;
      CHECK(config_refusal(j) == "dirichlet_alpha");
    }
  }
}

TEST_CASE("job_wire: the config's semantics are left to FlJob::create") {
  JobConfig c = full_config();
  c.rounds = -3;
  c.affinity_every = -1;
  c.tasks.clear();
  const auto back = job_config_from_json(job_config_to_json(c));
  REQUIRE(back.ok());
  CHECK(back->rounds == -3);
  CHECK(back->affinity_every == -1);
  CHECK(back->tasks.empty());
}

TEST_CASE("job_wire: a fully populated RoundReport round-trips through JSON text, field by field") {
  const RoundReport r = full_report();
  const auto back = round_report_from_json(through_text(round_report_to_json(r)));
  REQUIRE(back.ok());
  CHECK(back->round == r.round);
  CHECK(back->attempts == r.attempts);
  CHECK(back->clients_sampled == r.clients_sampled);
  CHECK(back->clients_reported == r.clients_reported);
  CHECK(back->clients_dropped == r.clients_dropped);
  CHECK(back->samples == r.samples);
  CHECK(back->train_loss == r.train_loss);
  CHECK(back->learning_rate == r.learning_rate);
  REQUIRE(back->eval.size() == 3);
  for (size_t i = 0; i < 3; ++i) {
    CHECK(back->eval[i].head == r.eval[i].head);
    CHECK(back->eval[i].task == r.eval[i].task);
    CHECK(back->eval[i].loss == r.eval[i].loss);
    CHECK(back->eval[i].metric == r.eval[i].metric);
    CHECK(back->eval[i].value == r.eval[i].value);
  }
  CHECK(back->affinity == r.affinity);  // exact, 5e-324 (the smallest subnormal) included
  REQUIRE(back->clusters.size() == 2);
  for (size_t c = 0; c < 2; ++c) {
    CHECK(back->clusters[c].clients == r.clusters[c].clients);
    CHECK(back->clusters[c].samples == r.clusters[c].samples);
    CHECK(back->clusters[c].clients_reported == r.clusters[c].clients_reported);
    REQUIRE(back->clusters[c].eval.size() == r.clusters[c].eval.size());
  }
  CHECK(back->clusters[0].eval[0].head == "act_a");
  CHECK(back->clusters[0].eval[0].value == 0.9);
  CHECK(back->lookaheads == r.lookaheads);
  CHECK(back->affinity_seconds == r.affinity_seconds);
  CHECK(back->alignment == r.alignment);
  CHECK(back->calibration_samples == r.calibration_samples);
  CHECK(back->calibrated == r.calibrated);
  CHECK(back->seconds == r.seconds);
  CHECK(back->client_wait_seconds == r.client_wait_seconds);
  CHECK(back->client_joules == r.client_joules);
  CHECK(back->client_meters == r.client_meters);
  CHECK(back->stopped == r.stopped);
}

TEST_CASE("job_wire: a report without affinity or evaluation round-trips") {
  RoundReport r;
  r.round = 1;
  r.attempts = 1;
  const auto back = round_report_from_json(through_text(round_report_to_json(r)));
  REQUIRE(back.ok());
  CHECK(back->eval.empty());
  CHECK(back->affinity.empty());
  CHECK(back->client_meters.empty());
  CHECK_FALSE(back->stopped);
  CHECK(round_report_to_json(r).at("affinity") == json::array());
  CHECK(back->alignment.empty());
  CHECK(round_report_to_json(r).at("alignment") == json::object());
}

TEST_CASE("job_wire: on a federation, eval may be shorter than the KxK affinity") {
  RoundReport r = full_report();
  r.eval.pop_back();  // no client evaluated head act_c
  const auto back = round_report_from_json(round_report_to_json(r));
  REQUIRE(back.ok());
  CHECK(back->affinity.size() == 3);
  CHECK(back->eval.size() == 2);
}

TEST_CASE("job_wire: a malformed report is refused, naming the field") {
  json j = round_report_to_json(full_report());

  SECTION("not an object") { CHECK(report_refusal(json("report")) == "report"); }
  SECTION("a missing field") {
    j.erase("client_wait_seconds");
    CHECK(report_refusal(j) == "client_wait_seconds");
  }
  SECTION("a missing eval field") {
    j["eval"][1].erase("metric");
    CHECK(report_refusal(j) == "eval[1].metric");
  }
  SECTION("a string for a number") {
    j["train_loss"] = "0.3";
    CHECK(report_refusal(j) == "train_loss");
  }
  SECTION("a number for the stopped flag") {
    j["stopped"] = 1;
    CHECK(report_refusal(j) == "stopped");
  }
  SECTION("an unknown key") {
    j["energy"] = 5;
    CHECK(report_refusal(j) == "energy");
  }
  SECTION("an unknown key in an eval entry") {
    j["eval"][2]["f1"] = 0.5;
    CHECK(report_refusal(j) == "eval[2].f1");
  }
  SECTION("a cluster's negative client, missing count or bad eval entry") {
    j["clusters"][1]["clients"][0] = -1;
    CHECK(report_refusal(j) == "clusters[1].clients");
    j = round_report_to_json(full_report());
    j["clusters"][0].erase("samples");
    CHECK(report_refusal(j) == "clusters[0].samples");
    j = round_report_to_json(full_report());
    j["clusters"][0]["eval"][0]["value"] = "high";
    CHECK(report_refusal(j) == "clusters[0].eval[0].value");
    j = round_report_to_json(full_report());
    j["clusters"] = json::object();
    CHECK(report_refusal(j) == "clusters");
  }
  SECTION("an affinity of 2×3") {
    j["affinity"] = json{{0.0, 0.1, 0.2}, {0.3, 0.4, 0.5}};
    CHECK(report_refusal(j) == "affinity");  // fewer rows than eval's 3 heads
  }
  SECTION("an affinity of 3 rows, one short") {
    j["affinity"][1] = json{0.0, 0.1};
    CHECK(report_refusal(j) == "affinity[1]");
  }
  SECTION("an alignment that is not an object of numbers from -1 to 1") {
    for (const json& bad : {json::array({0.5}), json{{"act_a", 1.5}}, json{{"act_a", "high"}},
                            json{{"act_a", -1.01}}, json{{"act_a", nullptr}}}) {
      INFO(bad.dump());
      j["alignment"] = bad;
      CHECK(report_refusal(j).rfind("alignment", 0) == 0);
    }
  }
  SECTION("an affinity smaller than eval, though square") {
    j["affinity"] = json{{0.0, 0.1}, {0.2, 0.3}};
    CHECK(report_refusal(j) == "affinity");
  }
  SECTION("NaN as a string, as null, or in the json itself") {
    for (const json& nan : {json("NaN"), json(nullptr), json(std::nan(""))}) {
      j["eval"][0]["loss"] = nan;
      CHECK(report_refusal(j) == "eval[0].loss");
    }
    j["eval"][0]["loss"] = 0.5;
    for (const json& nan : {json("NaN"), json(nullptr), json(-std::numeric_limits<double>::infinity())}) {
      j["affinity"][2][1] = nan;
      CHECK(report_refusal(j) == "affinity[2][1]");
    }
  }
  SECTION("a NaN report: to_json writes it, dump() makes it null, from_json refuses it") {
    RoundReport r = full_report();
    r.train_loss = std::nan("");
    const json nan = round_report_to_json(r);
    CHECK(nan.at("train_loss").is_number_float());
    CHECK(through_text(nan).at("train_loss").is_null());
    CHECK(report_refusal(nan) == "train_loss");
    CHECK(report_refusal(through_text(nan)) == "train_loss");
  }
  SECTION("a number too large for a double: parse() refuses the text, so text never gives infinity") {
    std::string text = j.dump();
    const std::string seconds = "\"seconds\":12.75";
    REQUIRE(text.find(seconds) != std::string::npos);
    text.replace(text.find(seconds), seconds.size(), "\"seconds\":1e999");
    CHECK_THROWS_AS(json::parse(text), json::out_of_range);
    j["seconds"] = std::numeric_limits<double>::infinity();  // only a json built in-process holds one
    CHECK(report_refusal(j) == "seconds");
  }
  SECTION("negative counts and measures") {
    for (const char* key : {"clients_sampled", "clients_reported", "clients_dropped", "samples", "lookaheads"}) {
      json k = j;
      k[key] = -1;
      CHECK(report_refusal(k) == key);
    }
    for (const char* key : {"affinity_seconds", "seconds", "client_wait_seconds", "client_joules"}) {
      json k = j;
      k[key] = -0.5;
      CHECK(report_refusal(k) == key);
    }
  }
  SECTION("round and attempts count from 1") {
    json k = j;
    k["round"] = 0;
    CHECK(report_refusal(k) == "round");
    k = j;
    k["attempts"] = 0;
    CHECK(report_refusal(k) == "attempts");
  }
  SECTION("a negative train_loss or eval value is a number like any other") {
    j["train_loss"] = -0.25;
    j["eval"][0]["value"] = -3.0;
    CHECK(round_report_from_json(j).ok());
  }
  SECTION("an unknown meter") {
    for (const char* meters : {"joulescope", "model+", "+rapl", "model++rapl"}) {
      j["client_meters"] = meters;
      CHECK(report_refusal(j) == "client_meters");
    }
    j["client_meters"] = "model+nvml+rapl";
    CHECK(round_report_from_json(j).ok());
  }
}
