#include "admin/input.hpp"

#include "core/ids.hpp"

#include <boost/url/encoding_opts.hpp>
#include <boost/url/pct_string_view.hpp>

#include <boost/json/parse.hpp>
#include <boost/json/parse_options.hpp>
#include <boost/json/serialize.hpp>

#include <algorithm>
#include <regex>

namespace llmgw::admin {

namespace json = boost::json;
using core::Errc;

void fail(core::Errc e, std::string message, std::string param) {
  throw ApiError{e, std::move(message), std::move(param), {}};
}

namespace {

constexpr std::size_t kDefaultPage = 100;
constexpr std::size_t kMaxPage = 500;

std::string_view kind_of(const json::value& v) {
  switch (v.kind()) {
    case json::kind::null: return "null";
    case json::kind::bool_: return "a boolean";
    case json::kind::int64:
    case json::kind::uint64:
    case json::kind::double_: return "a number";
    case json::kind::string: return "a string";
    case json::kind::array: return "an array";
    case json::kind::object: return "an object";
  }
  return "a value";
}

[[noreturn]] void wrong_type(std::string_view name, std::string_view expected,
                             const json::value& v) {
  fail(core::Errc::BadRequest,
       "Field '" + std::string(name) + "' must be " + std::string(expected) + ", not " +
           std::string(kind_of(v)) + ".",
       std::string(name));
}

}  // namespace

Body::Body(std::string_view text) {
  json::parse_options opt;
  opt.max_depth = 32;
  boost::system::error_code ec;
  doc_ = json::parse(text, ec, {}, opt);
  if (ec) {
    fail(core::Errc::BadRequest,
         text.empty() ? "The request body must be a JSON object."
                      : "The request body is not valid JSON: " + ec.message() + ".");
  }
  if (!doc_.is_object()) {
    fail(core::Errc::BadRequest, "The request body must be a JSON object.");
  }
}

Body body_of(const json::value& v, std::string_view where) {
  if (!v.is_object()) {
    wrong_type(where, "an object", v);
  }
  return Body(json::serialize(v));
}

const json::value* Body::get(std::string_view name) {
  known_.emplace(name);
  return doc_.as_object().if_contains(name);
}

bool Body::has(std::string_view name) { return get(name) != nullptr; }

bool Body::is_null(std::string_view name) {
  const auto* v = get(name);
  return v != nullptr && v->is_null();
}

const json::value* Body::raw(std::string_view name) { return get(name); }

std::optional<std::string> Body::string(std::string_view name) {
  const auto* v = get(name);
  if (v == nullptr) {
    return std::nullopt;
  }
  if (!v->is_string()) {
    wrong_type(name, "a string", *v);
  }
  return std::string(v->as_string());
}

std::optional<std::int64_t> Body::integer(std::string_view name) {
  const auto* v = get(name);
  if (v == nullptr) {
    return std::nullopt;
  }
  if (v->is_int64()) {
    return v->as_int64();
  }
  if (v->is_uint64()) {
    fail(core::Errc::InvalidValue, "Field '" + std::string(name) + "' is too large.",
         std::string(name));
  }
  wrong_type(name, "an integer", *v);
}

std::optional<bool> Body::boolean(std::string_view name) {
  const auto* v = get(name);
  if (v == nullptr) {
    return std::nullopt;
  }
  if (!v->is_bool()) {
    wrong_type(name, "a boolean", *v);
  }
  return v->as_bool();
}

std::optional<std::vector<std::string>> Body::string_array(std::string_view name) {
  const auto* v = get(name);
  if (v == nullptr) {
    return std::nullopt;
  }
  if (!v->is_array()) {
    wrong_type(name, "an array of strings", *v);
  }
  std::vector<std::string> out;
  for (const auto& e : v->as_array()) {
    if (!e.is_string()) {
      wrong_type(name, "an array of strings", e);
    }
    out.emplace_back(e.as_string());
  }
  return out;
}

std::optional<std::map<std::string, std::string>> Body::string_map(std::string_view name) {
  const auto* v = get(name);
  if (v == nullptr) {
    return std::nullopt;
  }
  if (!v->is_object()) {
    wrong_type(name, "an object of strings", *v);
  }
  std::map<std::string, std::string> out;
  for (const auto& [k, e] : v->as_object()) {
    if (!e.is_string()) {
      wrong_type(name, "an object of strings", e);
    }
    out.emplace(std::string(k), std::string(e.as_string()));
  }
  return out;
}

void Body::missing(std::string_view name) {
  fail(core::Errc::BadRequest, "Missing required field '" + std::string(name) + "'.",
       std::string(name));
}

void Body::finish() const {
  for (const auto& [k, v] : doc_.as_object()) {
    if (!known_.contains(std::string_view(k))) {
      fail(core::Errc::BadRequest, "Unknown field '" + std::string(k) + "'.", std::string(k));
    }
  }
}

std::optional<std::string> percent_decode(std::string_view s, bool plus_is_space) {
  // Boost.URL checks the escapes (a '%' not followed by two hex digits is an error).
  const auto pct = boost::urls::make_pct_string_view(s);
  if (!pct) {
    return std::nullopt;
  }
  boost::urls::encoding_opts opt;
  opt.space_as_plus = plus_is_space;
  return pct->decode(opt);
}

Query parse_query(std::string_view query) {
  Query out;
  // Split on '&' and '=' as Boost.URL's query grammar does, but decode each part here: the
  // grammar also refuses characters clients send unencoded (a space, '|'), which this API
  // has always taken.
  while (!query.empty()) {
    const auto amp = query.find('&');
    const std::string_view part = query.substr(0, amp);
    query = amp == std::string_view::npos ? std::string_view{} : query.substr(amp + 1);
    if (part.empty()) {
      continue;
    }
    const auto eq = part.find('=');
    auto name = percent_decode(part.substr(0, eq), true);
    auto value = percent_decode(eq == std::string_view::npos ? "" : part.substr(eq + 1), true);
    if (!name || !value) {
      fail(core::Errc::BadRequest, "The query string has a malformed %-escape.");
    }
    if (!valid_utf8(*name) || !valid_utf8(*value)) {
      fail(core::Errc::BadRequest, "The query string is not UTF-8.");
    }
    // A filter with a NUL matches nothing on SQLite and cannot be sent to PostgreSQL.
    if (name->find('\0') != std::string::npos || value->find('\0') != std::string::npos) {
      fail(core::Errc::BadRequest, "The query string holds a NUL byte (%00).");
    }
    out[std::move(*name)] = std::move(*value);
  }
  return out;
}

bool valid_utf8(std::string_view s) {
  std::size_t i = 0;
  while (i < s.size()) {
    const auto c = static_cast<unsigned char>(s[i]);
    std::size_t n = 0;
    std::uint32_t cp = 0;
    if (c < 0x80) {
      ++i;
      continue;
    } else if ((c & 0xE0) == 0xC0) {
      n = 1;
      cp = c & 0x1F;
    } else if ((c & 0xF0) == 0xE0) {
      n = 2;
      cp = c & 0x0F;
    } else if ((c & 0xF8) == 0xF0) {
      n = 3;
      cp = c & 0x07;
    } else {
      return false;
    }
    if (i + n >= s.size()) {
      return false;
    }
    for (std::size_t k = 1; k <= n; ++k) {
      const auto cc = static_cast<unsigned char>(s[i + k]);
      if ((cc & 0xC0) != 0x80) {
        return false;
      }
      cp = (cp << 6) | (cc & 0x3F);
    }
    static constexpr std::uint32_t kMin[] = {0, 0x80, 0x800, 0x10000};
    if (cp < kMin[n] || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) {
      return false;
    }
    i += n + 1;
  }
  return true;
}

bool printable_text(std::string_view s, std::size_t min, std::size_t max) {
  if (s.size() < min || s.size() > max) {
    return false;
  }
  for (const unsigned char c : s) {
    if (c < 0x20 || c == 0x7f) {
      return false;
    }
  }
  return true;
}

bool identifier(std::string_view s, std::size_t max) {
  if (s.empty() || s.size() > max) {
    return false;
  }
  for (std::size_t i = 0; i < s.size(); ++i) {
    const char c = s[i];
    const bool alnum = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
    if (!alnum && (i == 0 || (c != '.' && c != '_' && c != '-'))) {
      return false;
    }
  }
  return true;
}

bool model_name(std::string_view s) {
  if (s.empty() || s.size() > 200) {
    return false;
  }
  for (const unsigned char c : s) {
    if (c <= 0x20 || c == 0x7f) {
      return false;
    }
  }
  return true;
}

std::string query_value(const Query& q, std::string_view name) {
  auto it = q.find(name);
  return it == q.end() ? std::string() : it->second;
}

std::size_t page_limit(const Query& q) {
  auto it = q.find("limit");
  if (it == q.end()) return kDefaultPage;
  std::size_t n = 0;
  const auto& s = it->second;
  if (s.empty() || s.size() > 4 || !std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; }) ||
      (n = std::stoul(s)) < 1 || n > kMaxPage) {
    fail(Errc::InvalidValue, "'limit' must be an integer from 1 to 500.", "limit");
  }
  return n;
}

