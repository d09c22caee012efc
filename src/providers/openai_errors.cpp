#include "providers/openai_errors.hpp"

#include <boost/json/monotonic_resource.hpp>
#include <boost/json/parse.hpp>

#include <string>

namespace llmgw::providers {

namespace {

/// Longest provider message passed on: enough for any real explanation, bounded against a
/// provider that echoes a whole prompt back.
constexpr std::size_t kMaxMessageBytes = 2048;

/// `s` cut to at most `max` bytes, not inside a UTF-8 sequence.
std::string_view utf8_prefix(std::string_view s, std::size_t max) {
  if (s.size() <= max) {
    return s;
  }
  std::size_t n = max;
  while (n > 0 && (static_cast<unsigned char>(s[n]) & 0xC0) == 0x80) {
    --n;
  }
  return s.substr(0, n);
}

/// The error object of an OpenAI-shaped body: `{"error":{...}}`, `[{"error":{...}}]` or the
/// body itself when it carries a top-level `message`.
const boost::json::object* error_object(const boost::json::value& v) {
  const boost::json::value* root = &v;
  if (const auto* arr = v.if_array(); arr != nullptr && !arr->empty()) {
    root = &arr->front();
  }
  const auto* obj = root->if_object();
  if (obj == nullptr) {
    return nullptr;
  }
  if (const auto* e = obj->if_contains("error"); e != nullptr && e->is_object()) {
    return &e->get_object();
  }
  return obj;
}

}  // namespace

ProviderError openai_error_to_provider_error(unsigned status, std::string_view body,
                                             std::string_view retry_after) {
  std::string message;
  std::string code;
  boost::json::monotonic_resource mr;
  boost::system::error_code ec;
  const boost::json::value v = boost::json::parse(body, ec, &mr);
  if (!ec) {
    const boost::json::object* root = v.is_object() ? &v.get_object() : nullptr;
    if (const auto* e = root != nullptr ? root->if_contains("error") : nullptr;
        e != nullptr && e->is_string()) {
      message = e->get_string();  // {"error": "text"}
    } else if (const boost::json::object* err = error_object(v)) {
      if (const auto* m = err->if_contains("message"); m != nullptr && m->is_string()) {
        message = m->get_string();
      }
      if (const auto* c = err->if_contains("code")) {
        if (c->is_string()) {
          code = c->get_string();
        } else if (c->is_int64()) {
          code = std::to_string(c->get_int64());
        }
      }
    }
  }
  message = utf8_prefix(message, kMaxMessageBytes);
  code = utf8_prefix(code, kMaxMessageBytes / 16);
  ProviderError e = map_status(status, std::move(message), retry_after);
  if (e.credential_refused) {
    e.message = "The provider refused the gateway's credential (HTTP " + std::to_string(status);
    if (!code.empty() && code.find_first_not_of(
                             "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-.") ==
                             std::string::npos) {
      e.message += ", code " + code;
    }
    e.message += ").";
    return e;
  }
  if (e.code.empty()) {
    e.code = std::move(code);
  }
  return e;
}

}  // namespace llmgw::providers
