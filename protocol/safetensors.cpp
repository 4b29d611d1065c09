#include "protocol/safetensors.h"

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstring>
#include <limits>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>

#include "core/utf8.h"

namespace mufl::protocol {
namespace {

static_assert(std::endian::native == std::endian::little,
              "the wire format is little-endian: byte swaps are not written");
static_assert(sizeof(float) == 4 && std::numeric_limits<float>::is_iec559, "F32 is IEEE 754 binary32");

constexpr uint64_t kF32Bytes = 4;
constexpr const char* kMetadataKey = "__metadata__";

Status bad(const std::string& what) { return Status::invalid_argument("safetensors: " + what); }

// The number of elements of `shape`, or nullopt when a dimension is negative or the count
// exceeds `max_elements`.
std::optional<uint64_t> element_count(const std::vector<int64_t>& shape, uint64_t max_elements) {
  uint64_t n = 1;
  for (int64_t d : shape) {
    if (d < 0) return std::nullopt;
    if (d != 0 && n > max_elements / static_cast<uint64_t>(d)) return std::nullopt;
    n *= static_cast<uint64_t>(d);
  }
  return n;
}

std::string shape_text(const std::vector<int64_t>& shape) { return nlohmann::json(shape).dump(); }

// One header entry after its own checks: where its bytes are.
struct Entry {
  std::string name;
  std::vector<int64_t> shape;
  uint64_t begin = 0, end = 0;
};

Result<Entry> read_entry(const std::string& name, const nlohmann::json& info, const DecodeLimits& limits) {
  if (!info.is_object()) return bad("entry '" + name + "' is not an object");
  const auto dtype = info.find("dtype");
  if (dtype == info.end() || !dtype->is_string()) return bad("entry '" + name + "' has no dtype");
  if (*dtype != "F32")
    return bad("tensor '" + name + "' has dtype " + dtype->get<std::string>() + "; only F32 is accepted");
  const auto shape = info.find("shape");
  if (shape == info.end() || !shape->is_array()) return bad("tensor '" + name + "' has no shape array");
  Entry e{name, {}, 0, 0};
  for (const auto& d : *shape) {
    if (!d.is_number_integer()) return bad("tensor '" + name + "' has a shape that is not a list of integers");
    e.shape.push_back(d.get<int64_t>());
  }
  const auto offsets = info.find("data_offsets");
  if (offsets == info.end() || !offsets->is_array() || offsets->size() != 2 || !(*offsets)[0].is_number_unsigned() ||
      !(*offsets)[1].is_number_unsigned())
    return bad("tensor '" + name + "' needs data_offsets [begin, end] of two non-negative integers");
  e.begin = (*offsets)[0].get<uint64_t>();
  e.end = (*offsets)[1].get<uint64_t>();
  if (e.end < e.begin) return bad("tensor '" + name + "' ends before it begins");
  const auto count = element_count(e.shape, limits.max_data_bytes / kF32Bytes);
  if (!count) return bad("tensor '" + name + "' has shape " + shape_text(e.shape) + ": negative or too large");
  if (e.end - e.begin != *count * kF32Bytes)
    return bad("tensor '" + name + "' has " + std::to_string(e.end - e.begin) + " bytes; its shape " +
               shape_text(e.shape) + " in F32 needs " + std::to_string(*count * kF32Bytes));
  return e;
}

Result<std::map<std::string, std::string>> read_metadata(const nlohmann::json& m) {
  if (!m.is_object()) return bad("__metadata__ is not an object");
  std::map<std::string, std::string> out;
  for (const auto& [k, v] : m.items()) {
    if (!v.is_string()) return bad("__metadata__ value of '" + k + "' is not a string");
    out[k] = v.get<std::string>();
  }
  return out;
}

// The JSON header, refusing duplicate tensor names (a JSON object keeps only the last).
Result<nlohmann::json> parse_header(std::string_view text) {
  if (!is_valid_utf8(text)) return bad("the header is not valid UTF-8");
  std::set<std::string> seen;
  bool duplicate = false;
  const auto callback = [&](int depth, nlohmann::json::parse_event_t event, nlohmann::json& parsed) {
    if (depth == 1 && event == nlohmann::json::parse_event_t::key && !seen.insert(parsed.get<std::string>()).second)
      duplicate = true;
    return true;
  };
  auto header = nlohmann::json::parse(text, callback, /*allow_exceptions=*/false);
  if (header.is_discarded()) return bad("the header is not valid JSON");
  if (!header.is_object()) return bad("the header is not a JSON object");
  if (duplicate) return bad("the header names a tensor twice");
  return header;
}

}  // namespace

Result<std::string> encode_safetensors(const TensorFile& file) {
  nlohmann::json header = nlohmann::json::object();
  if (!file.metadata.empty()) header[kMetadataKey] = file.metadata;
  uint64_t offset = 0;
  for (const auto& t : file.tensors) {
    if (t.name.empty() || t.name == kMetadataKey || !is_valid_utf8(t.name))
      return bad("bad tensor name '" + sanitize_utf8(t.name) + "'");
    if (header.contains(t.name)) return bad("tensor '" + t.name + "' is named twice");
    const auto count = element_count(t.shape, std::numeric_limits<uint64_t>::max() / kF32Bytes);
    if (!count || *count != t.values.size())
      return bad("tensor '" + t.name + "' has " + std::to_string(t.values.size()) + " values for shape " +
                 shape_text(t.shape));
    const uint64_t bytes = *count * kF32Bytes;
    header[t.name] = {{"dtype", "F32"}, {"shape", t.shape}, {"data_offsets", {offset, offset + bytes}}};
    offset += bytes;
  }
  std::string text = header.dump();
  text.append((8 - text.size() % 8) % 8, ' ');  // the data starts 8-byte aligned, as the reference writer does
  std::string out(8, '\0');
  const uint64_t n = text.size();
  std::memcpy(out.data(), &n, 8);
  out += text;
  out.reserve(out.size() + offset);
  for (const auto& t : file.tensors)
    if (!t.values.empty()) out.append(reinterpret_cast<const char*>(t.values.data()), t.values.size() * kF32Bytes);
  return out;
}

Result<TensorFile> decode_safetensors(std::string_view bytes, const DecodeLimits& limits) {
  if (bytes.size() < 8) return bad("shorter than its 8-byte header length");
  uint64_t n = 0;
  std::memcpy(&n, bytes.data(), 8);
  if (n > limits.max_header_bytes)
    return bad("header of " + std::to_string(n) + " bytes; at most " + std::to_string(limits.max_header_bytes));
  if (n > bytes.size() - 8) return bad("header of " + std::to_string(n) + " bytes runs past the end of the body");
  auto header = parse_header(bytes.substr(8, n));
  if (!header.ok()) return header.status();
  const std::string_view data = bytes.substr(8 + n);
  if (data.size() > limits.max_data_bytes)
    return bad(std::to_string(data.size()) + " bytes of tensors; at most " + std::to_string(limits.max_data_bytes));

  TensorFile file;
  std::vector<Entry> entries;
  for (const auto& [name, info] : header->items()) {
    if (name == kMetadataKey) {
      auto m = read_metadata(info);
      if (!m.ok()) return m.status();
      file.metadata = std::move(*m);
      continue;
    }
    if (entries.size() >= limits.max_tensors)
      return bad("more than " + std::to_string(limits.max_tensors) + " tensors");
    auto e = read_entry(name, info, limits);
    if (!e.ok()) return e.status();
    entries.push_back(std::move(*e));
  }
  // In order of their data: each begins where the previous one ended, and the last ends the body.
  std::sort(entries.begin(), entries.end(),
            [](const Entry& a, const Entry& b) { return a.begin != b.begin ? a.begin < b.begin : a.end < b.end; });
  uint64_t expected = 0;
  for (const auto& e : entries) {
    if (e.begin != expected)
      return bad("tensor '" + e.name + "' begins at byte " + std::to_string(e.begin) + ", not " +
                 std::to_string(expected) + " (a hole or an overlap)");
    expected = e.end;
  }
  if (expected != data.size())
    return bad("the tensors cover " + std::to_string(expected) + " bytes of " + std::to_string(data.size()));

  for (auto& e : entries) {
    NamedTensor t{std::move(e.name), std::move(e.shape), {}};
    t.values.resize((e.end - e.begin) / kF32Bytes);
    if (!t.values.empty())
      std::memcpy(t.values.data(), data.data() + e.begin, e.end - e.begin);  // an empty vector's data() may be null
    const auto bad_value = std::find_if(t.values.begin(), t.values.end(), [](float v) { return !std::isfinite(v); });
    if (bad_value != t.values.end())
      return bad("tensor '" + t.name + "' holds " + (std::isnan(*bad_value) ? "NaN" : "Inf") + " at index " +
                 std::to_string(bad_value - t.values.begin()));
    file.tensors.push_back(std::move(t));
  }
  return file;
}

Status check_tensors(const TensorFile& file, const std::vector<TensorSpec>& expected) {
  std::map<std::string, const NamedTensor*> by_name;
  for (const auto& t : file.tensors) by_name[t.name] = &t;
  for (const auto& spec : expected) {
    const auto it = by_name.find(spec.name);
    if (it == by_name.end()) return bad("tensor '" + spec.name + "' is missing");
    if (it->second->shape != spec.shape)
      return bad("tensor '" + spec.name + "' has shape " + shape_text(it->second->shape) + "; expected " +
                 shape_text(spec.shape));
    by_name.erase(it);
  }
  if (!by_name.empty()) return bad("tensor '" + by_name.begin()->first + "' is not part of the model");
  return Status::ok();
}

}  // namespace mufl::protocol
