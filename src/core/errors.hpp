#pragma once
/// The gateway's one error domain: each value is tied to one HTTP status and one OpenAI
/// `error.type`, and `render_error` is the only place that writes the client JSON.

#include <boost/system/error_code.hpp>
#include <boost/system/result.hpp>

#include <cstdint>
#include <string>
#include <string_view>

namespace llmgw::core {

enum class Errc : int {
  BadRequest = 1,      ///< 400 invalid_request_error
  InvalidApiKey,       ///< 401 authentication_error (invalid_api_key)
  ModelNotAllowed,     ///< 403 permission_error
  NotFound,            ///< 404 invalid_request_error (unknown route)
  ModelNotFound,       ///< 404 invalid_request_error (model_not_found)
  MethodNotAllowed,    ///< 405 invalid_request_error
  PayloadTooLarge,     ///< 413 invalid_request_error
  HeadersTooLarge,     ///< 431 invalid_request_error
  RateLimited,         ///< 429 rate_limit_error (Retry-After set)
  BudgetExceeded,      ///< 429 insufficient_quota
  Internal,            ///< 500 server_error
  UpstreamUnavailable, ///< 502 upstream_error: connection to the provider failed
  UpstreamProtocol,    ///< 502 upstream_error: provider answer could not be parsed
  NotReady,            ///< 503 server_error
  UpstreamTimeout,     ///< 504 timeout_error
  // The admin API's own:
  Unauthenticated,     ///< 401 authentication_error: no or invalid admin credentials
  Forbidden,           ///< 403 permission_error: the caller's role is too low
  Conflict,            ///< 409 invalid_request_error (conflict)
  InvalidValue,        ///< 422 invalid_request_error (invalid_value): well-typed, not valid
  ProviderUnavailable, ///< 503 server_error (provider_unavailable): disabled or unusable here
};

/// HTTP status for an error value.
unsigned http_status(Errc e) noexcept;
/// OpenAI `error.type` for an error value.
std::string_view error_type(Errc e) noexcept;
/// Default OpenAI `error.code` (may be empty → JSON null).
std::string_view error_code_name(Errc e) noexcept;

/// `{"error":{"message":…,"type":…,"param":…,"code":…}}`; `param`/`code` empty → null.
std::string render_error(Errc e, std::string_view message, std::string_view param = {},
                         std::string_view code = {});

const boost::system::error_category& gateway_category() noexcept;
inline boost::system::error_code make_error_code(Errc e) noexcept {
  return {static_cast<int>(e), gateway_category()};
}

template <class T>
using Result = boost::system::result<T>;

}  // namespace llmgw::core

namespace boost::system {
template <>
struct is_error_code_enum<llmgw::core::Errc> : std::true_type {};
}  // namespace boost::system
