#pragma once
// Small helpers that handlers share: JSON replies and reading a JSON request body.
#include <nlohmann/json.hpp>

#include "core/result.h"
#include "service/http_types.h"

namespace mufl::service {

inline HttpResponse json_response(int status, const nlohmann::json& body) {
  HttpResponse r;
  r.status = status;
  r.body = body.dump();
  return r;
}

}  // namespace mufl::service
