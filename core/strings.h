#pragma once
// Small string helpers shared by the readers of text files (CSV lines, lists in flags).
#include <string_view>
#include <vector>

namespace mufl {

// The fields of `line` between separators, empty ones included: "a,,b" → {"a", "", "b"},
// "" → {""}. The views point into `line`, which must outlive them. No quoting: the files mufl
// reads this way (data/README.md) have none.
std::vector<std::string_view> split_fields(std::string_view line, char sep);

// Whether `name` holds only letters, digits, '.', '_' and '-' (tenant, federation and client
// names; the caller checks the length).
bool is_plain_name(std::string_view name);

}  // namespace mufl
