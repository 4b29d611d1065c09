#include "service/page_query.h"

namespace mufl::service {
namespace {

bool all_digits(const std::string& s, size_t max_size) {
  return !s.empty() && s.size() <= max_size && s.find_first_not_of("0123456789") == std::string::npos;
}

}  // namespace

std::optional<int> read_page_limit(const std::string& value, std::vector<FieldError>& errors) {
  const int n = all_digits(value, 4) ? std::stoi(value) : 0;
  if (n >= 1 && n <= kMaxPageSize) return n;
  errors.push_back({"limit", "must be an integer from 1 to " + std::to_string(kMaxPageSize)});
  return std::nullopt;
}

std::optional<int64_t> read_page_cursor(const std::string& value, std::vector<FieldError>& errors) {
  if (all_digits(value, 18)) return std::stoll(value);
  errors.push_back({"cursor", "is not a cursor this server returned (use next_cursor from a previous page)"});
  return std::nullopt;
}

}  // namespace mufl::service
