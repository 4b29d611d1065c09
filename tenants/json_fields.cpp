#include "tenants/json_fields.h"

#include <cmath>
#include <limits>

#include "core/utf8.h"

namespace mufl::tenants {

FieldReader::FieldReader(const nlohmann::json& object, std::string prefix, std::vector<FieldError>& errors)
    : object_(object), prefix_(std::move(prefix)), errors_(errors) {}

void FieldReader::fail(const std::string& key, std::string detail) {
  errors_.push_back({prefix_ + key, std::move(detail)});
}

const nlohmann::json* FieldReader::get(const std::string& key, bool required, const char* type_name) {
  known_.insert(key);
  auto it = object_.find(key);
  if (it == object_.end() || it->is_null()) {
    if (required) fail(key, std::string("is required (") + type_name + ")");
    return nullptr;
  }
  return &*it;
}

std::optional<std::string> FieldReader::string(const std::string& key, bool required, size_t min_len,
                                               size_t max_len) {
  const auto* v = get(key, required, "a string");
  if (!v) return std::nullopt;
  if (!v->is_string()) {
    fail(key, "must be a string");
    return std::nullopt;
  }
  const auto& s = v->get_ref<const std::string&>();
  if (s.size() < min_len || s.size() > max_len) {
    fail(key, "must be " + std::to_string(min_len) + " to " + std::to_string(max_len) + " characters long");
    return std::nullopt;
  }
  for (unsigned char c : s) {
    if (c < 0x20 || c == 0x7f) {
      fail(key, "must not contain control characters");
      return std::nullopt;
    }
  }
  return s;
}

std::optional<int64_t> FieldReader::integer(const std::string& key, bool required, int64_t min, int64_t max) {
  const auto* v = get(key, required, "an integer");
  if (!v) return std::nullopt;
  std::string range = "must be an integer from " + std::to_string(min) + " to " + std::to_string(max);
  if (!v->is_number_integer()) {
    fail(key, v->is_number() ? range : "must be an integer");
    return std::nullopt;
  }
  if (v->is_number_unsigned() && v->get<uint64_t>() > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) {
    fail(key, range);
    return std::nullopt;
  }
  int64_t n = v->get<int64_t>();
  if (n < min || n > max) {
    fail(key, range);
    return std::nullopt;
  }
  return n;
}

std::optional<double> FieldReader::number(const std::string& key, bool required, double min, bool min_exclusive,
                                          double max) {
  const auto* v = get(key, required, "a number");
  if (!v) return std::nullopt;
  if (!v->is_number()) {
    fail(key, "must be a number");
    return std::nullopt;
  }
  double d = v->get<double>();
  bool low_ok = min_exclusive ? d > min : d >= min;
  if (!std::isfinite(d) || !low_ok || d > max) {
    auto fmt = [](double x) {
      std::string s = std::to_string(x);
      s.erase(s.find_last_not_of('0') + 1);
      if (s.back() == '.') s.pop_back();
      return s;
    };
    fail(key, "must be a number " + std::string(min_exclusive ? "greater than " : "at least ") + fmt(min) +
                  " and at most " + fmt(max));
    return std::nullopt;
  }
  return d;
}

std::optional<bool> FieldReader::boolean(const std::string& key, bool required) {
  const auto* v = get(key, required, "true or false");
  if (!v) return std::nullopt;
  if (!v->is_boolean()) {
    fail(key, "must be true or false");
    return std::nullopt;
  }
  return v->get<bool>();
}

const nlohmann::json* FieldReader::object(const std::string& key, bool required) {
  const auto* v = get(key, required, "an object");
  if (!v) return nullptr;
  if (!v->is_object()) {
    fail(key, "must be an object");
    return nullptr;
  }
  return v;
}

std::optional<std::vector<std::string>> FieldReader::string_list(const std::string& key, bool required,
                                                                size_t max_items, size_t max_len) {
  const auto* v = get(key, required, "an array of strings");
  if (!v) return std::nullopt;
  if (!v->is_array() || v->size() > max_items) {
    fail(key, "must be an array of at most " + std::to_string(max_items) + " strings");
    return std::nullopt;
  }
  std::vector<std::string> out;
  for (const auto& item : *v) {
    if (!item.is_string() || item.get_ref<const std::string&>().empty() ||
        item.get_ref<const std::string&>().size() > max_len) {
      fail(key, "must hold strings of 1 to " + std::to_string(max_len) + " characters");
      return std::nullopt;
    }
    out.push_back(item.get<std::string>());
  }
  return out;
}

void FieldReader::finish() {
  for (auto it = object_.begin(); it != object_.end(); ++it)
    if (!known_.count(it.key())) fail(it.key(), "unknown field");
}

Result<nlohmann::json> parse_json_object(const std::string& body) {
  if (size_t at = invalid_utf8_offset(body); at != std::string::npos)
    return Status::invalid_argument("the request body is not valid UTF-8 (invalid byte at offset " +
                                    std::to_string(at) + ")");
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(body);
  } catch (const nlohmann::json::parse_error& e) {
    const std::string what = e.what();
    return Status::invalid_argument("malformed JSON at byte " + std::to_string(e.byte) + ": " +
                                    sanitize_utf8(what.substr(what.find(':') + 2)));
  } catch (const nlohmann::json::exception& e) {  // out_of_range 406: a number beyond a double
    const std::string what = e.what();
    return Status::invalid_argument("malformed JSON: " + sanitize_utf8(what.substr(what.find(']') + 2)));
  }
  if (!j.is_object()) return Status::invalid_argument("the request body must be a JSON object");
  return j;
}

}  // namespace mufl::tenants
