#include <catch2/catch.hpp>

#include "core/utf8.h"

using mufl::invalid_utf8_offset;
using mufl::is_valid_utf8;
using mufl::sanitize_utf8;

TEST_CASE("utf8: valid text of every sequence length passes") {
  CHECK(is_valid_utf8(""));
  CHECK(is_valid_utf8("plain ascii"));
  CHECK(is_valid_utf8("caf\xC3\xA9"));                    // é, 2 bytes
  CHECK(is_valid_utf8("\xE2\x82\xAC"));                   // €, 3 bytes
  CHECK(is_valid_utf8("\xF0\x9F\x98\x80"));               // 😀, 4 bytes
  CHECK(is_valid_utf8("\xF4\x8F\xBF\xBF"));               // U+10FFFF, the last code point
  CHECK(is_valid_utf8(std::string_view("a\0b", 3)));     // NUL is valid UTF-8
}

TEST_CASE("utf8: the offset of the first bad byte") {
  CHECK(invalid_utf8_offset("\xFF") == 0);
  CHECK(invalid_utf8_offset("ab\xFE") == 2);
  CHECK(invalid_utf8_offset("ok\xC3") == 2);              // truncated 2-byte sequence
  CHECK(invalid_utf8_offset("\xE2\x82") == 0);            // truncated 3-byte sequence
  CHECK(invalid_utf8_offset("x\x80") == 1);               // lone continuation byte
  CHECK(invalid_utf8_offset("\xC0\xAF") == 0);            // overlong '/'
  CHECK(invalid_utf8_offset("\xE0\x80\xAF") == 0);        // overlong, 3 bytes
  CHECK(invalid_utf8_offset("\xED\xA0\x80") == 0);        // surrogate U+D800
  CHECK(invalid_utf8_offset("\xF4\x90\x80\x80") == 0);    // above U+10FFFF
  CHECK(invalid_utf8_offset("\xF5\x80\x80\x80") == 0);
  CHECK(invalid_utf8_offset("\xC3\xA9\xC3") == 2);
}

TEST_CASE("utf8: sanitize replaces each bad byte with U+FFFD and keeps the rest") {
  CHECK(sanitize_utf8("ok") == "ok");
  CHECK(sanitize_utf8("/\xFF") == "/\xEF\xBF\xBD");
  CHECK(sanitize_utf8("\xC3\xA9\xFE\xFF!") == "\xC3\xA9\xEF\xBF\xBD\xEF\xBF\xBD!");
  CHECK(is_valid_utf8(sanitize_utf8("\xED\xA0\x80 \xC0")));
}
