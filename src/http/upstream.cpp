#include "http/upstream.hpp"

#include "http/fast_write.hpp"

#include "core/ids.hpp"
#include "core/log.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/connect.hpp>
#include <boost/asio/read_until.hpp>
#include <boost/asio/ssl/host_name_verification.hpp>
#include <boost/asio/streambuf.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <boost/url/parse.hpp>

#include <openssl/evp.h>
#include <openssl/ssl.h>

#include <algorithm>
#include <cstdlib>

namespace llmgw::http {

namespace {

constexpr auto use_tuple = asio::as_tuple(asio::use_awaitable);
constexpr std::size_t kMaxConnectResponse = 8192;

std::string lower(std::string_view s) {
  std::string out(s);
  std::transform(out.begin(), out.end(), out.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return out;
}

const char* env_either(const char* upper, const char* lower_name) {
  const char* v = std::getenv(lower_name);
  if (v == nullptr || *v == '\0') {
    v = std::getenv(upper);
  }
  return (v != nullptr && *v != '\0') ? v : nullptr;
}

/// Proxy URL → origin plus a Basic credential from its userinfo.
std::optional<Origin> parse_proxy(const char* value, std::string& auth) {
  if (value == nullptr) {
    return std::nullopt;
  }
  std::string url = value;
  if (url.find("://") == std::string::npos) {
    url = "http://" + url;
  }
  auto u = boost::urls::parse_absolute_uri(url);
  if (!u) {
    // Going direct when the operator asked for a proxy would bypass their egress control.
    // The value is not quoted: it may hold a password.
    throw std::runtime_error("a proxy variable (HTTPS_PROXY/HTTP_PROXY) holds a value that "
                             "is not a URL");
  }
  if (u->has_userinfo()) {
    const std::string userinfo = u->userinfo();  // percent-decoded user:pass
    std::string enc(4 * ((userinfo.size() + 2) / 3) + 1, '\0');
    const int n = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(enc.data()),
                                  reinterpret_cast<const unsigned char*>(userinfo.data()),
                                  static_cast<int>(userinfo.size()));
    enc.resize(static_cast<std::size_t>(n));
    auth = "Basic " + enc;
  }
  if (u->scheme() != "http") {
    // The tunnel to the proxy itself is plain TCP; a TLS proxy is not supported.
    throw std::runtime_error("proxy URL '" + std::string(u->scheme()) + "://" +
                             std::string(u->encoded_host_and_port()) +
                             "': only http:// proxies are supported");
  }
  std::string plain = "http://" + std::string(u->encoded_host_and_port());
  return Origin::parse(plain);
}

/// Closes the socket of a connect step in progress when its deadline passes.
class ConnectDeadline final : public Deadline {
 public:
  ConnectDeadline(DeadlineTicker& t, tcp::resolver& r) : ticker_(t), resolver_(r) {
    ticker_.add(*this);
  }
  ~ConnectDeadline() override { ticker_.remove(*this); }
  void watch(tcp::socket* s) noexcept { sock_ = s; }
  void on_deadline() override {
    fired = true;
    resolver_.cancel();
    if (sock_ != nullptr) {
      error_code ignored;
      sock_->close(ignored);
    }
  }
  bool fired = false;

