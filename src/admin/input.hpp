#pragma once
/// Reading admin request bodies and query strings: every field checked for its JSON type
/// (400) and value (422), unknown fields refused, and the first problem reported with the
/// field's name as `param`. The checks more than one resource makes live here, once.

#include "admin/role.hpp"
#include "core/errors.hpp"

#include <boost/json/value.hpp>

#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

namespace llmgw::admin {

/// An answer other than success, thrown by a handler and rendered by the dispatcher.
struct ApiError {
  core::Errc errc;
  std::string message;
  std::string param;
  std::string extra_headers;  ///< preformatted lines, e.g. "Retry-After: 30\r\n"
};

[[noreturn]] void fail(core::Errc e, std::string message, std::string param = {});

/// A JSON object body. Each accessor marks its field as known; `finish()` refuses the rest.
class Body {
 public:
  /// Throws ApiError 400 unless `text` is a JSON object (max depth 32, valid UTF-8).
  explicit Body(std::string_view text);

  [[nodiscard]] bool has(std::string_view name);
  [[nodiscard]] bool is_null(std::string_view name);
  /// nullopt when absent; 400 when not a string (or null, unless handled by is_null first).
  std::optional<std::string> string(std::string_view name);
  std::optional<std::int64_t> integer(std::string_view name);
  std::optional<bool> boolean(std::string_view name);
  std::optional<std::vector<std::string>> string_array(std::string_view name);
  std::optional<std::map<std::string, std::string>> string_map(std::string_view name);
  /// The raw value (for nested objects); nullptr when absent.
  const boost::json::value* raw(std::string_view name);
  /// Throws ApiError 400 naming the first field no accessor asked for.
  void finish() const;
  /// Throws ApiError 400 ("missing required field") when absent or null.
  template <class T>
  static T required(std::optional<T> v, std::string_view name) {
    if (!v) {
      missing(name);
    }
    return std::move(*v);
  }
  /// Throws ApiError 400: "Missing required field '<name>'."
  [[noreturn]] static void missing(std::string_view name);

 private:
  const boost::json::value* get(std::string_view name);
  boost::json::value doc_;
  std::set<std::string, std::less<>> known_;
};

/// Reads one object of a nested list with the same rules (used for price components).
Body body_of(const boost::json::value& v, std::string_view where);

/// A decoded query string: name → value.
using Query = std::map<std::string, std::string, std::less<>>;

/// Query string ("a=1&b=x%20y") decoded into a map; a name given twice keeps the last.
Query parse_query(std::string_view query);
/// The value of `name`; empty when absent.
std::string query_value(const Query& q, std::string_view name);
/// A list's page size, `?limit=` 1 to 500 (100 when absent); 422 otherwise.
std::size_t page_limit(const Query& q);
/// Where a list goes on, `?cursor=` as a previous page's `next_cursor` gave it (decoded);
/// empty when absent, 422 when it is not base64url.
std::string page_cursor(const Query& q);

/// An RFC 3339 time ("2026-11-27T10:00:00.000+02:00", "…Z") or a date ("2026-11-27", midnight
/// UTC) → unix seconds; 422 otherwise.
std::int64_t parse_time(std::string_view text, std::string_view param);

/// A limit that may be cleared: a positive integer, or null (nullopt). `present` tells
/// whether the field was sent at all.
std::optional<std::int64_t> positive_or_null(Body& b, std::string_view name, bool& present);
/// A list of model names: at most `max` entries, each a model_name(); 422 otherwise.
void check_names(const std::vector<std::string>& v, std::string_view param, std::size_t max);
/// A required role field: viewer, editor or admin; 422 otherwise.
Role role_field(Body& b, std::string_view name);

/// Why an email or password is refused (empty: acceptable).
std::string check_email(std::string_view email);
std::string check_password(std::string_view password);

/// %XX and '+' decoding; nullopt on a malformed escape.
std::optional<std::string> percent_decode(std::string_view s, bool plus_is_space);

/// Well-formed UTF-8 (no overlongs, surrogates or code points above U+10FFFF).
bool valid_utf8(std::string_view s);

/// Text checks (return false when refused).
bool printable_text(std::string_view s, std::size_t min, std::size_t max);
bool identifier(std::string_view s, std::size_t max);  ///< [A-Za-z0-9][A-Za-z0-9._-]*
/// A model or alias name: 1..200 bytes, no whitespace or control characters.
bool model_name(std::string_view s);

}  // namespace llmgw::admin