std::string page_cursor(const Query& q) {
  auto it = q.find("cursor");
  if (it == q.end() || it->second.empty()) return {};
  auto bytes = core::base64url_decode(it->second);
  if (!bytes) fail(Errc::InvalidValue, "'cursor' is not a cursor this API returned.", "cursor");
  return std::string(bytes->begin(), bytes->end());
}

std::int64_t parse_time(std::string_view text, std::string_view param) {
  std::int64_t t = 0;
  if (!core::parse_utc(text, t)) {
    fail(Errc::InvalidValue,
         "'" + std::string(param) +
             "' must be an RFC 3339 time (2027-01-01T00:00:00Z, 2027-01-01T02:00:00.000+02:00) "
             "or a date (YYYY-MM-DD, midnight UTC).",
         std::string(param));
  }
  return t;
}

std::optional<std::int64_t> positive_or_null(Body& b, std::string_view name, bool& present) {
  present = b.has(name);
  if (!present || b.is_null(name)) return std::nullopt;
  const std::int64_t v = *b.integer(name);
  if (v <= 0 || v > 1'000'000'000'000) {
    fail(Errc::InvalidValue, "'" + std::string(name) + "' must be a positive integer.",
         std::string(name));
  }
  return v;
}

void check_names(const std::vector<std::string>& v, std::string_view param, std::size_t max) {
  if (v.size() > max) {
    fail(Errc::InvalidValue, "'" + std::string(param) + "' has more than " + std::to_string(max) +
                                 " entries.", std::string(param));
  }
  for (const auto& s : v) {
    if (!model_name(s)) {
      fail(Errc::InvalidValue, "'" + std::string(param) +
                                   "' entries must be 1 to 200 characters without spaces or control characters.",
           std::string(param));
    }
  }
}

Role role_field(Body& b, std::string_view name) {
  const auto s = Body::required(b.string(name), name);
  auto role = parse_role(s);
  if (!role) fail(Errc::InvalidValue, "'role' must be viewer, editor or admin.", "role");
  return *role;
}

std::string check_email(std::string_view email) {
  static const std::regex kEmail(R"(^[^@\s\x00-\x1f]+@[^@\s\x00-\x1f.]+(\.[^@\s\x00-\x1f.]+)+$)");
  if (email.size() > 254 || !std::regex_match(email.begin(), email.end(), kEmail)) {
    return "must be an email address (name@example.com)";
  }
  return {};
}

std::string check_password(std::string_view password) {
  // Characters, not bytes: a passphrase in another script is not three times as strong.
  const auto chars = std::count_if(password.begin(), password.end(),
                                   [](char c) { return (static_cast<unsigned char>(c) & 0xC0) != 0x80; });
  if (!valid_utf8(password) || chars < 12 || chars > 256) {
    return "must be 12 to 256 characters";
  }
  return {};
}

}  // namespace llmgw::admin
