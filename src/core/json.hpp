#pragma once
/// JSON helpers for the hot path: a validating pass (Boost.JSON's SAX parser, no DOM), a
/// locator for top-level fields that returns spans into the original bytes, and string
/// escaping. The proxy parses only what it needs and forwards the original bytes.

#include <boost/json/fwd.hpp>

#include <cstddef>
#include <optional>
#include <span>
#include <string>
#include <string_view>

namespace llmgw::core {

/// Appends `s` as a JSON string literal (quotes included). `s` must be UTF-8.
void append_json_string(std::string& out, std::string_view s);

/// Appends `v` as compact JSON, numbers in their shortest round-trip form ("0.25", where
/// Boost's serializer writes "2.5E-1"). Returns false, `out` partly written, when `v` holds a
/// number JSON cannot carry (infinite or NaN: Boost's parser makes `1e400` infinite).
bool append_json(std::string& out, const boost::json::value& v);

/// Kinds of a located JSON value, from its first byte.
enum class JsonKind : unsigned char { Missing, Object, Array, String, Number, Bool, Null };

/// Strict RFC 8259 validation (UTF-8 checked, nesting at most `max_depth`).
/// On failure `error` (if given) receives a short reason.
bool validate_json(std::string_view text, std::string* error = nullptr,
                   std::size_t max_depth = 64);

/// A top-level member of a JSON object: `member` spans `"key": value` and `value` the value.
struct JsonField {
  std::string_view value;  ///< empty data() == nullptr when the key is absent
  std::size_t member_begin = 0;  ///< offset of the key's opening quote
  std::size_t value_end = 0;     ///< offset one past the value
  [[nodiscard]] bool present() const noexcept { return value.data() != nullptr; }
  [[nodiscard]] JsonKind kind() const noexcept;
};

/// Locates the top-level members named in `names` (keys compared decoded, so `"mod\u0065l"`
/// matches `model`; the last occurrence wins) and the
/// object's closing brace. Works on any bytes without reading out of bounds; the result is
/// meaningful only for valid JSON. Returns false when `text` is not an object.
bool locate_fields(std::string_view text, std::span<const std::string_view> names,
                   std::span<JsonField> out, std::size_t* object_end = nullptr);

/// The decoded value of a JSON string literal (`"…"`, quotes included), or nullopt.
std::optional<std::string> json_string_value(std::string_view literal);

/// `true`/`false` literal → bool; anything else → nullopt.
std::optional<bool> json_bool_value(std::string_view literal);

/// Removes a located member and the comma that joins it to a neighbour.
void erase_field(std::string& text, const JsonField& field);

}  // namespace llmgw::core
