#pragma once
// Small helpers that handlers share: JSON replies and reading a JSON request body.
#include <nlohmann/json.hpp>

#include "core/result.h"
#include "service/http_types.h"

namespace mufl::service {

// `body` as compact JSON text. A string that is not valid UTF-8 (which nlohmann would throw
// on) has its bad bytes replaced by U+FFFD: a reply is always well-formed JSON.
inline std::string dump_json(const nlohmann::json& body) {
  return body.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

inline HttpResponse json_response(int status, const nlohmann::json& body) {
  HttpResponse r;
  r.status = status;
  r.body = dump_json(body);
  return r;
}

}  // namespace mufl::service
