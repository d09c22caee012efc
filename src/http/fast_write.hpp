#pragma once
/// Writes that skip the scheduler when they can. An asynchronous write whose data the kernel
/// takes at once still completes through the io_context queue (one more handler, one more
/// reactor poll per write); on a loopback or LAN connection that is nearly every write. So
/// the write is first tried directly, non-blocking, and only the rest — if any — is awaited.

#include <boost/asio/awaitable.hpp>
#include <boost/asio/ip/tcp.hpp>

#include <span>
#include <tuple>

namespace llmgw::http {

/// Writes all of `bufs` to `sock`, which must be in non-blocking mode (`non_blocking(true)`).
boost::asio::awaitable<std::tuple<boost::system::error_code, std::size_t>> write_all(
    boost::asio::ip::tcp::socket& sock, std::span<const boost::asio::const_buffer> bufs);

}  // namespace llmgw::http
