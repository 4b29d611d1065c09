#pragma once
// FieldReader: reads the fields of one JSON object strictly and collects every problem as a
// FieldError, so that a 400 names each bad field at once instead of the first one only.
// A field that is absent or null reads as nullopt (the caller applies its default, or reports
// it missing with `required`). Fields the reader was never asked for are reported by finish().
#include <cstdint>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/result.h"

namespace mufl::tenants {

class FieldReader {
 public:
  // REQUIRES: `object` is a JSON object and outlives the reader. `prefix` is prepended to field
  // names in errors ("partition." for a nested object).
  FieldReader(const nlohmann::json& object, std::string prefix, std::vector<FieldError>& errors);

  std::optional<std::string> string(const std::string& key, bool required, size_t min_len, size_t max_len);
  std::optional<int64_t> integer(const std::string& key, bool required, int64_t min, int64_t max);
  // A JSON number (integer or not) with min < value <= max when `min_exclusive`, else min <= value <= max.
  std::optional<double> number(const std::string& key, bool required, double min, bool min_exclusive, double max);
  std::optional<bool> boolean(const std::string& key, bool required);
  // A nested object; nullptr when absent, null or of another type (reported).
  const nlohmann::json* object(const std::string& key, bool required);

  // An array of strings, each 1 to max_len bytes, at most max_items of them.
  std::optional<std::vector<std::string>> string_list(const std::string& key, bool required, size_t max_items,
                                                      size_t max_len);

  // Reports every field of the object that no accessor asked for as "unknown field".
  void finish();

  // Adds an error for `key` (with the prefix).
  void fail(const std::string& key, std::string detail);

 private:
  const nlohmann::json* get(const std::string& key, bool required, const char* type_name);
  const nlohmann::json& object_;
  std::string prefix_;
  std::vector<FieldError>& errors_;
  std::set<std::string> known_;
};

// Parses `body` as a JSON object. On failure returns kInvalidArgument saying why
// ("the request body is not valid UTF-8 (invalid byte at offset 0)", "malformed JSON at byte
// 12: …" or "the request body must be a JSON object"); the message is always valid UTF-8.
Result<nlohmann::json> parse_json_object(const std::string& body);

}  // namespace mufl::tenants
