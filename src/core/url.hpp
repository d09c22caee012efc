#pragma once
/// Upstream addresses parsed once from a provider's base URL.

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace llmgw::core {

/// Scheme, host and port of an upstream, parsed once from a provider's base URL.
struct Origin {
  bool tls = false;
  std::string host;        ///< without brackets for IPv6
  std::uint16_t port = 0;
  std::string host_header; ///< value for the Host header ("host[:port]")
  std::string base_path;   ///< path of the base URL without trailing '/', e.g. "/v1"
  std::string key;         ///< "https://host:port": the pool key

  /// Parses "http[s]://host[:port][/path]"; nullopt if unusable.
  static std::optional<Origin> parse(std::string_view base_url);
};

/// `s` as one path segment: RFC 3986 unreserved characters as they are, every other byte as
/// %XX (upper-case hex). A model id like "anthropic.claude-v2:1" becomes
/// "anthropic.claude-v2%3A1".
std::string percent_encode_segment(std::string_view s);

}  // namespace llmgw::core
