#include "cli/api.h"

#include <cctype>
#include <cstdio>

#include "cli/exit_codes.h"
#include "cli/format.h"

namespace mufl::cli {

std::string url_encode(const std::string& text) {
  std::string out;
  for (unsigned char c : text) {
    if (std::isalnum(c) || c == '-' || c == '.' || c == '_' || c == '~') {
      out += static_cast<char>(c);
    } else {
      char buf[4];
      std::snprintf(buf, sizeof buf, "%%%02X", c);
      out += buf;
    }
  }
  return out;
}

namespace {

client::ClientOptions client_options(const Options& o) {
  client::ClientOptions c;
  c.timeout = std::chrono::milliseconds(static_cast<int64_t>(o.timeout_seconds * 1000));
  c.tls = o.url.tls;
  c.ca_file = o.ca_file;
  return c;
}

}  // namespace

Api::Api(const Options& options)
    : options_(options), http_(options.url.host, options.url.port, client_options(options)) {}

std::map<std::string, std::string> Api::with_token(std::map<std::string, std::string> headers) const {
  if (!options_.token.empty()) headers["Authorization"] = "Bearer " + options_.token;
  return headers;
}

Reply Api::reply_for(Result<client::Response> r) {
  Reply out;
  if (!r.ok()) {
    const Status& s = r.status();
    out.error = s.message();
    out.exit_code = kExitUnreachable;
    if (s.code() == Status::Code::kInvalidArgument) out.exit_code = kExitLocal;  // --ca-file unreadable
    if (s.code() == Status::Code::kUnauthenticated) {
      out.exit_code = kExitTls;
      if (out.error.find("certificate verify failed") != std::string::npos) out.error += "; pass --ca-file";
    }
    return out;
  }
  out.response = std::move(r).value();
  out.exit_code = exit_code_for_http(out.response.status);
  if (out.exit_code != kExitOk) out.error = problem_text(out.response.status, out.response.body);
  return out;
}

Reply Api::call(const std::string& method, const std::string& path, const std::string& body,
                const std::map<std::string, std::string>& headers) {
  auto h = with_token(headers);
  h["Accept"] = "application/json";
  if (!body.empty()) h["Content-Type"] = "application/json";
  return reply_for(http_.send(method, options_.url.prefix + path, body, h));
}

Reply Api::call_json(const std::string& method, const std::string& path, const std::string& body,
                     const std::map<std::string, std::string>& headers) {
  Reply r = call(method, path, body, headers);
  if (!r.ok()) return r;
  r.document = nlohmann::json::parse(r.response.body, nullptr, /*allow_exceptions=*/false);
  if (r.document.is_discarded()) {
    r.exit_code = kExitServerError;
    r.error = method + " " + path + " answered " + std::to_string(r.response.status) + " with a body that is not JSON";
  }
  return r;
}

Reply Api::list_all(const std::string& path) {
  nlohmann::json items = nlohmann::json::array();
  std::string cursor;
  for (;;) {
    Reply page = call_json("GET", path + "?limit=1000" + (cursor.empty() ? "" : "&cursor=" + url_encode(cursor)));
    if (!page.ok()) return page;
    const auto& doc = page.document;
    const auto* page_items = doc.is_object() && doc.contains("items") ? &doc["items"] : nullptr;
    if (!page_items || !page_items->is_array()) {
      page.exit_code = kExitServerError;
      page.error = "GET " + path + " answered a list without items";
      return page;
    }
    for (const auto& item : *page_items) items.push_back(item);
    const auto next = doc.find("next_cursor");
    if (next == doc.end() || !next->is_string() || next->get<std::string>().empty()) {
      page.document = {{"items", std::move(items)}};
      return page;
    }
    cursor = next->get<std::string>();
  }
}

Result<client::Response> Api::stream(const std::string& path, std::map<std::string, std::string> headers,
                                     const std::function<bool(const client::Response&)>& on_head,
                                     const std::function<bool(std::string_view)>& on_data,
                                     std::chrono::milliseconds idle_timeout) {
  return http_.stream(options_.url.prefix + path, with_token(std::move(headers)), on_head, on_data, idle_timeout);
}

}  // namespace mufl::cli
