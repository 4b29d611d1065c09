#pragma once
// The ?limit= and ?cursor= parameters every paginated list takes (activities, rounds, groups),
// read strictly: a bad value adds a FieldError naming the parameter and gives nullopt, so a route
// can name every bad parameter at once.
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "core/status.h"

namespace mufl::service {

inline constexpr int kMaxPageSize = 1000;

// `value` as a page size: an integer from 1 to kMaxPageSize.
std::optional<int> read_page_limit(const std::string& value, std::vector<FieldError>& errors);

// `value` as a cursor: a next_cursor this server returned (up to 18 digits).
std::optional<int64_t> read_page_cursor(const std::string& value, std::vector<FieldError>& errors);

}  // namespace mufl::service
