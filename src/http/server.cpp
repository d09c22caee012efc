#include "http/server.hpp"

#include "http/fast_write.hpp"

#include "core/ids.hpp"
#include "core/log.hpp"
#include "core/thread.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/http/error.hpp>
#include <boost/beast/http/status.hpp>

#include <array>
#include <charconv>
#include <ctime>

namespace llmgw::http {

namespace {

constexpr auto use_tuple = asio::as_tuple(asio::use_awaitable);
constexpr std::size_t kReadChunk = 16 * 1024;
constexpr std::size_t kMaxRequestIdBytes = 200;
constexpr std::size_t kLingerBytes = 64u << 20;
constexpr std::chrono::seconds kLingerTime{5};

/// "Date: Tue, 15 Nov 1994 08:12:31 GMT\r\n", recomputed at most once a second per thread.
std::string_view date_header() {
  thread_local std::time_t last = 0;
  thread_local char buf[64];
  thread_local std::size_t len = 0;
  const std::time_t now = std::time(nullptr);
  if (now != last) {
    last = now;
    std::tm tm{};
    gmtime_r(&now, &tm);
    len = std::strftime(buf, sizeof buf, "Date: %a, %d %b %Y %H:%M:%S GMT\r\n", &tm);
  }
  return {buf, len};
}

void append_uint(std::string& s, std::uint64_t v) {
  char buf[24];
  const auto r = std::to_chars(buf, buf + sizeof buf, v);
  s.append(buf, r.ptr);
}

/// A request id from a client is echoed only if it is short printable ASCII (header safe).
bool acceptable_request_id(std::string_view id) {
  if (id.empty() || id.size() > kMaxRequestIdBytes) {
    return false;
  }
  for (unsigned char c : id) {
    if (c < 0x21 || c > 0x7e) {
      return false;
    }
  }
  return true;
}

}  // namespace

/// One client connection: reads requests in a loop, hands each to the handler.
class Connection final : public Deadline {
 public:
  Connection(Worker& w, tcp::socket sock) : worker_(w), sock_(std::move(sock)) {
    worker_.conns_.insert(this);
    worker_.ticker().add(*this);
  }
  ~Connection() override {
    worker_.ticker().remove(*this);
    worker_.conns_.erase(this);
    worker_.maybe_finish_drain();
  }

  asio::awaitable<void> run();

  void on_deadline() override {
    error_code ignored;
    sock_.close(ignored);
  }

  /// Closes the connection if it waits for a request; otherwise it closes after its response.
  void drain() {
    if (idle_) {
      error_code ignored;
      sock_.close(ignored);
    }
  }
  void force_close() {
    error_code ignored;
    sock_.close(ignored);
  }

 private:
  friend class Exchange;

  enum class ReadResult { Ok, Closed, Reject };
  asio::awaitable<ReadResult> read_request(RequestParser& parser, core::Errc& reject);
  asio::awaitable<void> reject_and_close(core::Errc e);
  asio::awaitable<void> linger_close();
  void write_access_log(const Exchange& ex);

