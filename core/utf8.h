#pragma once
// UTF-8 validity, as RFC 3629 defines it: no overlong forms, no surrogates (U+D800–U+DFFF),
// nothing above U+10FFFF. Every text a client sends (target, query, headers, JSON bodies) is
// checked with it before it reaches a handler or a JSON value.
#include <cstddef>
#include <string>
#include <string_view>

namespace mufl {

// The offset of the first byte that does not start or continue a valid UTF-8 sequence in
// `text`, or std::string_view::npos when all of `text` is valid UTF-8.
size_t invalid_utf8_offset(std::string_view text);

inline bool is_valid_utf8(std::string_view text) { return invalid_utf8_offset(text) == std::string_view::npos; }

// `text` with every invalid sequence replaced by U+FFFD, for logging and error messages.
std::string sanitize_utf8(std::string_view text);

}  // namespace mufl
