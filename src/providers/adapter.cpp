#include "providers/adapter.hpp"

#include "core/json.hpp"

namespace llmgw::providers {

std::string_view to_anthropic_error_type(std::string_view openai_type, unsigned status) noexcept {
  switch (status) {
    case 400: return "invalid_request_error";
    case 401: return "authentication_error";
    case 403: return "permission_error";
    case 404: return "not_found_error";
    case 413: return "request_too_large";
    case 429: return "rate_limit_error";
    case 503:
    case 529: return "overloaded_error";
    case 504: return "timeout_error";
    default: break;
  }
  if (openai_type == "invalid_request_error" || openai_type == "authentication_error" ||
      openai_type == "permission_error" || openai_type == "rate_limit_error") {
    return openai_type;
  }
  if (openai_type == "insufficient_quota") {
    return "rate_limit_error";
  }
  return "api_error";
}

std::string render_provider_error(Format format, const ProviderError& e) {
  std::string out;
  out.reserve(96 + e.message.size());
  if (format == Format::AnthropicMessages) {
    out += R"({"type":"error","error":{"type":)";
    core::append_json_string(out, to_anthropic_error_type(e.type, e.status));
    out += R"(,"message":)";
    core::append_json_string(out, e.message);
    out += "}}";
    return out;
  }
  out += R"({"error":{"message":)";
  core::append_json_string(out, e.message);
  out += R"(,"type":)";
  core::append_json_string(out, e.type);
  out += R"(,"param":null,"code":)";
  if (e.code.empty()) {
    out += "null";
  } else {
    core::append_json_string(out, e.code);
  }
  out += "}}";
  return out;
}

std::string render_stream_error(Format format, std::string_view openai_type,
                                std::string_view message, unsigned status) {
  ProviderError e;
  e.status = status;
  e.type = openai_type;
  e.message = message;
  std::string out = format == Format::AnthropicMessages ? "event: error\ndata: " : "data: ";
  out += render_provider_error(format, e);
  out += "\n\n";
  return out;
}

ProviderError map_status(unsigned status, std::string message, std::string_view retry_after) {
  ProviderError e;
  e.message = std::move(message);
  switch (status) {
    case 400:
    case 404:
    case 409:
    case 413:
    case 422:
      e.status = 400;
      e.type = "invalid_request_error";
      break;
    case 401:
    case 403:
      e.status = 502;
      e.type = "upstream_error";
      e.credential_refused = true;
      break;
    case 429:
      e.status = 429;
      e.type = "rate_limit_error";
      e.retry_after = retry_after;
      break;
    case 503:
    case 529:
      e.status = 503;
      e.type = "server_error";
      e.code = "overloaded";
      e.retry_after = retry_after;
      break;
    case 408:
    case 504:
      e.status = 504;
      e.type = "timeout_error";
      break;
    default:
      e.status = status >= 400 && status < 500 ? 400 : 502;
      e.type = status >= 400 && status < 500 ? "invalid_request_error" : "upstream_error";
      break;
  }
  if (e.message.empty()) {
    e.message = "The provider answered HTTP " + std::to_string(status) + ".";
  }
  return e;
}

}  // namespace llmgw::providers
