#include "core/status.h"

namespace mufl {

const char* status_code_name(Status::Code code) {
  switch (code) {
    case Status::Code::kOk: return "OK";
    case Status::Code::kInvalidArgument: return "InvalidArgument";
    case Status::Code::kNotFound: return "NotFound";
    case Status::Code::kAlreadyExists: return "AlreadyExists";
    case Status::Code::kConflict: return "Conflict";
    case Status::Code::kResourceExhausted: return "ResourceExhausted";
    case Status::Code::kUnauthenticated: return "Unauthenticated";
    case Status::Code::kPermissionDenied: return "PermissionDenied";
    case Status::Code::kFailedPrecondition: return "FailedPrecondition";
    case Status::Code::kUnavailable: return "Unavailable";
    case Status::Code::kInternal: return "Internal";
    case Status::Code::kInsufficientStorage: return "InsufficientStorage";
  }
  return "Unknown";
}

std::string Status::to_string() const {
  if (is_ok()) return "OK";
  std::string s = status_code_name(code_);
  s += ": ";
  s += message_;
  for (const auto& f : fields_) s += "; " + f.field + ": " + f.detail;
  return s;
}

}  // namespace mufl
