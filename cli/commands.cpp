#include "cli/commands.h"

#include <filesystem>
#include <iterator>

#include "cli/api.h"
#include "cli/atomic_file.h"
#include "cli/exit_codes.h"
#include "cli/format.h"
#include "cli/watch.h"
#include "core/file_io.h"

namespace mufl::cli {

using nlohmann::json;

namespace {

int fail(Console& io, int code, const std::string& message) {
  io.err << "muflctl: " << message << "\n";
  return code;
}

int fail(Console& io, const Reply& r) { return fail(io, r.exit_code, r.error); }

// "?a=1&b=2" from the pairs whose value is not empty; "" when none is.
std::string query(const std::vector<std::pair<std::string, std::string>>& params) {
  std::string q;
  for (const auto& [k, v] : params)
    if (!v.empty()) q += (q.empty() ? "?" : "&") + k + "=" + url_encode(v);
  return q;
}

int submit(Api& api, const Options& o, Console& io) {
  const std::string& file = o.args[0];
  std::string text;
  if (file == "-") {
    text.assign(std::istreambuf_iterator<char>(io.in), std::istreambuf_iterator<char>());
  } else {
    auto bytes = read_file(file);
    if (!bytes.ok()) return fail(io, kExitLocal, "cannot read " + file + ": " + bytes.status().message());
    text = std::move(*bytes);
  }
  const std::string name = file == "-" ? "stdin" : file;
  json doc;
  try {
    doc = json::parse(text);
  } catch (const json::parse_error& e) {
    return fail(io, kExitUsage, name + " is not valid JSON: " + e.what());
  }
  // Every item is checked before the first is sent: a malformed file submits nothing.
  const bool single = doc.is_object();
  if (!single && !doc.is_array())
    return fail(io, kExitUsage, name + " must hold an activity object or an array of them");
  if (doc.is_array() && doc.empty()) return fail(io, kExitUsage, name + " holds an empty array: no activities");
  const json items = single ? json::array({doc}) : doc;
  for (size_t i = 0; i < items.size(); ++i)
    if (!items[i].is_object()) return fail(io, kExitUsage, name + ": item " + std::to_string(i) + " is not a JSON object");

  json created = json::array(), failed;
  int code = kExitOk;
  for (size_t i = 0; i < items.size(); ++i) {
    std::map<std::string, std::string> headers;
    if (!o.idempotency_key.empty())
      headers["Idempotency-Key"] = single ? o.idempotency_key : o.idempotency_key + "-" + std::to_string(i);
    Reply r = api.call_json("POST", "/v1/activities", items[i].dump(), headers);
    if (!r.ok()) {
      code = r.exit_code;
      const json problem = json::parse(r.response.body, nullptr, false);
      failed = {{"index", i}, {"status", r.response.status},
                {"problem", problem.is_discarded() ? json() : problem}};
      std::string which = single ? "" : "item " + std::to_string(i) + ": ";
      if (!single && items[i].contains("name") && items[i]["name"].is_string())
        which = "item " + std::to_string(i) + " (" + items[i]["name"].get<std::string>() + "): ";
      io.err << "muflctl: " << which << r.error << "\n";
      if (!single)
        io.err << "muflctl: " << i << " of " << items.size() << " submitted (their ids are above and they stay);"
               << " items " << i << " to " << items.size() - 1 << " were not submitted\n";
      break;
    }
    const std::string id = r.document.value("id", "");
    created.push_back({{"index", i}, {"id", id}, {"activity", r.document}});
    if (!o.json) io.out << id << "\n" << std::flush;  // at once: a later failure keeps them on screen
  }
  if (o.json) io.out << json{{"items", created}, {"failed", failed}}.dump() << "\n";
  return code;
}

// GETs `path` + `params`, following next_cursor when --all; prints one page (the API's body)
// or {"items": every page, "next_cursor": null}.
int list_pages(Api& api, const Options& o, Console& io, const std::string& path,
               std::vector<std::pair<std::string, std::string>> params,
               std::string (*render)(const json&)) {
  params.emplace_back("limit", o.limit ? std::to_string(o.limit) : "");
  params.emplace_back("cursor", o.cursor);
  json items = json::array();
  json next;
  for (;;) {
    Reply r = api.call_json("GET", path + query(params));
    if (!r.ok()) return fail(io, r);
    if (!o.all && o.json) {
      io.out << r.response.body << "\n";
      return kExitOk;
    }
    for (const auto& item : r.document.value("items", json::array())) items.push_back(item);
    next = r.document.value("next_cursor", json());
    if (!o.all || !next.is_string()) break;
    params.back().second = next.get<std::string>();
  }
  if (o.json) {
    io.out << json{{"items", items}, {"next_cursor", nullptr}}.dump() << "\n";
    return kExitOk;
  }
  io.out << render(items);
  if (next.is_string()) io.err << "muflctl: more: --cursor " << next.get<std::string>() << " (or --all)\n";
  return kExitOk;
}

// One GET whose body is printed as is with --json, rendered otherwise.
int show(Api& api, const Options& o, Console& io, const std::string& path, std::string (*render)(const json&)) {
  Reply r = api.call_json("GET", path);
  if (!r.ok()) return fail(io, r);
  if (o.json)
    io.out << r.response.body << "\n";
  else
    io.out << render(r.document);
  return kExitOk;
}

int cancel(Api& api, const Options& o, Console& io) {
  Reply r = api.call_json("DELETE", "/v1/activities/" + url_encode(o.args[0]));
  if (!r.ok()) return fail(io, r);
  if (o.json)
    io.out << r.response.body << "\n";
  else
    io.out << r.document.value("id", o.args[0]) << " " << r.document.value("state", "") << "\n";
  return kExitOk;
}

int download(Api& api, const Options& o, Console& io) {
  // Checked before the transfer too, so a refused overwrite costs no download.
  if (!o.force && std::filesystem::symlink_status(o.output).type() != std::filesystem::file_type::not_found)
    return fail(io, kExitLocal, o.output + " exists; use --force to replace it");
  const std::string which = o.cluster >= 0 ? "?cluster=" + std::to_string(o.cluster) : "";
  Reply r = api.call("GET", "/v1/activities/" + url_encode(o.args[0]) + "/model" + which);
  if (!r.ok()) return fail(io, r);
  const std::string& bytes = r.response.body;
  const std::string sha = sha256_hex(bytes);
  const std::string expected = r.response.header("x-content-sha256");
  if (!expected.empty() && expected != sha)
    return fail(io, kExitServerError,
                "the model's SHA-256 is " + sha + " but the server announced " + expected + "; nothing written");
  if (Status s = write_file_atomically(o.output, bytes, o.force); !s.is_ok())
    return fail(io, kExitLocal, s.message());
  if (o.json)
    io.out << json{{"id", o.args[0]}, {"path", o.output}, {"bytes", bytes.size()}, {"sha256", sha}}.dump() << "\n";
  else
    io.out << "wrote " << o.output << " (" << bytes.size() << " bytes, sha256 " << sha << ")\n";
  return kExitOk;
}

}  // namespace

int run_command(const Options& o, Console& io) {
  Api api(o);
  const std::string& c = o.command;
  if (c == "submit") return submit(api, o, io);
  if (c == "list") return list_pages(api, o, io, "/v1/activities", {{"state", o.state}}, activities_table);
  if (c == "get") return show(api, o, io, "/v1/activities/" + url_encode(o.args[0]), activity_details);
  if (c == "watch") return watch(api, o, io);
  if (c == "cancel") return cancel(api, o, io);
  if (c == "download") return download(api, o, io);
  if (c == "groups" && !o.args.empty()) return show(api, o, io, "/v1/groups/" + url_encode(o.args[0]), group_details);
  if (c == "groups") return list_pages(api, o, io, "/v1/groups", {{"phase", o.phase}}, groups_table);
  if (c == "devices") return show(api, o, io, "/v1/devices", devices_table);
  if (c == "usage")
    return show(api, o, io, "/v1/usage" + query({{"from", o.from}, {"to", o.to}, {"tenant", o.tenant}}), usage_table);
  return fail(io, kExitUsage, "unknown command '" + c + "' (see muflctl --help)");
}

}  // namespace mufl::cli
