#include "http/client/blocking_client.hpp"

#include <boost/algorithm/string/predicate.hpp>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/asio/ssl/host_name_verification.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/beast/http/write.hpp>
#include <boost/beast/ssl/ssl_stream.hpp>
#include <boost/url/parse.hpp>

namespace llmgw::http {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace bhttp = boost::beast::http;
using asio::ip::tcp;

namespace {

constexpr std::uint32_t kMaxHeaderBytes = 64 * 1024;

struct Exchange {
  bool done = false;
  std::string error;
  BlockingAnswer answer;
};

template <class Stream>
asio::awaitable<void> round_trip(Stream& stream, const bhttp::request<bhttp::string_body>& req,
                                 std::size_t max_answer, std::string host, Exchange* result) {
  auto tuple = asio::as_tuple(asio::use_awaitable);
  auto [wec, written] = co_await bhttp::async_write(stream, req, tuple);
  if (wec) {
    result->error = "sending the request to " + host + " failed: " + wec.message();
    co_return;
  }
  beast::flat_buffer buffer;
  bhttp::response_parser<bhttp::string_body> parser;
  parser.body_limit(max_answer);
  parser.header_limit(kMaxHeaderBytes);
  parser.skip(req.method() == bhttp::verb::head);
  auto [rec, read] = co_await bhttp::async_read(stream, buffer, parser, tuple);
  if (rec) {
    result->error = "reading the answer of " + host + " failed: " + rec.message();
    co_return;
  }
  auto& msg = parser.get();
  result->answer.status = msg.result_int();
  for (const auto& field : msg) {
    result->answer.headers.emplace_back(field.name_string(), field.value());
  }
  result->answer.body = std::move(msg.body());
  result->done = true;
}

asio::awaitable<void> exchange(UrlTarget target, bhttp::request<bhttp::string_body> req,
                               std::size_t max_answer, asio::ssl::context* tls,
                               std::chrono::milliseconds timeout, Exchange* result) {
  auto tuple = asio::as_tuple(asio::use_awaitable);
  auto ex = co_await asio::this_coro::executor;
  tcp::resolver resolver(ex);
  auto [rec, endpoints] = co_await resolver.async_resolve(target.host, target.port, tuple);
  if (rec) {
    result->error = "resolving " + target.host + " failed: " + rec.message();
    co_return;
  }
  beast::tcp_stream tcp_stream(ex);
  tcp_stream.expires_after(timeout);
  auto [cec, ep] = co_await tcp_stream.async_connect(endpoints, tuple);
  if (cec) {
    result->error = "connecting to " + target.host_header + " failed: " + cec.message();
    co_return;
  }
  if (!target.tls) {
    co_await round_trip(tcp_stream, req, max_answer, target.host_header, result);
    co_return;
  }
  beast::ssl_stream<beast::tcp_stream> stream(std::move(tcp_stream), *tls);
  boost::system::error_code addr_ec;
  asio::ip::make_address(target.host, addr_ec);
  // SNI for names only (RFC 6066 section 3).
  if (addr_ec && SSL_set_tlsext_host_name(stream.native_handle(), target.host.c_str()) != 1) {
    result->error = "setting the TLS server name failed";
    co_return;
  }
  stream.set_verify_mode(asio::ssl::verify_peer);
  stream.set_verify_callback(asio::ssl::host_name_verification(target.host));
  auto [hec] = co_await stream.async_handshake(asio::ssl::stream_base::client, tuple);
  if (hec) {
    result->error = "the TLS handshake with " + target.host_header + " failed: " + hec.message();
    co_return;
  }
  co_await round_trip(stream, req, max_answer, target.host_header, result);
}

}  // namespace

std::string_view BlockingAnswer::header(std::string_view name) const noexcept {
  for (const auto& [n, v] : headers) {
    if (boost::algorithm::iequals(n, name)) {
      return v;
    }
  }
  return {};
}

std::optional<UrlTarget> parse_http_url(std::string_view url) {
  const auto u = boost::urls::parse_absolute_uri(url);
  if (!u || (u->scheme() != "https" && u->scheme() != "http") || u->host().empty()) {
    return std::nullopt;
  }
  UrlTarget t;
  t.tls = u->scheme() == "https";
  t.host = u->host_type() == boost::urls::host_type::ipv6 ? std::string(u->encoded_host_address())
                                                          : std::string(u->host());
  if (!t.host.empty() && t.host.front() == '[') {
    t.host = t.host.substr(1, t.host.size() - 2);
  }
  t.port = u->has_port() ? std::string(u->port()) : (t.tls ? "443" : "80");
  t.host_header = u->encoded_host_and_port();
  t.target = u->encoded_path().empty() ? "/" : std::string(u->encoded_path());
  if (u->has_query()) {
    t.target += '?';
    t.target += u->encoded_query();
  }
  return t;
}

std::optional<BlockingAnswer> blocking_request(const BlockingRequest& req, std::string& error) {
  auto target = parse_http_url(req.url);
  if (!target) {
    error = "the URL is not an http(s) URL";
    return std::nullopt;
  }
  const auto verb = bhttp::string_to_verb(req.method);
  if (verb == bhttp::verb::unknown) {
    error = "unknown HTTP method";
    return std::nullopt;
  }
  bhttp::request<bhttp::string_body> msg{verb, target->target, 11};
  bool has_host = false;
  for (const auto& [name, value] : req.headers) {
    has_host = has_host || boost::algorithm::iequals(name, "host");
  }
  if (!has_host) {
    msg.set(bhttp::field::host, target->host_header);
  }
  msg.set(bhttp::field::user_agent, "llmgw");
  for (const auto& [name, value] : req.headers) {
    msg.insert(name, value);
  }
  msg.body() = std::string(req.body);
  if (!req.body.empty() || verb == bhttp::verb::put || verb == bhttp::verb::post) {
    msg.prepare_payload();
  }

  asio::ssl::context tls(asio::ssl::context::tls_client);
  if (target->tls) {
    boost::system::error_code ec;
    tls.set_options(asio::ssl::context::default_workarounds | asio::ssl::context::no_sslv2 |
                        asio::ssl::context::no_sslv3 | asio::ssl::context::no_tlsv1 |
                        asio::ssl::context::no_tlsv1_1,
                    ec);
    tls.set_default_verify_paths(ec);
    if (ec) {
      error = "loading the system's TLS roots failed: " + ec.message();
      return std::nullopt;
    }
    tls.set_verify_mode(asio::ssl::verify_peer);
  }
  Exchange result;
  asio::io_context ioc;
  std::string spawn_error;
  asio::co_spawn(ioc,
                 exchange(*target, std::move(msg), req.max_answer_bytes, &tls, req.timeout,
                          &result),
                 [&spawn_error](const std::exception_ptr& e) {
                   if (e) {
                     spawn_error = "the HTTP request failed";
                   }
                 });
  ioc.run_for(req.timeout);
  if (!result.done) {
    error = !result.error.empty()  ? result.error
            : !spawn_error.empty() ? spawn_error
                                   : target->host_header + " did not answer in time";
    return std::nullopt;
  }
  return std::move(result.answer);
}

}  // namespace llmgw::http
