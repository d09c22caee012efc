#include "core/errors.hpp"

#include "core/json.hpp"

namespace llmgw::core {

unsigned http_status(Errc e) noexcept {
  switch (e) {
    case Errc::BadRequest: return 400;
    case Errc::InvalidApiKey: return 401;
    case Errc::ModelNotAllowed: return 403;
    case Errc::NotFound:
    case Errc::ModelNotFound: return 404;
    case Errc::MethodNotAllowed: return 405;
    case Errc::PayloadTooLarge: return 413;
    case Errc::HeadersTooLarge: return 431;
    case Errc::RateLimited:
    case Errc::BudgetExceeded: return 429;
    case Errc::Internal: return 500;
    case Errc::UpstreamUnavailable:
    case Errc::UpstreamProtocol: return 502;
    case Errc::NotReady:
    case Errc::ProviderUnavailable: return 503;
    case Errc::UpstreamTimeout: return 504;
    case Errc::Unauthenticated: return 401;
    case Errc::Forbidden: return 403;
    case Errc::Conflict: return 409;
    case Errc::InvalidValue: return 422;
  }
  return 500;
}

std::string_view error_type(Errc e) noexcept {
  switch (e) {
    case Errc::BadRequest:
    case Errc::NotFound:
    case Errc::ModelNotFound:
    case Errc::MethodNotAllowed:
    case Errc::PayloadTooLarge:
    case Errc::HeadersTooLarge:
    case Errc::Conflict:
    case Errc::InvalidValue: return "invalid_request_error";
    case Errc::InvalidApiKey:
    case Errc::Unauthenticated: return "authentication_error";
    case Errc::ModelNotAllowed:
    case Errc::Forbidden: return "permission_error";
    case Errc::RateLimited: return "rate_limit_error";
    case Errc::BudgetExceeded: return "insufficient_quota";
    case Errc::Internal:
    case Errc::NotReady:
    case Errc::ProviderUnavailable: return "server_error";
    case Errc::UpstreamUnavailable:
    case Errc::UpstreamProtocol: return "upstream_error";
    case Errc::UpstreamTimeout: return "timeout_error";
  }
  return "server_error";
}

std::string_view error_code_name(Errc e) noexcept {
  switch (e) {
    case Errc::InvalidApiKey: return "invalid_api_key";
    case Errc::ModelNotAllowed: return "model_not_allowed";
    case Errc::ModelNotFound: return "model_not_found";
    case Errc::PayloadTooLarge: return "request_too_large";
    case Errc::RateLimited: return "rate_limit_exceeded";
    case Errc::BudgetExceeded: return "insufficient_quota";
    case Errc::UpstreamTimeout: return "upstream_timeout";
    case Errc::UpstreamUnavailable: return "upstream_unavailable";
    case Errc::UpstreamProtocol: return "upstream_protocol_error";
    case Errc::Conflict: return "conflict";
    case Errc::InvalidValue: return "invalid_value";
    case Errc::ProviderUnavailable: return "provider_unavailable";
    default: return {};
  }
}

std::string render_error(Errc e, std::string_view message, std::string_view param,
                         std::string_view code) {
  if (code.empty()) {
    code = error_code_name(e);
  }
  std::string out;
  out.reserve(96 + message.size());
  out += R"({"error":{"message":)";
  append_json_string(out, message);
  out += R"(,"type":)";
  append_json_string(out, error_type(e));
  out += R"(,"param":)";
  if (param.empty()) {
    out += "null";
  } else {
    append_json_string(out, param);
  }
  out += R"(,"code":)";
  if (code.empty()) {
    out += "null";
  } else {
    append_json_string(out, code);
  }
  out += "}}";
  return out;
}

namespace {
class GatewayCategory final : public boost::system::error_category {
 public:
  const char* name() const noexcept override { return "llmgw"; }
  std::string message(int ev) const override {
    return std::string(error_type(static_cast<Errc>(ev)));
  }
};
}  // namespace

const boost::system::error_category& gateway_category() noexcept {
  static const GatewayCategory category;
  return category;
}

}  // namespace llmgw::core
