#pragma once
/// The closed label sets of the gateway's metrics. The request path names a series by small
/// integers (these enums and a TargetId), never by strings: the label text is written only at
/// scrape time, from the tables in labels.cpp.

#include <cstdint>
#include <string_view>

namespace llmgw::metrics {

/// The API a request came in on.
enum class Route : std::uint8_t {
  ChatCompletions,  ///< /v1/chat/completions
  Embeddings,       ///< /v1/embeddings
  Messages,         ///< /v1/messages
  Models,           ///< /v1/models
  Other,            ///< anything else the proxy answers (unknown paths included)
  CountTokens,      ///< /v1/messages/count_tokens
};
inline constexpr std::size_t kRoutes = 6;

/// The class of the status the client was answered with.
enum class StatusClass : std::uint8_t { S2xx, S3xx, S4xx, S5xx, Other };
inline constexpr std::size_t kStatusClasses = 5;

/// 200-299 → S2xx … 500-599 → S5xx; anything else (0: no answer was sent) → Other.
constexpr StatusClass status_class(unsigned status) noexcept {
  if (status >= 200 && status < 600) {
    return static_cast<StatusClass>(status / 100 - 2);
  }
  return StatusClass::Other;
}

/// Tokens by direction and kind, after pricing's normalisation (the quantities are disjoint).
enum class TokenKind : std::uint8_t {
  InputText,
  InputCacheRead,
  InputCacheWrite5m,
  InputCacheWrite1h,
  InputAudio,
  InputImage,
  OutputText,
  OutputReasoning,
  OutputAudio,
  OutputImage,
};
inline constexpr std::size_t kTokenKinds = 10;

/// The four latencies measured per request.
enum class Latency : std::uint8_t {
  Total,       ///< first request byte read to last answer byte written
  Upstream,    ///< upstream request sent to last upstream byte read
  Overhead,    ///< the time the gateway itself adds (total minus the time spent upstream)
  FirstToken,  ///< upstream request sent to the first content the client received (streams)
};
inline constexpr std::size_t kLatencies = 4;

/// Why an upstream call failed.
enum class UpstreamError : std::uint8_t {
  Connect,            ///< no connection (refused, DNS, TLS handshake)
  Timeout,            ///< connect, first byte or idle deadline passed
  Closed,             ///< the connection ended before the answer did
  Protocol,           ///< the answer could not be parsed
  CredentialRefused,  ///< upstream 401 / 403
  RateLimited,        ///< upstream 429
  Overloaded,         ///< upstream 503 / 529
  ClientError,        ///< any other upstream 4xx
  ServerError,        ///< any other upstream 5xx
};
inline constexpr std::size_t kUpstreamErrors = 9;

/// A request refused by the gateway's own limits.
enum class Refusal : std::uint8_t {
  KeyRequests,    ///< the key's requests-per-minute limit
  KeyTokens,      ///< the key's tokens-per-minute limit
  ModelRequests,  ///< the model's requests-per-minute limit
  ModelTokens,    ///< the model's tokens-per-minute limit
  Budget,         ///< the key's budget
};
inline constexpr std::size_t kRefusals = 5;

/// Label values (Prometheus-safe ASCII, no escaping needed).
std::string_view label(Route r) noexcept;
std::string_view label(StatusClass c) noexcept;
std::string_view label(UpstreamError e) noexcept;
/// The `direction` and `kind` labels of a token kind.
std::string_view direction_label(TokenKind k) noexcept;
std::string_view kind_label(TokenKind k) noexcept;

}  // namespace llmgw::metrics
