#pragma once
// RFC 3339 timestamps, the form every time takes in the API ("2026-01-01T12:00:00.000Z").
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace mufl {

// Formats Unix milliseconds as UTC with millisecond precision and a trailing Z.
std::string format_rfc3339(int64_t unix_ms);

// Parses "YYYY-MM-DDTHH:MM:SS[.fff…](Z|±HH:MM)" (a space or 't' may stand for 'T').
// Returns Unix milliseconds, or nullopt when the text is not such a timestamp or names an
// impossible date (2026-02-30) or time.
std::optional<int64_t> parse_rfc3339(std::string_view text);

}  // namespace mufl
