#pragma once
/// The HTTP/1.1 listener: N workers, each one thread with its own io_context and its own
/// SO_REUSEPORT acceptor, so a connection lives on one thread for its whole life. Requests
/// are read with `RequestParser` into per-connection buffers and handed to a `Handler`;
/// responses are written as one hand-built head plus body in a single gather write.

#include "core/errors.hpp"
#include "http/deadline.hpp"
#include "http/request_parser.hpp"

#include <boost/asio/awaitable.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core/flat_buffer.hpp>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <thread>
#include <unordered_set>
#include <vector>

namespace llmgw::http {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;
using error_code = boost::system::error_code;

struct ServerOptions {
  std::string host = "0.0.0.0";
  std::uint16_t port = 8080;
  unsigned threads = 1;
  std::size_t max_body_bytes = 10u << 20;
  std::size_t max_header_bytes = 16u << 10;
  std::chrono::milliseconds header_timeout{10'000};
  std::chrono::milliseconds body_timeout{30'000};
  std::chrono::milliseconds idle_timeout{75'000};
  std::chrono::milliseconds shutdown_grace{30'000};
  bool access_log = true;
};

class Worker;
class Connection;

/// Fields of the access-log line that only the handler knows.
struct AccessLogFields {
  std::string key_id;
  std::string model;
  std::int64_t upstream_us = -1;
  /// Owned: a stream translator's error type is its own string, gone before this line is
  /// logged and the audit record written.
  std::string error_type;
  bool stream = false;
};

/// One request and its response, as the handler sees them.
class Exchange {
 public:
  explicit Exchange(Connection& c) : conn_(c) {}

  [[nodiscard]] const RequestData& request() const noexcept;
  [[nodiscard]] std::string_view path() const noexcept;  ///< target without query
  /// The id returned in x-request-id: the client's, if it sent a usable one, else ours.
  [[nodiscard]] std::string_view request_id() const noexcept;
  /// The gateway's own id for this request (32 hex digits), unique even when clients reuse ids.
  [[nodiscard]] std::string_view gateway_request_id() const noexcept;
  /// The client's x-request-id if it was used, else empty.
  [[nodiscard]] std::string_view client_request_id() const noexcept;
  [[nodiscard]] Worker& worker() noexcept;
  [[nodiscard]] tcp::socket& client_socket() noexcept;
  [[nodiscard]] Clock::time_point started_at() const noexcept { return started_; }
  [[nodiscard]] bool response_started() const noexcept { return status_ != 0; }
  [[nodiscard]] unsigned status() const noexcept { return status_; }
  [[nodiscard]] std::size_t bytes_sent() const noexcept { return bytes_sent_; }

  /// A complete response. `extra_headers` are preformatted lines ("Name: value\r\n").
  asio::awaitable<error_code> respond(unsigned status, std::string_view content_type,
                                      std::string_view body, std::string_view extra_headers = {});
  asio::awaitable<error_code> respond_error(core::Errc e, std::string_view message,
                                            std::string_view param = {},
                                            std::string_view extra_headers = {});
  /// A chunked response: start, any number of writes, finish. The head is sent with the first
  /// write, and `last` sends the terminating chunk with the data: a stream that arrives at
  /// once leaves in one write.
  asio::awaitable<error_code> start_stream(unsigned status, std::string_view content_type,
                                           std::string_view extra_headers = {});
  asio::awaitable<error_code> write_stream(std::string_view data, bool last = false);
  asio::awaitable<error_code> finish_stream();
  /// After a failed stream the connection cannot be reused.
  void abort_connection() noexcept;

  AccessLogFields log;
  /// When set, respond() keeps a copy of the body it sends here (the audit log's response
  /// body); streams are not copied.
  std::string* keep_body = nullptr;
  /// Called once, just before the last bytes of the answer are written (a whole answer, or a
  /// stream's terminating chunk), with `before_last_write_arg`: what must be on record before
  /// the client has its answer is made there. Null: nothing.
  void (*before_last_write)(void*) = nullptr;
  void* before_last_write_arg = nullptr;

 private:
  friend class Connection;
  void head(unsigned status, std::string_view content_type, std::string_view extra_headers,
            std::size_t content_length, bool chunked);
  void last_write_coming() {
    if (before_last_write != nullptr) {
      const auto f = before_last_write;
      before_last_write = nullptr;
      f(before_last_write_arg);
    }
  }

  Connection& conn_;
  Clock::time_point started_ = Clock::now();
  unsigned status_ = 0;
  std::size_t bytes_sent_ = 0;
  bool head_pending_ = false;
};

/// Per-worker state a handler keeps (caches, upstream pools); lives on the worker thread.
class WorkerLocal {
 public:
  virtual ~WorkerLocal() = default;
  /// Called on the worker thread when the worker drains (close pooled sockets).
  virtual void shutdown() {}
};

class Handler {
 public:
  virtual ~Handler() = default;
  virtual std::unique_ptr<WorkerLocal> make_worker_local(Worker&) { return nullptr; }
  /// Must not throw; must answer (respond or stream) unless the client is gone.
  virtual asio::awaitable<void> handle(Exchange& ex) = 0;
  /// A request the HTTP layer refused itself (a body or head too large, not HTTP/1.1), after
  /// its error answer: what was parsed of it is in `ex` (the path may be empty, the body is
  /// not there). Must not throw.
  virtual void rejected(Exchange&) {}
};

class Worker {
 public:
  Worker(unsigned index, const ServerOptions& opts, Handler& handler);
  ~Worker();

  [[nodiscard]] unsigned index() const noexcept { return index_; }
  [[nodiscard]] asio::io_context& io_context() noexcept { return ioc_; }
  [[nodiscard]] DeadlineTicker& ticker() noexcept { return ticker_; }
  [[nodiscard]] const ServerOptions& options() const noexcept { return opts_; }
  [[nodiscard]] Handler& handler() noexcept { return handler_; }
  [[nodiscard]] WorkerLocal* local() noexcept { return local_.get(); }
  [[nodiscard]] bool draining() const noexcept { return draining_; }
  [[nodiscard]] std::size_t connection_count() const noexcept { return conns_.size(); }

 private:
  friend class Server;
  friend class Connection;
  void bind(const tcp::endpoint& ep);
  void start();
  void begin_drain(Clock::time_point hard_deadline);  // on the worker thread
  void maybe_finish_drain();
  asio::awaitable<void> accept_loop();

  unsigned index_;
  const ServerOptions& opts_;
  Handler& handler_;
  /// One thread runs it. Socket I/O is only ever started on that thread, so the reactor's
  /// per-descriptor locks are not needed; posting from other threads stays safe.
  asio::io_context ioc_{BOOST_ASIO_CONCURRENCY_HINT_UNSAFE_IO};
  tcp::acceptor acceptor_{ioc_};
  DeadlineTicker ticker_{ioc_};
  std::unique_ptr<WorkerLocal> local_;
  std::unordered_set<Connection*> conns_;
  bool draining_ = false;
  std::unique_ptr<asio::steady_timer> drain_timer_;
  std::thread thread_;
};

class Server {
 public:
  Server(ServerOptions opts, Handler& handler);
  ~Server();
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  /// Binds every worker's acceptor (throws on failure) and starts the threads.
  void start();
  [[nodiscard]] std::uint16_t port() const noexcept { return port_; }
  /// Stops accepting; in-flight requests get `shutdown_grace` to finish. Thread-safe.
  void shutdown();
  /// Closes every connection at once (a second signal during shutdown). Thread-safe.
  void close_all_now();
  /// Waits for every worker thread to end.
  void join();
  [[nodiscard]] std::size_t worker_count() const noexcept { return workers_.size(); }

 private:
  ServerOptions opts_;
  Handler& handler_;
  std::vector<std::unique_ptr<Worker>> workers_;
  std::uint16_t port_ = 0;
  std::atomic<bool> shutting_down_{false};
};

}  // namespace llmgw::http
