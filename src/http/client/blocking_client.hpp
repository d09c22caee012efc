#pragma once
/// A blocking HTTP/1.1 client (Beast + Asio) for background threads and the command line:
/// Google's token endpoint, the S3 archive sink. Each call runs its own io_context on the
/// calling thread, one connection per call, so it must never run on an I/O thread.
/// https verifies the server's certificate chain against the system's roots and its name.
/// Error texts name the step and the host, never a header or the body sent (they may hold
/// credentials).

#include <chrono>
#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace llmgw::http {

struct BlockingRequest {
  std::string_view method = "GET";  ///< any token: GET, PUT, POST, HEAD, DELETE
  std::string_view url;             ///< http:// or https://; the path and query as sent
  /// Sent as given, after Host (set from the URL unless given here) and User-Agent; a body
  /// gets Content-Length.
  std::vector<std::pair<std::string, std::string>> headers;
  std::string_view body;
  std::chrono::milliseconds timeout{10'000};  ///< the whole exchange, resolve to last byte
  std::size_t max_answer_bytes = 64 * 1024;   ///< body limit of the answer (headers: 64 KiB)
};

struct BlockingAnswer {
  unsigned status = 0;
  std::vector<std::pair<std::string, std::string>> headers;
  std::string body;

  /// The first header of that name (case-insensitive); empty when absent.
  [[nodiscard]] std::string_view header(std::string_view name) const noexcept;
};

/// Sends `req` and reads the answer. Nullopt with `error` when the URL is not http(s), or
/// resolving, connecting, the TLS handshake, sending or reading fails, or the time is up.
std::optional<BlockingAnswer> blocking_request(const BlockingRequest& req, std::string& error);

/// Host, port, TLS and the request target of an http(s) URL, as the client uses them.
struct UrlTarget {
  bool tls = false;
  std::string host;         ///< without IPv6 brackets
  std::string port;         ///< "443" when the URL has none and is https
  std::string host_header;  ///< as in the URL: host[:port]
  std::string target;       ///< encoded path (at least "/") and "?query" if any
};
std::optional<UrlTarget> parse_http_url(std::string_view url);

}  // namespace llmgw::http
