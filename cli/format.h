#pragma once
// muflctl's output for people: aligned tables, detail blocks, progress lines and error text,
// built from the API's JSON documents. Pure functions of their inputs (no I/O), so tests pin
// them down. (--json output needs none of this: it prints the documents themselves.)
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace mufl::cli {

// Columns padded to their widest cell, two spaces apart, a header row first; every line ends
// in '\n' and carries no trailing spaces. A row shorter than the header is padded with "".
std::string table(const std::vector<std::string>& header, const std::vector<std::vector<std::string>>& rows);

// "Unauthorized (401): the bearer token is not valid", then "  FIELD: DETAIL" for each field
// error, from a problem+json body; "HTTP STATUS" plus the start of the body for anything else.
// No trailing newline.
std::string problem_text(int status, const std::string& body);

// A JSON value as a table cell: strings bare, null as "-", numbers with up to 4 significant
// digits (integers whole).
std::string cell(const nlohmann::json& v);

// An activity's metrics as "loss 0.1100 accuracy 0.9670". Takes either the per-task map of
// GET /v1/activities/{id}/rounds ({"class": {"loss": …, "accuracy": …}}) or a flat map
// ({"loss": …}, as in the round.finished event); loss first, then the others by name; ""
// when there are none. With several tasks each name gets its task as prefix ("class.loss").
std::string metrics_text(const nlohmann::json& metrics);

// The flat form of either shape: {"loss": …, "accuracy": …}; "task.name" keys with several
// tasks; {} for null or anything that is not an object.
nlohmann::json flat_metrics(const nlohmann::json& metrics);

std::string activities_table(const nlohmann::json& items);   // GET /v1/activities items
std::string activity_details(const nlohmann::json& a);       // GET /v1/activities/{id}
std::string groups_table(const nlohmann::json& items);       // GET /v1/groups items
std::string group_details(const nlohmann::json& g);          // GET /v1/groups/{id}
std::string devices_table(const nlohmann::json& doc);        // GET /v1/devices
std::string usage_table(const nlohmann::json& doc);          // GET /v1/usage

// Where a watched activity stands.
struct Progress {
  std::string id;
  std::string state;
  int64_t round = 0;   // rounds done
  int64_t rounds = 0;  // of this many
  nlohmann::json metrics = nlohmann::json::object();  // of round `round`, either shape metrics_text takes
};

// "act_… [########------------] 7/20 training loss 0.1100 accuracy 0.9670" with a bar of
// `bar_width` cells (0: no bar, "act_… round 7/20 training …", the plain line for logs).
std::string progress_line(const Progress& p, int bar_width);

// {"activity_id","state","round","rounds","metrics"} (metrics flat): one line of watch --json.
nlohmann::json progress_json(const Progress& p);

}  // namespace mufl::cli
