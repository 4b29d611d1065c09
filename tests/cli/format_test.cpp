#include <catch2/catch.hpp>

#include <nlohmann/json.hpp>

#include "cli/format.h"

using namespace mufl::cli;
using nlohmann::json;

TEST_CASE("cli format: tables align columns and end lines without spaces") {
  CHECK(table({"ID", "STATE"}, {{"act_1", "queued"}, {"a", ""}}) ==
        "ID     STATE\n"
        "act_1  queued\n"
        "a\n");
  CHECK(table({"A", "B", "C"}, {{"x"}}) == "A  B  C\nx\n");
}

TEST_CASE("cli format: problem text has title, status, detail and each field error") {
  const std::string body =
      R"({"type":"/problems/invalid-request","title":"Bad Request","status":400,"detail":"the activity request has invalid fields",)"
      R"("errors":[{"field":"rounds","detail":"must be from 1 to 10000"}]})";
  CHECK(problem_text(400, body) ==
        "Bad Request (400): the activity request has invalid fields\n  rounds: must be from 1 to 10000");
  CHECK(problem_text(401, R"({"title":"Unauthorized","status":401,"detail":"the bearer token is not valid"})") ==
        "Unauthorized (401): the bearer token is not valid");
  CHECK(problem_text(502, "<html>bad\ngateway</html>") == "HTTP 502: <html>bad gateway</html>");
  CHECK(problem_text(500, "") == "HTTP 500");
}

TEST_CASE("cli format: metrics in either shape, loss first") {
  CHECK(metrics_text(json::parse(R"({"class":{"accuracy":0.967,"loss":0.11}})")) == "loss 0.1100 accuracy 0.9670");
  CHECK(metrics_text(json::parse(R"({"loss":0.5,"mse":0.25})")) == "loss 0.5000 mse 0.2500");
  CHECK(metrics_text(json::parse(R"({"a":{"loss":1},"b":{"iou":0.5,"loss":2}})")) ==
        "a.loss 1.0000 b.loss 2.0000 b.iou 0.5000");
  CHECK(metrics_text(json()) == "");
  CHECK(metrics_text(json::object()) == "");
  CHECK(flat_metrics(json::parse(R"({"class":{"loss":0.1}})")) == json::parse(R"({"loss":0.1})"));
}

TEST_CASE("cli format: cells") {
  CHECK(cell(json()) == "-");
  CHECK(cell(json("x")) == "x");
  CHECK(cell(json(7)) == "7");
  CHECK(cell(json(2.0)) == "2");
  CHECK(cell(json(0.123456)) == "0.1235");
  CHECK(cell(json(true)) == "true");
}

TEST_CASE("cli format: progress lines with and without a bar") {
  Progress p{"act_1", "training", 5, 20, json::parse(R"({"class":{"loss":0.25,"accuracy":0.9}})")};
  CHECK(progress_line(p, 8) == "act_1 [##------] 5/20 training loss 0.2500 accuracy 0.9000");
  CHECK(progress_line(p, 0) == "act_1 round 5/20 training loss 0.2500 accuracy 0.9000");
  Progress empty{"act_2", "queued", 0, 0, json::object()};
  CHECK(progress_line(empty, 4) == "act_2 [----] 0/0 queued");
  CHECK(progress_json(p) == json::parse(R"({"activity_id":"act_1","state":"training","round":5,"rounds":20,
                                           "metrics":{"loss":0.25,"accuracy":0.9}})"));
}

