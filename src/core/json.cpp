#include "core/json.hpp"

#include "core/json_sax.hpp"

#include <boost/json/basic_parser_impl.hpp>
#include <boost/json/parse.hpp>
#include <boost/json/value.hpp>

#include <array>
#include <charconv>
#include <cmath>
#include <cstring>

namespace llmgw::core {

void append_json_string(std::string& out, std::string_view s) {
  static constexpr char kHex[] = "0123456789abcdef";
  out.push_back('"');
  std::size_t run = 0;
  std::size_t i = 0;
  // Eight bytes at a time while none needs escaping (a control byte, '"' or '\\'): the
  // zero-byte tests of "Bit Twiddling Hacks", exact for "is there one" (never a false no).
  constexpr std::uint64_t kOnes = 0x0101010101010101ULL;
  constexpr std::uint64_t kHigh = 0x8080808080808080ULL;
  while (true) {
    for (; i + 8 <= s.size(); i += 8) {
      std::uint64_t x = 0;
      std::memcpy(&x, s.data() + i, 8);
      const std::uint64_t quote = x ^ (kOnes * '"');
      const std::uint64_t slash = x ^ (kOnes * '\\');
      const std::uint64_t hit = ((x - kOnes * 0x20) & ~x) | ((quote - kOnes) & ~quote) |
                                ((slash - kOnes) & ~slash);
      if ((hit & kHigh) != 0) {
        break;
      }
    }
    const std::size_t stop = std::min(s.size(), i + 8);
    if (i >= stop) {
      break;
    }
    for (; i < stop; ++i) {
      const auto c = static_cast<unsigned char>(s[i]);
      if (c >= 0x20 && c != '"' && c != '\\') {
        continue;
      }
      out.append(s.data() + run, i - run);
      run = i + 1;
      switch (c) {
        case '"': out += "\\\""; break;
        case '\\': out += "\\\\"; break;
        case '\n': out += "\\n"; break;
        case '\r': out += "\\r"; break;
        case '\t': out += "\\t"; break;
        default:
          out += "\\u00";
          out.push_back(kHex[c >> 4]);
          out.push_back(kHex[c & 0xF]);
      }
    }
  }
  out.append(s.data() + run, s.size() - run);
  out.push_back('"');
}

namespace {

/// Accepts everything: Boost.JSON's parser does the validation.
struct NullHandler : SaxHandlerBase {};

std::size_t skip_ws(std::string_view t, std::size_t i) {
  while (i < t.size() && (t[i] == ' ' || t[i] == '\n' || t[i] == '\r' || t[i] == '\t')) {
    ++i;
  }
  return i;
}

/// Offset one past the string literal starting at t[i] == '"'. Jumps from quote to quote
/// (memchr) and counts the backslashes before each: strings are most of a request's bytes.
std::size_t skip_string(std::string_view t, std::size_t i) {
  const char* const begin = t.data();
  const char* const end = begin + t.size();
  const char* p = begin + i + 1;
  while (p < end) {
    const auto* q = static_cast<const char*>(std::memchr(p, '"', static_cast<std::size_t>(end - p)));
    if (q == nullptr) {
      return t.size();
    }
    std::size_t backslashes = 0;
    for (const char* b = q; b > begin + i + 1 && b[-1] == '\\'; --b) {
      ++backslashes;
    }
    if (backslashes % 2 == 0) {
      return static_cast<std::size_t>(q - begin) + 1;
    }
    p = q + 1;
  }
  return t.size();
}

/// Offset one past the value starting at t[i].
std::size_t skip_value(std::string_view t, std::size_t i) {
  if (i >= t.size()) {
    return t.size();
  }
  if (t[i] == '"') {
    return skip_string(t, i);
  }
  if (t[i] == '{' || t[i] == '[') {
    std::size_t depth = 0;
    for (; i < t.size(); ++i) {
      const char c = t[i];
      if (c == '"') {
        i = skip_string(t, i) - 1;
      } else if (c == '{' || c == '[') {
        ++depth;
      } else if (c == '}' || c == ']') {
        if (--depth == 0) {
          return i + 1;
        }
      }
    }
    return t.size();
  }
  while (i < t.size() && t[i] != ',' && t[i] != '}' && t[i] != ']' && t[i] != ' ' &&
         t[i] != '\n' && t[i] != '\r' && t[i] != '\t') {
    ++i;
  }
  return i;
}

}  // namespace

bool validate_json(std::string_view text, std::string* error, std::size_t max_depth) {
  boost::json::parse_options opt;
  opt.max_depth = max_depth;
  boost::json::basic_parser<NullHandler> p(opt);
  boost::system::error_code ec;
  const auto n = p.write_some(false, text.data(), text.size(), ec);
  if (!ec && n != text.size()) {
    ec = boost::json::error::extra_data;
  }
  if (ec && error != nullptr) {
    *error = ec.message();
  }
  return !ec;
}

JsonKind JsonField::kind() const noexcept {
  if (!present() || value.empty()) {
    return JsonKind::Missing;
  }
  switch (value.front()) {
    case '{': return JsonKind::Object;
    case '[': return JsonKind::Array;
    case '"': return JsonKind::String;
    case 't':
    case 'f': return JsonKind::Bool;
    case 'n': return JsonKind::Null;
    default: return JsonKind::Number;
  }
}

bool locate_fields(std::string_view t, std::span<const std::string_view> names,
                   std::span<JsonField> out, std::size_t* object_end) {
  for (auto& f : out) {
    f = JsonField{};
  }
  std::size_t i = skip_ws(t, 0);
  if (i >= t.size() || t[i] != '{') {
    return false;
  }
  ++i;
  while (true) {
    i = skip_ws(t, i);
    if (i >= t.size()) {
      return false;
    }
    if (t[i] == '}') {
      if (object_end != nullptr) {
        *object_end = i;
      }
      return true;
    }
    if (t[i] == ',') {
      ++i;
      continue;
    }
    if (t[i] != '"') {
      return false;
    }
    const std::size_t member_begin = i;
    const std::size_t key_end = skip_string(t, i);
    const std::string_view key =
        key_end >= i + 2 ? t.substr(i + 1, key_end - i - 2) : std::string_view{};
    i = skip_ws(t, key_end);
    if (i >= t.size() || t[i] != ':') {
      return false;
    }
    i = skip_ws(t, i + 1);
    const std::size_t value_end = skip_value(t, i);
    // A key written with escapes is compared as every JSON parser reads it.
    std::optional<std::string> decoded;
    std::string_view name = key;
    if (key.find('\\') != std::string_view::npos) {
      decoded = json_string_value(t.substr(member_begin, key_end - member_begin));
      if (!decoded) {
        return false;
      }
      name = *decoded;
    }
    for (std::size_t k = 0; k < names.size() && k < out.size(); ++k) {
      if (names[k] == name) {
        out[k].value = t.substr(i, value_end - i);
        out[k].member_begin = member_begin;
        out[k].value_end = value_end;
      }
    }
    if (value_end <= i) {
      return false;
    }
    i = value_end;
  }
}

std::optional<std::string> json_string_value(std::string_view lit) {
  if (lit.size() < 2 || lit.front() != '"' || lit.back() != '"') {
    return std::nullopt;
  }
  const std::string_view inner = lit.substr(1, lit.size() - 2);
  if (inner.find('\\') == std::string_view::npos) {
    return std::string(inner);
  }
  boost::system::error_code ec;
  auto v = boost::json::parse(lit, ec);
  if (ec || !v.is_string()) {
    return std::nullopt;
  }
  return std::string(v.as_string());
}

std::optional<bool> json_bool_value(std::string_view lit) {
  if (lit == "true") {
    return true;
  }
  if (lit == "false") {
    return false;
  }
  return std::nullopt;
}

void erase_field(std::string& text, const JsonField& f) {
  if (!f.present()) {
    return;
  }
  std::size_t begin = f.member_begin;
  std::size_t end = f.value_end;
  // Prefer the comma after the member; else take the one before it.
  std::size_t j = skip_ws(text, end);
  if (j < text.size() && text[j] == ',') {
    end = j + 1;
  } else {
    std::size_t k = begin;
    while (k > 0 && (text[k - 1] == ' ' || text[k - 1] == '\n' || text[k - 1] == '\r' ||
                     text[k - 1] == '\t')) {
      --k;
    }
    if (k > 0 && text[k - 1] == ',') {
      begin = k - 1;
    }
  }
  text.erase(begin, end - begin);
}

bool append_json(std::string& out, const boost::json::value& v) {
  switch (v.kind()) {
    case boost::json::kind::null: out += "null"; return true;
    case boost::json::kind::bool_: out += v.get_bool() ? "true" : "false"; return true;
    case boost::json::kind::int64: out += std::to_string(v.get_int64()); return true;
    case boost::json::kind::uint64: out += std::to_string(v.get_uint64()); return true;
    case boost::json::kind::double_: {
      const double d = v.get_double();
      if (!std::isfinite(d)) {
        return false;
      }
      std::array<char, 32> buf{};
      const auto r = std::to_chars(buf.data(), buf.data() + buf.size(), d);
      out.append(buf.data(), r.ptr);
      return true;
    }
    case boost::json::kind::string: append_json_string(out, v.get_string()); return true;
    case boost::json::kind::array: {
      out += '[';
      bool first = true;
      for (const auto& e : v.get_array()) {
        if (!first) {
          out += ',';
        }
        first = false;
        if (!append_json(out, e)) {
          return false;
        }
      }
      out += ']';
      return true;
    }
    case boost::json::kind::object: {
      out += '{';
      bool first = true;
      for (const auto& kv : v.get_object()) {
        if (!first) {
          out += ',';
        }
        first = false;
        append_json_string(out, kv.key());
        out += ':';
        if (!append_json(out, kv.value())) {
          return false;
        }
      }
      out += '}';
      return true;
    }
  }
  return false;
}

}  // namespace llmgw::core