  Worker& worker_;
  tcp::socket sock_;
  boost::beast::flat_buffer buffer_;
  RequestData data_;
  std::string gateway_id_;
  bool client_id_used_ = false;
  std::string head_;
  bool idle_ = true;
  bool keep_alive_ = true;
  bool close_after_ = false;
};

// ---------------------------------------------------------------------------------------------
// Exchange

const RequestData& Exchange::request() const noexcept { return conn_.data_; }
std::string_view Exchange::path() const noexcept {
  std::string_view t = conn_.data_.target;
  return t.substr(0, t.find('?'));
}
std::string_view Exchange::request_id() const noexcept {
  return conn_.client_id_used_ ? std::string_view(conn_.data_.request_id)
                               : std::string_view(conn_.gateway_id_);
}
std::string_view Exchange::gateway_request_id() const noexcept { return conn_.gateway_id_; }
std::string_view Exchange::client_request_id() const noexcept {
  return conn_.client_id_used_ ? std::string_view(conn_.data_.request_id) : std::string_view{};
}
Worker& Exchange::worker() noexcept { return conn_.worker_; }
tcp::socket& Exchange::client_socket() noexcept { return conn_.sock_; }
void Exchange::abort_connection() noexcept { conn_.close_after_ = true; }

void Exchange::head(unsigned status, std::string_view content_type, std::string_view extra,
                    std::size_t content_length, bool chunked) {
  status_ = status;
  std::string& h = conn_.head_;
  h.clear();
  h += "HTTP/1.1 ";
  append_uint(h, status);
  h.push_back(' ');
  h += std::string_view(
      boost::beast::http::obsolete_reason(static_cast<boost::beast::http::status>(status)));
  h += "\r\n";
  h += date_header();
  if (!content_type.empty()) {
    h += "Content-Type: ";
    h += content_type;
    h += "\r\n";
  }
  if (chunked) {
    h += "Transfer-Encoding: chunked\r\n";
  } else {
    h += "Content-Length: ";
    append_uint(h, content_length);
    h += "\r\n";
  }
  h += "x-request-id: ";
  h += request_id();
  h += "\r\n";
  h += extra;
  if (!conn_.keep_alive_ || conn_.worker_.draining()) {
    h += "Connection: close\r\n";
    conn_.keep_alive_ = false;
  }
  h += "\r\n";
}

asio::awaitable<error_code> Exchange::respond(unsigned status, std::string_view content_type,
                                              std::string_view body,
                                              std::string_view extra_headers) {
  head(status, content_type, extra_headers, body.size(), false);
  if (conn_.data_.method == boost::beast::http::verb::head) {
    body = {};  // HEAD: the headers of the GET answer, no body
  }
  if (keep_body != nullptr) {
    keep_body->assign(body);
  }
  last_write_coming();
  const std::array<asio::const_buffer, 2> bufs{asio::buffer(conn_.head_), asio::buffer(body)};
  conn_.arm_after(conn_.worker_.options().idle_timeout);
  auto [ec, n] = co_await write_all(conn_.sock_, bufs);
  conn_.disarm();
  bytes_sent_ += n;
  if (ec) {
    conn_.close_after_ = true;
  }
  co_return ec;
}

asio::awaitable<error_code> Exchange::respond_error(core::Errc e, std::string_view message,
                                                    std::string_view param,
                                                    std::string_view extra_headers) {
  log.error_type = core::error_type(e);
  const std::string body = core::render_error(e, message, param);
  co_return co_await respond(core::http_status(e), "application/json", body, extra_headers);
}

asio::awaitable<error_code> Exchange::start_stream(unsigned status, std::string_view content_type,
                                                   std::string_view extra_headers) {
  // The head waits for the first chunk: both go out in one write.
  head(status, content_type, extra_headers, 0, true);
  head_pending_ = true;
  co_return error_code{};
}

asio::awaitable<error_code> Exchange::write_stream(std::string_view data, bool last) {
  if (data.empty() && !last && !head_pending_) {
    co_return error_code{};
  }
  char size_line[24];
  auto r = std::to_chars(size_line, size_line + 16, data.size(), 16);
  *r.ptr++ = '\r';
  *r.ptr++ = '\n';
  std::array<asio::const_buffer, 5> bufs;
  std::size_t n = 0;
  if (head_pending_) {
    bufs[n++] = asio::buffer(conn_.head_);
  }
  if (!data.empty()) {
    bufs[n++] = asio::buffer(size_line, static_cast<std::size_t>(r.ptr - size_line));
    bufs[n++] = asio::buffer(data);
    bufs[n++] = asio::buffer("\r\n", 2);
  }
  if (last) {
    bufs[n++] = asio::buffer("0\r\n\r\n", 5);
    last_write_coming();
  }
  head_pending_ = false;
  conn_.arm_after(conn_.worker_.options().idle_timeout);
  auto [ec, sent] =
      co_await write_all(conn_.sock_, std::span<const asio::const_buffer>(bufs.data(), n));
  conn_.disarm();
  bytes_sent_ += sent;
  if (ec) {
    conn_.close_after_ = true;
  }
  co_return ec;
}

asio::awaitable<error_code> Exchange::finish_stream() {
  co_return co_await write_stream({}, true);
}

// ---------------------------------------------------------------------------------------------
// Connection

asio::awaitable<Connection::ReadResult> Connection::read_request(RequestParser& parser,
                                                                 core::Errc& reject) {
  namespace bhttp = boost::beast::http;
  const auto& opts = worker_.options();
  idle_ = buffer_.size() == 0;
  arm_after(idle_ ? opts.idle_timeout : opts.header_timeout);
  bool sent_continue = false;
  bool body_phase = false;
  while (true) {
    if (buffer_.size() > 0) {
      error_code ec;
      const std::size_t used = parser.put(buffer_.data(), ec);
      buffer_.consume(used);
      if (ec == bhttp::error::need_more) {
        ec = {};
      }
      if (ec) {
        if (ec == bhttp::error::header_limit) {
          reject = core::Errc::HeadersTooLarge;
        } else if (ec == bhttp::error::body_limit) {
          reject = core::Errc::PayloadTooLarge;
        } else {
          reject = core::Errc::BadRequest;
        }
        co_return ReadResult::Reject;
      }
      if (parser.is_done()) {
        disarm();
        co_return ReadResult::Ok;
      }
      if (parser.is_header_done()) {
        if (data_.expect_continue && !sent_continue) {
          sent_continue = true;
          static constexpr std::string_view kContinue = "HTTP/1.1 100 Continue\r\n\r\n";
          auto [wec, wn] = co_await asio::async_write(sock_, asio::buffer(kContinue), use_tuple);
          if (wec) {
            co_return ReadResult::Closed;
          }
        }
        if (!body_phase) {
          body_phase = true;  // the body gets one total deadline, not one per pause
          arm_after(opts.body_timeout);
        }
      }
      if (used == 0 && buffer_.size() >= buffer_.max_size()) {
        reject = core::Errc::HeadersTooLarge;
        co_return ReadResult::Reject;
      }
    }
    auto [ec, n] = co_await sock_.async_read_some(buffer_.prepare(kReadChunk), use_tuple);
    if (ec) {
      co_return ReadResult::Closed;
    }
    buffer_.commit(n);
    if (idle_) {
      idle_ = false;
      arm_after(opts.header_timeout);
    }
  }
}

asio::awaitable<void> Connection::reject_and_close(core::Errc e) {
  keep_alive_ = false;
  gateway_id_.clear();
  core::append_request_id(gateway_id_);
  // The head may be cut: a request id parsed whole is still the client's.
  client_id_used_ = data_.has_request_id && acceptable_request_id(data_.request_id);
  Exchange ex(*this);
  std::string_view msg = "The request could not be parsed as HTTP/1.1.";
  if (e == core::Errc::PayloadTooLarge) {
    msg = "The request body is larger than the gateway accepts.";
  } else if (e == core::Errc::HeadersTooLarge) {
    msg = "The request headers are larger than the gateway accepts.";
  }
  co_await ex.respond_error(e, msg);
  worker_.handler().rejected(ex);
  write_access_log(ex);
  co_await linger_close();
}

/// Half-closes, then reads and discards what the client still sends (bounded), so that it
/// sees our error response instead of a reset.
asio::awaitable<void> Connection::linger_close() {
  error_code ec;
  sock_.shutdown(tcp::socket::shutdown_send, ec);
  arm_after(kLingerTime);
  std::size_t discarded = 0;
  std::array<char, kReadChunk> sink;
  while (!ec && discarded < kLingerBytes) {
    auto [rec, n] = co_await sock_.async_read_some(asio::buffer(sink), use_tuple);
    ec = rec;
    discarded += n;
  }
  disarm();
  sock_.close(ec);
}

void Connection::write_access_log(const Exchange& ex) {
  if (!worker_.options().access_log) {
    return;
  }
  const auto us = std::chrono::duration_cast<std::chrono::microseconds>(Clock::now() -
                                                                        ex.started_at());
  core::LogLine line(core::LogLevel::Info, "request");
  line.field_plain("request_id", ex.gateway_request_id())
      .field_plain("method", std::string_view(boost::beast::http::to_string(data_.method)))
      .field("path", ex.path())
      .field("status", ex.status())
      .field("duration_us", static_cast<std::int64_t>(us.count()))
      .field("bytes_sent", static_cast<std::uint64_t>(ex.bytes_sent()));
  if (client_id_used_) {
    line.field("client_request_id", ex.client_request_id());
  }
  if (!ex.log.key_id.empty()) {
    line.field_plain("key_id", ex.log.key_id);  // "key_" + hex, made by the gateway
  }
  if (!ex.log.model.empty()) {
    line.field("model", ex.log.model);
  }
  if (ex.log.upstream_us >= 0) {
    line.field("upstream_us", ex.log.upstream_us);
  }
  if (ex.log.stream) {
    line.field("stream", true);
  }
  if (!ex.log.error_type.empty()) {
    line.field_plain("error_type", ex.log.error_type);
  }
  line.emit();
}

asio::awaitable<void> Connection::run() {
  error_code ec;
  sock_.set_option(tcp::no_delay(true), ec);
  sock_.non_blocking(true, ec);  // for write_all's direct attempt
  buffer_.reserve(kReadChunk);
  buffer_.max_size(worker_.options().max_header_bytes + worker_.options().max_body_bytes +
                    kReadChunk);
  while (!worker_.draining() || !idle_) {
    RequestParser parser(data_);
    parser.header_limit(static_cast<std::uint32_t>(worker_.options().max_header_bytes));
    parser.body_limit(worker_.options().max_body_bytes);
    parser.eager(true);
    core::Errc reject{};
    const ReadResult r = co_await read_request(parser, reject);
    if (r == ReadResult::Closed) {
      break;
    }
    if (r == ReadResult::Reject) {
      idle_ = false;
      co_await reject_and_close(reject);
      co_return;
    }
    idle_ = false;
    keep_alive_ = parser.keep_alive();
    gateway_id_.clear();
    core::append_request_id(gateway_id_);
    client_id_used_ = data_.has_request_id && acceptable_request_id(data_.request_id);
    Exchange ex(*this);
    bool failed = false;
    try {
      co_await worker_.handler().handle(ex);
    } catch (const std::exception& e) {
      // The data plane does not throw; this is the last line of defence (e.g. bad_alloc).
      core::LogLine(core::LogLevel::Error, "handler failed")
          .field("request_id", gateway_id_)
          .field("error", e.what())
          .emit();
      failed = true;
    }
    if (failed) {
      close_after_ = true;
      if (!ex.response_started()) {
        co_await ex.respond_error(core::Errc::Internal,
                                  "The gateway failed to process the request.");
      }
    }
    write_access_log(ex);
    idle_ = true;
    if (!keep_alive_ || close_after_) {
      break;
    }
  }
  sock_.shutdown(tcp::socket::shutdown_both, ec);
  sock_.close(ec);
}

asio::awaitable<void> run_session(Worker* w, tcp::socket sock) {
  Connection c(*w, std::move(sock));
  co_await c.run();
}

// ---------------------------------------------------------------------------------------------
// Worker

Worker::Worker(unsigned index, const ServerOptions& opts, Handler& handler)
    : index_(index), opts_(opts), handler_(handler) {}

Worker::~Worker() {
  if (thread_.joinable()) {
    ioc_.stop();
    thread_.join();
  }
}

void Worker::bind(const tcp::endpoint& ep) {
  acceptor_.open(ep.protocol());
  acceptor_.set_option(tcp::acceptor::reuse_address(true));
  const int one = 1;
  if (::setsockopt(acceptor_.native_handle(), SOL_SOCKET, SO_REUSEPORT, &one, sizeof one) != 0) {
    throw std::system_error(errno, std::generic_category(), "SO_REUSEPORT");
  }
  acceptor_.bind(ep);
  acceptor_.listen(asio::socket_base::max_listen_connections);
}

void Worker::start() {
  local_ = handler_.make_worker_local(*this);
  ticker_.start();
  asio::co_spawn(ioc_, accept_loop(), asio::detached);
  thread_ = std::thread([this] {
    core::name_this_thread("llmgw-io-" + std::to_string(index_));
    try {
      ioc_.run();
    } catch (const std::exception& e) {
      core::LogLine(core::LogLevel::Error, "worker stopped by an exception")
          .field("worker", index_)
          .field("error", e.what())
          .emit();
    }
  });
}

asio::awaitable<void> Worker::accept_loop() {
  asio::steady_timer backoff(ioc_);
  while (!draining_) {
    auto [ec, sock] = co_await acceptor_.async_accept(use_tuple);
    if (ec == asio::error::operation_aborted || draining_) {
      break;
    }
    if (ec) {
      // EMFILE and friends: back off briefly instead of spinning.
      core::LogLine(core::LogLevel::Warn, "accept failed").field("error", ec.message()).emit();
      backoff.expires_after(std::chrono::milliseconds(20));
      co_await backoff.async_wait(use_tuple);
      continue;
    }
    asio::co_spawn(ioc_, run_session(this, std::move(sock)), asio::detached);
  }
}

void Worker::begin_drain(Clock::time_point hard_deadline) {
  draining_ = true;
  error_code ec;
  acceptor_.close(ec);
  // Copy: drain() may destroy connections synchronously only via their coroutines, later.
  for (Connection* c : std::vector<Connection*>(conns_.begin(), conns_.end())) {
    c->drain();
  }
  drain_timer_ = std::make_unique<asio::steady_timer>(ioc_, hard_deadline);
  drain_timer_->async_wait([this](error_code tec) {
    if (tec) {
      return;
    }
    for (Connection* c : std::vector<Connection*>(conns_.begin(), conns_.end())) {
      c->force_close();
    }
  });
  maybe_finish_drain();
}

void Worker::maybe_finish_drain() {
  if (!draining_ || !conns_.empty()) {
    return;
  }
  if (drain_timer_) {
    drain_timer_->cancel();
  }
  ticker_.stop();
  if (local_) {
    local_->shutdown();
  }
}

// ---------------------------------------------------------------------------------------------
// Server

Server::Server(ServerOptions opts, Handler& handler) : opts_(std::move(opts)), handler_(handler) {}

Server::~Server() {
  shutdown();
  join();
}

void Server::start() {
  const auto addr = asio::ip::make_address(opts_.host);
  const unsigned n = opts_.threads == 0 ? 1 : opts_.threads;
  for (unsigned i = 0; i < n; ++i) {
    workers_.push_back(std::make_unique<Worker>(i, opts_, handler_));
  }
  if (opts_.port != 0) {
    // SO_REUSEPORT would let a second gateway on this port start silently and share the
    // traffic: a probe bound without it fails if anyone listens there already.
    tcp::acceptor probe(workers_[0]->ioc_);
    probe.open(addr.is_v6() ? tcp::v6() : tcp::v4());
    probe.set_option(tcp::acceptor::reuse_address(true));
    error_code ec;
    probe.bind(tcp::endpoint(addr, opts_.port), ec);
    if (ec) {
      throw std::system_error(ec, "cannot listen on " + opts_.host + ":" +
                                      std::to_string(opts_.port));
    }
  }
  // Port 0: the first acceptor picks a free port and the others share it.
  workers_[0]->bind(tcp::endpoint(addr, opts_.port));
  port_ = workers_[0]->acceptor_.local_endpoint().port();
  for (unsigned i = 1; i < n; ++i) {
    workers_[i]->bind(tcp::endpoint(addr, port_));
  }
  for (auto& w : workers_) {
    w->start();
  }
}

void Server::shutdown() {
  if (shutting_down_.exchange(true)) {
    return;
  }
  const auto hard_deadline = Clock::now() + opts_.shutdown_grace;
  for (auto& w : workers_) {
    Worker* wp = w.get();
    asio::post(wp->ioc_, [wp, hard_deadline] { wp->begin_drain(hard_deadline); });
  }
}

void Server::close_all_now() {
  for (auto& w : workers_) {
    Worker* wp = w.get();
    asio::post(wp->ioc_, [wp] {
      for (Connection* c : std::vector<Connection*>(wp->conns_.begin(), wp->conns_.end())) {
        c->force_close();
      }
    });
  }
}

void Server::join() {
  for (auto& w : workers_) {
    if (w->thread_.joinable()) {
      w->thread_.join();
    }
  }
}

}  // namespace llmgw::http
