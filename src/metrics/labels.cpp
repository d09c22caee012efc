#include "metrics/labels.hpp"

#include <array>

namespace llmgw::metrics {

namespace {
constexpr std::array<std::string_view, kRoutes> kRouteLabels{"chat_completions", "embeddings",
                                                             "messages", "models", "other",
                                                             "count_tokens"};
constexpr std::array<std::string_view, kStatusClasses> kStatusLabels{"2xx", "3xx", "4xx", "5xx",
                                                                     "other"};
constexpr std::array<std::string_view, kUpstreamErrors> kUpstreamErrorLabels{
    "connect",      "timeout",    "closed",       "protocol",    "credential_refused",
    "rate_limited", "overloaded", "client_error", "server_error"};
constexpr std::array<std::string_view, kTokenKinds> kKindLabels{
    "text",  "cache_read", "cache_write_5m", "cache_write_1h", "audio",
    "image", "text",       "reasoning",      "audio",          "image"};
}  // namespace

std::string_view label(Route r) noexcept {
  return kRouteLabels[static_cast<std::size_t>(r)];
}
std::string_view label(StatusClass c) noexcept {
  return kStatusLabels[static_cast<std::size_t>(c)];
}
std::string_view label(UpstreamError e) noexcept {
  return kUpstreamErrorLabels[static_cast<std::size_t>(e)];
}
std::string_view direction_label(TokenKind k) noexcept {
  return k < TokenKind::OutputText ? "input" : "output";
}
std::string_view kind_label(TokenKind k) noexcept {
  return kKindLabels[static_cast<std::size_t>(k)];
}

}  // namespace llmgw::metrics
