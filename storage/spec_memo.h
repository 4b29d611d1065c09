#pragma once
// Parsing of the `spec` column of an activity row, memoised.
//
// An activity's spec is written once, at submission, as JSON text; every read of the activity
// parses it again (a tenth of a GET /v1/activities/{id}, bench/api). The parse is a pure
// function of the text, so its result is kept keyed by the text itself: a hit can never be
// stale, whichever database or activity the text came from.

#include <string_view>

#include "core/activity.h"
#include "core/result.h"

namespace mufl::storage {

// The spec the JSON text `text` holds; kInternal naming `activity_id` when the text is not JSON
// or lacks a field. Thread-safe. At most kSpecMemoEntries texts are kept; when a new one would
// exceed that, the memo is emptied first (a workload that cycles through more specs than that
// parses as if there were no memo, never worse).
Result<ActivitySpec> parse_stored_spec(std::string_view text, std::string_view activity_id);

inline constexpr size_t kSpecMemoEntries = 16384;

}  // namespace mufl::storage
