#pragma once
// Problem details (RFC 9457): every error mufl returns is application/problem+json with
// type, title, status, detail and, for invalid input, "errors": [{"field", "detail"}].
// This file is the one table that maps a Status code to an HTTP status.
#include <string>
#include <vector>

#include "core/status.h"
#include "service/http_types.h"

namespace mufl::service {

// The HTTP status for a Status code (kInvalidArgument → 400, kNotFound → 404, …).
int http_status_for(Status::Code code);

// A problem+json response. `type` is a URI reference naming the kind of problem; mufl uses
// "about:blank" for plain HTTP statuses and "/problems/<name>" for its own kinds
// (documented in docs/openapi.yaml).
HttpResponse problem(int status, const std::string& type, const std::string& detail,
                     const std::vector<FieldError>& errors = {});

// The problem+json response for a failed Status. kInternal and kUnavailable become incident()
// replies (500, 503): their messages (SQLite's, file paths) go to the log, not to the client;
// kInsufficientStorage becomes storage_full() (507).
HttpResponse problem_from_status(const Status& status);

// A server-side failure: a 500 (or 503 with Retry-After: 1) whose detail only says that it failed,
// with an "incident" member ("inc_…", fresh for each call); `cause` goes to the log at error
// level with the same id, so an operator finds it from what the client reports.
HttpResponse incident(int status, const std::string& cause);

// The disk or the database is full: 507, type /problems/insufficient-storage, "Retry-After: 30";
// `cause` goes to the log only. The request changed nothing (its transaction rolled back).
HttpResponse storage_full(const std::string& cause);

// The standard reason phrase for an HTTP status ("Not Found").
const char* reason_phrase(int status);

}  // namespace mufl::service