TEST_CASE("cli format: an activity list and one activity") {
  const json a = json::parse(R"({"id":"act_1","name":"digits","state":"training","state_reason":"",
      "dataset":"mnist","task":"class","updated_at":"2026-12-01T08:00:00Z","created_at":"2026-12-01T07:00:00Z",
      "progress":{"round":7,"rounds":50,"device":"cpu:0","elapsed_seconds":41.2,
                  "latest":{"round":7,"metrics":{"class":{"loss":0.11,"accuracy":0.967}}},"model_url":null},
      "groups":["grp_1","grp_2"],"energy":{"joules":1930.2,"device_seconds":29.7,"grams_co2e":0.25,"work_units":12},
      "paused":null,"waiting":null})");
  const std::string list = activities_table(json::array({a}));
  CHECK_THAT(list, Catch::StartsWith("ID     NAME    STATE     ROUND"));
  CHECK_THAT(list, Catch::Contains("act_1  digits  training  7/50   mnist/class   loss 0.1100 accuracy 0.9670"));
  const std::string one = activity_details(a);
  CHECK_THAT(one, Catch::Contains("state:         training\n"));
  CHECK_THAT(one, Catch::Contains("round:         7/50\n"));
  CHECK_THAT(one, Catch::Contains("groups:        grp_1,grp_2\n"));
  CHECK_THAT(one, Catch::Contains("energy:        1930 J, 29.7 device-s, 0.25 g CO2e\n"));
  CHECK_THAT(one, Catch::Contains("model:         -\n"));
}

TEST_CASE("cli format: devices, usage and a group") {
  const json devices = json::parse(R"({"items":[{"name":"cpu:0","kind":"cpu","state":"busy",
      "work_unit":{"group_id":"grp_1","round":3},"power_watts":65.0,"energy_joules":5123.4,"meter":"model"}],
      "policy":{"name":"fifo"}})");
  CHECK(devices_table(devices) ==
        "NAME   KIND  STATE  WORK UNIT      POWER W  ENERGY J  METER\n"
        "cpu:0  cpu   busy   grp_1 round 3  65       5123      model\n"
        "policy: fifo\n");
  const json usage = json::parse(R"({"tenant_id":"ten_1","from":"2026-01-01","to":"2026-01-02",
      "days":[{"date":"2026-01-01","device_seconds":10.5,"joules":100,"grams_co2e":0.01,"work_units":2}],
      "total":{"device_seconds":10.5,"joules":100,"grams_co2e":0.01,"work_units":2}})");
  const std::string u = usage_table(usage);
  CHECK_THAT(u, Catch::StartsWith("tenant ten_1, 2026-01-01 to 2026-01-02\n"));
  CHECK_THAT(u, Catch::Contains("2026-01-01  10.5      100     0.01    2\n"));
  CHECK_THAT(u, Catch::Contains("total       10.5"));
  const json g = json::parse(R"({"id":"grp_1","phase":"split","policy":"mufl","round":3,"consolidation_rounds":3,
      "device":null,"parent":null,"reason":null,"waiting":null,"other_activities":1,
      "activities":[{"id":"act_1","task":"class","joined_round":0,"left_round":null},
                    {"id":"act_2","task":"parity","joined_round":0,"left_round":null}],
      "affinity":{"tasks":[{"activity_id":"act_1","task":"class"},{"activity_id":"act_2","task":"parity"}],
                  "matrix":[[null,0.5],[-0.25,null]],"rounds_measured":3},
      "split":{"round":3,"score":0.41,"method":"exhaustive","groups":[["act_1"],["act_2","other"]],
               "child_groups":["grp_2","grp_3"]}})");
  const std::string d = group_details(g);
  CHECK_THAT(d, Catch::Contains("phase:         split\n"));
  CHECK_THAT(d, Catch::Contains("act_1          -      0.5\n"));
  CHECK_THAT(d, Catch::Contains("(+1 of other tenants)"));
  CHECK_THAT(d, Catch::Contains("split at round 3 (exhaustive, score 0.41):\n  grp_2: act_1\n  grp_3: act_2,other\n"));
  CHECK_THAT(groups_table(json::array({g})), Catch::Contains("grp_1  split  3      -       -        act_1,act_2 +1 other  -"));
  json waits = g;
  waits["phase"] = "training";
  waits["waiting"] = "all 1 devices are busy, draining or drained (1 training)";
  waits["waiting_reason"] = "no_free_device";
  CHECK_THAT(groups_table(json::array({waits})), Catch::Contains("grp_1  training  3      -       no_free_device  act_1"));
  CHECK_THAT(group_details(waits),
             Catch::Contains("waiting:       all 1 devices are busy, draining or drained (1 training) [no_free_device]\n"));
}
