#pragma once
/// Client side of the proxy: a keep-alive connection pool per upstream origin per worker
/// thread, TLS with certificate and host-name verification against the system CAs plus SNI,
/// CONNECT tunnels through HTTPS_PROXY / HTTP_PROXY honouring NO_PROXY, and timeouts through
/// the worker's deadline ticker.

#include "core/errors.hpp"
#include "core/url.hpp"
#include "http/deadline.hpp"

#include <boost/asio/awaitable.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/asio/ssl/stream.hpp>
#include <boost/beast/core/flat_buffer.hpp>

#include <chrono>
#include <cstdint>
#include <deque>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <tuple>
#include <unordered_map>
#include <vector>

namespace llmgw::http {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;
using error_code = boost::system::error_code;

using core::Origin;

/// Forward proxy settings from HTTPS_PROXY, HTTP_PROXY, NO_PROXY (and lower-case forms).
struct ProxySettings {
  std::optional<Origin> https_proxy;
  std::optional<Origin> http_proxy;
  std::string https_proxy_auth;  ///< "Basic …" from user:pass in the URL, or empty
  std::string http_proxy_auth;
  std::vector<std::string> no_proxy;  ///< lower-case host suffixes; "*" matches all

  /// Throws std::runtime_error for a proxy URL it cannot use (e.g. https://).
  static ProxySettings from_environment();
  /// The proxy to tunnel through for `origin`, or nullptr.
  [[nodiscard]] const Origin* proxy_for(const Origin& origin, std::string* auth) const;
};

/// One connection to an upstream, plain or TLS.
class UpstreamConnection {
 public:
  UpstreamConnection(tcp::socket sock) : plain_(std::move(sock)) {}
  UpstreamConnection(std::unique_ptr<asio::ssl::stream<tcp::socket>> tls)
      : plain_(tls->get_executor()), tls_(std::move(tls)) {}

  asio::awaitable<std::tuple<error_code, std::size_t>> read_some(asio::mutable_buffer buf);
  asio::awaitable<std::tuple<error_code, std::size_t>> write(
      std::span<const asio::const_buffer> bufs);
  tcp::socket& socket() noexcept { return tls_ ? tls_->next_layer() : plain_; }
  void close() noexcept;

  bool reused = false;            ///< served an earlier request
  Clock::time_point idle_since{};
  /// Buffers of the call using the connection, kept with it so a pooled connection brings
  /// its memory along instead of each call allocating anew.
  boost::beast::flat_buffer read_buffer;
  std::string body;  ///< response body bytes parsed but not yet handled

 private:
  tcp::socket plain_;
  std::unique_ptr<asio::ssl::stream<tcp::socket>> tls_;
};

struct UpstreamPoolOptions {
  std::size_t max_idle_per_origin = 256;
  std::chrono::seconds max_idle_time{30};
};

/// Per-worker pool; used only on its worker's thread.
class UpstreamPool {
 public:
  UpstreamPool(asio::io_context& ioc, asio::ssl::context& tls, const ProxySettings& proxy,
               UpstreamPoolOptions opts = {});

  /// An idle pooled connection if one is fresh, else nullptr.
  std::unique_ptr<UpstreamConnection> take_idle(const Origin& origin);
  /// Opens a new connection (DNS, TCP, CONNECT tunnel, TLS). `deadline` bounds the whole
  /// step: when it fires, the socket in progress is closed and the result is UpstreamTimeout.
  asio::awaitable<core::Result<std::unique_ptr<UpstreamConnection>>> connect(
      const Origin& origin, std::chrono::milliseconds timeout, DeadlineTicker& ticker);
  /// Returns a connection whose last response was read completely.
  void release(const Origin& origin, std::unique_ptr<UpstreamConnection> conn);
  void close_all();
  [[nodiscard]] std::size_t idle_count() const;

 private:
  asio::io_context& ioc_;
  asio::ssl::context& tls_;
  const ProxySettings& proxy_;
  UpstreamPoolOptions opts_;
  std::unordered_map<std::string, std::deque<std::unique_ptr<UpstreamConnection>>> idle_;
};

/// The process-wide TLS client context: system CAs (or SSL_CERT_FILE), peer verification.
std::unique_ptr<asio::ssl::context> make_client_tls_context();

}  // namespace llmgw::http