 private:
  DeadlineTicker& ticker_;
  tcp::resolver& resolver_;
  tcp::socket* sock_ = nullptr;
};

}  // namespace

ProxySettings ProxySettings::from_environment() {
  ProxySettings p;
  p.https_proxy = parse_proxy(env_either("HTTPS_PROXY", "https_proxy"), p.https_proxy_auth);
  p.http_proxy = parse_proxy(env_either("HTTP_PROXY", "http_proxy"), p.http_proxy_auth);
  if (const char* np = env_either("NO_PROXY", "no_proxy")) {
    std::string_view rest(np);
    while (!rest.empty()) {
      const auto comma = rest.find(',');
      std::string item = lower(rest.substr(0, comma));
      rest = comma == std::string_view::npos ? std::string_view{} : rest.substr(comma + 1);
      item.erase(0, item.find_first_not_of(" \t"));
      item.erase(item.find_last_not_of(" \t") + 1);
      if (item.empty()) {
        continue;
      }
      if (item.front() == '.') {
        item.erase(0, 1);
      } else if (item.size() > 1 && item[0] == '*' && item[1] == '.') {
        item.erase(0, 2);
      }
      if (item.front() == '[') {
        // "[::1]" or "[::1]:8080": the address between the brackets.
        const auto close = item.find(']');
        item = close == std::string::npos ? item.substr(1) : item.substr(1, close - 1);
      } else if (item != "*") {
        // "host:port" entries: keep the host (ports are not distinguished).
        if (const auto colon = item.rfind(':');
            colon != std::string::npos && item.find(':') == colon) {
          item.resize(colon);
        }
      }
      p.no_proxy.push_back(item);
    }
  }
  return p;
}

const Origin* ProxySettings::proxy_for(const Origin& origin, std::string* auth) const {
  const auto& proxy = origin.tls ? https_proxy : http_proxy;
  if (!proxy) {
    return nullptr;
  }
  const std::string host = lower(origin.host);
  for (const auto& np : no_proxy) {
    if (np == "*" || host == np ||
        (host.size() > np.size() && host.ends_with(np) && host[host.size() - np.size() - 1] == '.')) {
      return nullptr;
    }
  }
  if (auth != nullptr) {
    *auth = origin.tls ? https_proxy_auth : http_proxy_auth;
  }
  return &*proxy;
}

asio::awaitable<std::tuple<error_code, std::size_t>> UpstreamConnection::read_some(
    asio::mutable_buffer buf) {
  if (tls_) {
    co_return co_await tls_->async_read_some(buf, use_tuple);
  }
  co_return co_await plain_.async_read_some(buf, use_tuple);
}

asio::awaitable<std::tuple<error_code, std::size_t>> UpstreamConnection::write(
    std::span<const asio::const_buffer> bufs) {
  if (tls_) {
    co_return co_await asio::async_write(*tls_, bufs, use_tuple);
  }
  co_return co_await write_all(plain_, bufs);
}

void UpstreamConnection::close() noexcept {
  error_code ignored;
  socket().close(ignored);
}

UpstreamPool::UpstreamPool(asio::io_context& ioc, asio::ssl::context& tls,
                           const ProxySettings& proxy, UpstreamPoolOptions opts)
    : ioc_(ioc), tls_(tls), proxy_(proxy), opts_(opts) {}

std::unique_ptr<UpstreamConnection> UpstreamPool::take_idle(const Origin& origin) {
  auto it = idle_.find(origin.key);
  if (it == idle_.end()) {
    return nullptr;
  }
  auto& q = it->second;
  const auto now = Clock::now();
  while (!q.empty()) {
    auto c = std::move(q.back());  // most recently used: least likely closed by the peer
    q.pop_back();
    if (now - c->idle_since < opts_.max_idle_time && c->socket().is_open()) {
      return c;
    }
    c->close();
  }
  return nullptr;
}

void UpstreamPool::release(const Origin& origin, std::unique_ptr<UpstreamConnection> conn) {
  if (!conn || !conn->socket().is_open()) {
    return;
  }
  auto& q = idle_[origin.key];
  if (q.size() >= opts_.max_idle_per_origin) {
    q.front()->close();
    q.pop_front();
  }
  conn->reused = true;
  conn->idle_since = Clock::now();
  q.push_back(std::move(conn));
}

void UpstreamPool::close_all() {
  for (auto& [key, q] : idle_) {
    for (auto& c : q) {
      c->close();
    }
  }
  idle_.clear();
}

std::size_t UpstreamPool::idle_count() const {
  std::size_t n = 0;
  for (const auto& [key, q] : idle_) {
    n += q.size();
  }
  return n;
}

asio::awaitable<core::Result<std::unique_ptr<UpstreamConnection>>> UpstreamPool::connect(
    const Origin& origin, std::chrono::milliseconds timeout, DeadlineTicker& ticker) {
  using core::Errc;
  tcp::resolver resolver(ioc_);
  ConnectDeadline deadline(ticker, resolver);
  deadline.arm_after(timeout);
  auto fail = [&](error_code ec) -> core::Result<std::unique_ptr<UpstreamConnection>> {
    (void)ec;
    return core::make_error_code(deadline.fired ? Errc::UpstreamTimeout
                                                : Errc::UpstreamUnavailable);
  };

  std::string proxy_auth;
  const Origin* proxy = proxy_.proxy_for(origin, &proxy_auth);
  const Origin& target = proxy != nullptr ? *proxy : origin;

  auto [rec, endpoints] =
      co_await resolver.async_resolve(target.host, std::to_string(target.port), use_tuple);
  if (rec || deadline.fired) {
    co_return fail(rec);
  }
  tcp::socket sock(ioc_);
  deadline.watch(&sock);
  auto [cec, ep] = co_await asio::async_connect(sock, endpoints, use_tuple);
  if (cec || deadline.fired) {
    co_return fail(cec);
  }
  error_code ignored;
  sock.set_option(tcp::no_delay(true), ignored);

  if (proxy != nullptr) {
    // Authority form with an explicit port, IPv6 literals in brackets (RFC 9110 9.3.6).
    const bool v6 = origin.host.find(':') != std::string::npos;
    const std::string authority = (v6 ? "[" + origin.host + "]" : origin.host) + ":" +
                                  std::to_string(origin.port);
    std::string req = "CONNECT " + authority + " HTTP/1.1\r\nHost: " + authority + "\r\n";
    if (!proxy_auth.empty()) {
      req += "Proxy-Authorization: " + proxy_auth + "\r\n";
    }
    req += "\r\n";
    auto [wec, wn] = co_await asio::async_write(sock, asio::buffer(req), use_tuple);
    if (wec || deadline.fired) {
      co_return fail(wec);
    }
    asio::streambuf resp(kMaxConnectResponse);
    auto [rdec, rn] = co_await asio::async_read_until(sock, resp, "\r\n\r\n", use_tuple);
    if (rdec || deadline.fired) {
      co_return fail(rdec);
    }
    const std::string_view head(static_cast<const char*>(resp.data().data()), rn);
    // "HTTP/1.1 200 Connection established"
    if (head.size() < 12 || head.substr(0, 5) != "HTTP/" || head.substr(9, 3) != "200") {
      core::LogLine(core::LogLevel::Warn, "proxy refused CONNECT")
          .field("proxy", proxy->host_header)
          .field("status", head.substr(0, std::min<std::size_t>(head.find('\r'), 64)))
          .emit();
      co_return core::make_error_code(Errc::UpstreamUnavailable);
    }
    if (resp.size() != rn) {
      co_return core::make_error_code(Errc::UpstreamProtocol);  // bytes before TLS: refuse
    }
  }

  if (!origin.tls) {
    sock.non_blocking(true, ignored);  // for write_all's direct attempt
    co_return std::make_unique<UpstreamConnection>(std::move(sock));
  }
  auto tls = std::make_unique<asio::ssl::stream<tcp::socket>>(std::move(sock), tls_);
  deadline.watch(&tls->next_layer());
  // SNI is sent for names, not for IP literals (RFC 6066 section 3).
  error_code addr_ec;
  asio::ip::make_address(origin.host, addr_ec);
  if (addr_ec && SSL_set_tlsext_host_name(tls->native_handle(), origin.host.c_str()) != 1) {
    co_return core::make_error_code(Errc::UpstreamUnavailable);
  }
  tls->set_verify_mode(asio::ssl::verify_peer);
  tls->set_verify_callback(asio::ssl::host_name_verification(origin.host));
  auto [hec] = co_await tls->async_handshake(asio::ssl::stream_base::client, use_tuple);
  if (hec || deadline.fired) {
    if (hec && !deadline.fired) {
      core::LogLine(core::LogLevel::Warn, "TLS handshake with upstream failed")
          .field("upstream", origin.host_header)
          .field("error", hec.message())
          .emit();
    }
    co_return fail(hec);
  }
  co_return std::make_unique<UpstreamConnection>(std::move(tls));
}

std::unique_ptr<asio::ssl::context> make_client_tls_context() {
  auto ctx = std::make_unique<asio::ssl::context>(asio::ssl::context::tls_client);
  ctx->set_options(asio::ssl::context::default_workarounds | asio::ssl::context::no_sslv2 |
                   asio::ssl::context::no_sslv3 | asio::ssl::context::no_tlsv1 |
                   asio::ssl::context::no_tlsv1_1);
  // Honours SSL_CERT_FILE / SSL_CERT_DIR, else the system store.
  ctx->set_default_verify_paths();
  ctx->set_verify_mode(asio::ssl::verify_peer);
  return ctx;
}

}  // namespace llmgw::http
