#include "http/fast_write.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/buffers_suffix.hpp>

namespace llmgw::http {

namespace asio = boost::asio;

asio::awaitable<std::tuple<boost::system::error_code, std::size_t>> write_all(
    asio::ip::tcp::socket& sock, std::span<const asio::const_buffer> bufs) {
  const std::size_t total = asio::buffer_size(bufs);
  boost::system::error_code ec;
  const std::size_t now = sock.write_some(bufs, ec);
  if (!ec && now == total) {
    co_return std::tuple{ec, now};
  }
  if (ec && ec != asio::error::would_block && ec != asio::error::try_again) {
    co_return std::tuple{ec, now};
  }
  boost::beast::buffers_suffix<std::span<const asio::const_buffer>> rest(bufs);
  rest.consume(now);
  auto [later_ec, later] =
      co_await asio::async_write(sock, rest, asio::as_tuple(asio::use_awaitable));
  co_return std::tuple{later_ec, now + later};
}

}  // namespace llmgw::http
