#pragma once
// Status: the outcome of an operation that can fail in an expected way (LevelDB style).
// Success is cheap (no allocation). A failure carries a code the caller branches on, a message
// for people, and for invalid input the list of fields that were wrong.
//
// Thread safety: a Status is a value; distinct objects may be used from distinct threads.
#include <string>
#include <utility>
#include <vector>

namespace mufl {

// One bad field of a request: `field` is a dotted path ("partition.alpha"), `detail` says why.
struct FieldError {
  std::string field;
  std::string detail;
  bool operator==(const FieldError&) const = default;
};

class Status {
 public:
  // Codes are mapped to HTTP statuses in one table (service/problem.cpp).
  enum class Code {
    kOk = 0,
    kInvalidArgument,    // bad input; field_errors() says which fields
    kNotFound,           // no such object, or not visible to the caller
    kAlreadyExists,      // a unique name or key is taken
    kConflict,           // the request contradicts stored state (e.g. idempotency key reuse)
    kResourceExhausted,  // a quota would be exceeded
    kUnauthenticated,    // no or wrong credentials
    kPermissionDenied,   // credentials fine, not allowed here
    kFailedPrecondition, // the object is not in a state that allows this
    kUnavailable,        // try again later (e.g. database busy or not ready, an I/O error)
    kInsufficientStorage,  // the disk or the database is full (ENOSPC, SQLITE_FULL): try again once space is freed
    kInternal,           // a broken invariant or an unexpected failure below us
  };

  Status() = default;
  static Status ok() { return Status(); }
  static Status invalid_argument(std::string msg, std::vector<FieldError> fields = {}) {
    Status s(Code::kInvalidArgument, std::move(msg));
    s.fields_ = std::move(fields);
    return s;
  }
  static Status not_found(std::string msg) { return Status(Code::kNotFound, std::move(msg)); }
  static Status already_exists(std::string msg) { return Status(Code::kAlreadyExists, std::move(msg)); }
  static Status conflict(std::string msg) { return Status(Code::kConflict, std::move(msg)); }
  static Status resource_exhausted(std::string msg) { return Status(Code::kResourceExhausted, std::move(msg)); }
  static Status unauthenticated(std::string msg) { return Status(Code::kUnauthenticated, std::move(msg)); }
  static Status permission_denied(std::string msg) { return Status(Code::kPermissionDenied, std::move(msg)); }
  static Status failed_precondition(std::string msg) { return Status(Code::kFailedPrecondition, std::move(msg)); }
  static Status unavailable(std::string msg) { return Status(Code::kUnavailable, std::move(msg)); }
  static Status internal(std::string msg) { return Status(Code::kInternal, std::move(msg)); }
  static Status insufficient_storage(std::string msg) { return Status(Code::kInsufficientStorage, std::move(msg)); }

  bool is_ok() const { return code_ == Code::kOk; }
  bool is_not_found() const { return code_ == Code::kNotFound; }
  bool is_invalid_argument() const { return code_ == Code::kInvalidArgument; }
  Code code() const { return code_; }
  // A failure that may pass by itself (busy, I/O error, full disk): worth a retry with backoff.
  bool is_transient() const { return code_ == Code::kUnavailable || code_ == Code::kInsufficientStorage; }
  const std::string& message() const { return message_; }
  const std::vector<FieldError>& field_errors() const { return fields_; }

  // "NotFound: activity act_123" — for logs and tests.
  std::string to_string() const;

 private:
  Status(Code code, std::string msg) : code_(code), message_(std::move(msg)) {}
  Code code_ = Code::kOk;
  std::string message_;
  std::vector<FieldError> fields_;
};

// Stable name of a code ("NotFound"), used in logs and to_string().
const char* status_code_name(Status::Code code);

}  // namespace mufl
