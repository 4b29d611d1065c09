#include "service/problem.h"

#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>

#include "core/ids.h"
#include "core/random.h"
#include "core/utf8.h"

#include "service/json_response.h"

namespace mufl::service {

int http_status_for(Status::Code code) {
  switch (code) {
    case Status::Code::kOk: return 200;
    case Status::Code::kInvalidArgument: return 400;
    case Status::Code::kUnauthenticated: return 401;
    case Status::Code::kPermissionDenied: return 403;
    case Status::Code::kNotFound: return 404;
    case Status::Code::kAlreadyExists: return 409;
    case Status::Code::kConflict: return 409;
    case Status::Code::kFailedPrecondition: return 409;
    case Status::Code::kResourceExhausted: return 429;
    case Status::Code::kUnavailable: return 503;
    case Status::Code::kInternal: return 500;
    case Status::Code::kInsufficientStorage: return 507;
  }
  return 500;
}

namespace {
const char* problem_type_for(Status::Code code) {
  switch (code) {
    case Status::Code::kInvalidArgument: return "/problems/invalid-request";
    case Status::Code::kAlreadyExists: return "/problems/already-exists";
    case Status::Code::kConflict: return "/problems/conflict";
    case Status::Code::kFailedPrecondition: return "/problems/wrong-state";
    case Status::Code::kResourceExhausted: return "/problems/quota-exceeded";
    case Status::Code::kInsufficientStorage: return "/problems/insufficient-storage";
    default: return "about:blank";
  }
}
}  // namespace

const char* reason_phrase(int status) {
  switch (status) {
    case 200: return "OK";
    case 201: return "Created";
    case 204: return "No Content";
    case 400: return "Bad Request";
    case 401: return "Unauthorized";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 408: return "Request Timeout";
    case 409: return "Conflict";
    case 413: return "Content Too Large";
    case 415: return "Unsupported Media Type";
    case 429: return "Too Many Requests";
    case 431: return "Request Header Fields Too Large";
    case 500: return "Internal Server Error";
    case 503: return "Service Unavailable";
    case 507: return "Insufficient Storage";
    default: return "Error";
  }
}

namespace {
// The members every problem has.
nlohmann::json problem_json(int status, const std::string& type, const std::string& detail) {
  return {{"type", type}, {"title", reason_phrase(status)}, {"status", status}, {"detail", detail}};
}

HttpResponse problem_response(int status, const nlohmann::json& body) {
  HttpResponse r;
  r.status = status;
  r.content_type = "application/problem+json";
  r.body = dump_json(body);
  return r;
}
}  // namespace

HttpResponse problem(int status, const std::string& type, const std::string& detail,
                     const std::vector<FieldError>& errors) {
  nlohmann::json j = problem_json(status, type, detail);
  if (!errors.empty()) {
    nlohmann::json list = nlohmann::json::array();
    for (const auto& e : errors) list.push_back({{"field", e.field}, {"detail", e.detail}});
    j["errors"] = list;
  }
  return problem_response(status, j);
}

HttpResponse incident(int status, const std::string& cause) {
  const std::string id = new_id("inc", SecureRandom::instance());
  spdlog::error("incident {}: {}", id, sanitize_utf8(cause));
  const bool busy = status == 503;
  nlohmann::json body = problem_json(
      status, "about:blank",
      busy ? "the service is busy; retry shortly (incident " + id + ")"
           : "internal error (incident " + id + "); the operator can look it up in the server log");
  body["incident"] = id;
  HttpResponse r = problem_response(status, body);
  if (busy) r.headers.emplace_back("Retry-After", "1");
  return r;
}

HttpResponse storage_full(const std::string& cause) {
  spdlog::warn("storage full: {}", sanitize_utf8(cause));  // the path and SQLite's words stay in the log
  HttpResponse r = problem(507, "/problems/insufficient-storage",
                           "mufld's disk is full: nothing was changed; retry once the operator has freed space");
  r.headers.emplace_back("Retry-After", "30");
  return r;
}

HttpResponse problem_from_status(const Status& status) {
  if (status.code() == Status::Code::kInternal) return incident(500, status.to_string());
  if (status.code() == Status::Code::kUnavailable) return incident(503, status.to_string());
  if (status.code() == Status::Code::kInsufficientStorage) return storage_full(status.to_string());
  HttpResponse r = problem(http_status_for(status.code()), problem_type_for(status.code()), status.message(),
                           status.field_errors());
  if (status.code() == Status::Code::kUnauthenticated)
    r.headers.emplace_back("WWW-Authenticate", "Bearer realm=\"mufl\"");
  return r;
}

}  // namespace mufl::service
