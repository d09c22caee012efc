#pragma once
/// A Redis connection for one I/O thread: hiredis's asynchronous API driven by that thread's
/// io_context (the fd is watched with asio; no extra thread, no blocking call). Commands are
/// pipelined; each completes with the reply, or with nothing when Redis cannot be reached or
/// does not answer within the timeout — the caller applies its failure policy. Reconnects on
/// the next command after a back-off.

#include <boost/asio/awaitable.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/posix/stream_descriptor.hpp>

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

struct redisAsyncContext;
struct redisContext;

namespace llmgw::redis {

struct Reply {
  enum class Type : std::uint8_t { Nil, Integer, String, Status, Error, Array };
  Type type = Type::Nil;
  long long integer = 0;
  std::string str;  ///< String, Status and Error
  std::vector<Reply> elements;
  [[nodiscard]] bool is_error() const noexcept { return type == Type::Error; }
};

struct Options {
  std::string host = "127.0.0.1";
  std::uint16_t port = 6379;
  std::string password;  ///< empty: no AUTH
  int db = 0;
  std::chrono::milliseconds timeout{500};   ///< per command
  std::chrono::milliseconds backoff{250};   ///< before reconnecting after a failure

  /// "host:port" (REDIS_ADDRESS); false if malformed.
  static bool parse_address(std::string_view text, Options& out);
};

class Client {
 public:
  Client(boost::asio::io_context& ioc, Options opts);
  ~Client();
  Client(const Client&) = delete;
  Client& operator=(const Client&) = delete;

  /// Sends one command (each argument binary-safe). nullopt: Redis unreachable or too slow.
  boost::asio::awaitable<std::optional<Reply>> command(std::vector<std::string> args);
  /// EVALSHA of `script` (loaded on first use; reloaded after NOSCRIPT). Its SHA1 is computed
  /// once per script text. `script` is a constant of the program (static storage: it is read
  /// again after a suspension); keys and arguments are taken by value.
  boost::asio::awaitable<std::optional<Reply>> eval(const std::string& script,
                                                    std::vector<std::string> keys,
                                                    std::vector<std::string> argv);
  [[nodiscard]] bool connected() const noexcept { return ctx_ != nullptr && up_; }
  /// The thread's io_context (work done for a caller in the background runs there).
  [[nodiscard]] boost::asio::io_context& io_context() const noexcept { return ioc_; }
  /// Closes the connection (pending commands complete with nullopt).
  void close();

  struct Pending;

 private:
  struct Script {
    std::string text;
    std::string sha;
  };
  static constexpr std::size_t kMaxScripts = 32;

  const std::string& sha_of(const std::string& script);
  bool ensure_connected();
  void watch_read();
  void watch_write();
  static void on_connect(const redisAsyncContext* ac, int status);
  static void on_disconnect(const redisAsyncContext* ac, int status);
  static void hook_add_read(void* self);
  static void hook_del_read(void* self);
  static void hook_add_write(void* self);
  static void hook_del_write(void* self);
  static void hook_cleanup(void* self);

  boost::asio::io_context& ioc_;
  Options opts_;
  redisAsyncContext* ctx_ = nullptr;
  std::unique_ptr<boost::asio::posix::stream_descriptor> fd_;
  bool up_ = false;
  bool reading_ = false;
  bool read_armed_ = false;
  bool writing_ = false;
  bool write_armed_ = false;
  std::uint64_t generation_ = 0;  ///< bumped per connection: stale watchers do nothing
  std::chrono::steady_clock::time_point retry_at_{};
  std::vector<Script> scripts_;  ///< SHA1 of each script text used (a handful)
  /// Expires with the Client: descriptor waits still queued when it is destroyed run later
  /// (operation_aborted) and must touch nothing of it.
  std::shared_ptr<void> alive_ = std::make_shared<bool>(true);
};

/// A Redis connection for a background thread (the usage writer and the usage-queue worker),
/// on hiredis's blocking API: each command waits at most `timeout` for its reply. Never used
/// on an I/O thread. Connects on first use; after a failure it reconnects no sooner than
/// `backoff` later (commands in between fail at once), so an absent Redis costs a caller
/// one timeout per back-off, not one per command.
class BlockingClient {
 public:
  explicit BlockingClient(Options opts);
  ~BlockingClient();
  BlockingClient(const BlockingClient&) = delete;
  BlockingClient& operator=(const BlockingClient&) = delete;

  /// One command; nullopt when Redis cannot be reached or does not answer in time.
  std::optional<Reply> command(const std::vector<std::string>& args);
  /// EVALSHA of `script`, loaded with EVAL on NOSCRIPT.
  std::optional<Reply> eval(const std::string& script, const std::vector<std::string>& keys,
                            const std::vector<std::string>& argv);

 private:
  static constexpr std::size_t kMaxScripts = 32;
  bool ensure_connected();
  void drop();
  void fail();  ///< drop, and no new connection before the back-off

  Options opts_;
  redisContext* ctx_ = nullptr;
  std::chrono::steady_clock::time_point retry_at_{};
  std::vector<std::pair<std::string, std::string>> shas_;  ///< script text → SHA1
};

}  // namespace llmgw::redis
