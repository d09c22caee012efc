// The Redis client and the shared rate limiter against a real redis-server started by the
// fixture on a free 127.0.0.1 port: round trips, pipelining, scripts, error replies, a server
// that is absent, killed, restarted or stopped, AUTH and SELECT; the limiter's windows with an
// injected clock, checked decision by decision against the in-process LocalRateLimiter.

#include "limits/rate_limiter.hpp"
#include "limits/spend_ledger.hpp"
#include "redis/rate_limits.hpp"
#include "redis/redis_client.hpp"
#include "redis/spend_ledger.hpp"
#include "core/ids.hpp"
#include "redis_server.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>

#include <gtest/gtest.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <filesystem>
#include <fstream>
#include <memory>
#include <optional>
#include <random>
#include <set>
#include <span>
#include <sstream>
#include <string>
#include <thread>
#include <tuple>
#include <vector>

// Designated initialisers name the limits a test sets (`{.rpm = 10}`); the others are meant
// to be empty.
#pragma GCC diagnostic ignored "-Wmissing-field-initializers"

namespace llmgw::redis {
namespace {

namespace asio = boost::asio;
using namespace std::chrono_literals;
using test::free_port;
using test::RedisServer;
using test::kPollInterval;
using Clock = std::chrono::steady_clock;
using limits::RateDecision;
using limits::RateLimits;
using limits::RateTicket;
using limits::RateVerdict;

/// Ends the binary when an awaited operation never completes (a hang would stall the run).
constexpr auto kWatchdog = 60s;
constexpr auto kRecoveryDeadline = 15s;

// ---------------------------------------------------------------------------------------------
// Driving coroutines.

void drive(asio::io_context& ioc, const bool& done) {
  const auto deadline = Clock::now() + kWatchdog;
  while (!done) {
    if (Clock::now() > deadline) {
      std::fprintf(stderr, "redis_test: an awaited operation did not complete within 60 s\n");
      std::abort();
    }
    if (ioc.stopped()) {
      ioc.restart();
    }
    ioc.run_one_for(100ms);
  }
}

/// Runs `aw` on `ioc` to completion and returns its value (the client's connection keeps the
/// io_context busy, so run() would never return: run handlers until this one is done).
template <class T>
T run(asio::io_context& ioc, asio::awaitable<T> aw) {
  bool done = false;
  std::exception_ptr error;
  T result{};
  asio::co_spawn(ioc, std::move(aw), [&](std::exception_ptr e, T value) {
    error = e;
    result = std::move(value);
    done = true;
  });
  drive(ioc, done);
  if (error) {
    std::rethrow_exception(error);
  }
  return result;
}

void run(asio::io_context& ioc, asio::awaitable<void> aw) {
  bool done = false;
  std::exception_ptr error;
  asio::co_spawn(ioc, std::move(aw), [&](std::exception_ptr e) {
    error = e;
    done = true;
  });
  drive(ioc, done);
  if (error) {
    std::rethrow_exception(error);
  }
}

/// Runs all of `tasks` concurrently on `ioc` until every one has completed.
void run_all(asio::io_context& ioc, std::vector<asio::awaitable<void>> tasks) {
  std::size_t finished = 0;
  std::exception_ptr error;
  for (auto& t : tasks) {
    asio::co_spawn(ioc, std::move(t), [&](std::exception_ptr e) {
      if (e) {
        error = e;
      }
      ++finished;
    });
  }
  bool done = tasks.empty();
  const auto deadline = Clock::now() + kWatchdog;
  while (!done) {
    ASSERT_LT(Clock::now(), deadline) << "tasks did not complete";
    if (ioc.stopped()) {
      ioc.restart();
    }
    ioc.run_one_for(100ms);
    done = finished == tasks.size();
  }
  if (error) {
    std::rethrow_exception(error);
  }
}

asio::awaitable<void> sleep_for(std::chrono::milliseconds d) {
  asio::steady_timer timer(co_await asio::this_coro::executor, d);
  boost::system::error_code ec;
  co_await timer.async_wait(asio::redirect_error(asio::use_awaitable, ec));
}

struct Timed {
  std::optional<Reply> reply;
  Clock::duration took{};
};

asio::awaitable<Timed> timed_command(Client* client, std::vector<std::string> args) {
  const auto start = Clock::now();
  Timed out;
  out.reply = co_await client->command(std::move(args));
  out.took = Clock::now() - start;
  co_return out;
}

asio::awaitable<void> timed_command_into(Client* client, std::vector<std::string> args,
                                         Timed* out) {
  *out = co_await timed_command(client, std::move(args));
}

asio::awaitable<void> incr_into(Client* client, std::string key, std::optional<Reply>* out) {
  std::vector<std::string> args;
  args.emplace_back("INCR");
  args.push_back(std::move(key));
  *out = co_await client->command(std::move(args));
}

/// The value of `field:` in an INFO answer; -1 if absent.
long long info_field(const std::string& info, const std::string& field) {
  const auto at = info.find(field + ":");
  if (at == std::string::npos) {
    return -1;
  }
  return std::atoll(info.c_str() + at + field.size() + 1);
}

/// `calls=` of `cmdstat_<command>` in INFO commandstats; 0 if never called.
long long command_calls(const std::string& info, const std::string& command) {
  const std::string tag = "cmdstat_" + command + ":calls=";
  const auto at = info.find(tag);
  return at == std::string::npos ? 0 : std::atoll(info.c_str() + at + tag.size());
}

/// Waits until the server reports a client blocked in a command, then kills it.
asio::awaitable<void> kill_when_blocked(Client* watcher, RedisServer* server) {
  for (int i = 0; i < 500; ++i) {
    std::vector<std::string> args;
    args.emplace_back("INFO");
    args.emplace_back("clients");
    const auto info = co_await watcher->command(std::move(args));
    if (info && info_field(info->str, "blocked_clients") == 1) {
      break;
    }
    co_await sleep_for(kPollInterval);
  }
  server->kill();
}

/// A "server" that answers whatever it is sent with bytes that are not RESP, then waits for
/// the client to hang up.
asio::awaitable<void> answer_garbage(asio::ip::tcp::acceptor* acceptor) {
  auto [accept_ec, peer] = co_await acceptor->async_accept(asio::as_tuple(asio::use_awaitable));
  if (accept_ec) {
    co_return;
  }
  char buf[256];
  auto [read_ec, n] =
      co_await peer.async_read_some(asio::buffer(buf), asio::as_tuple(asio::use_awaitable));
  if (read_ec) {
    co_return;
  }
  static constexpr char kGarbage[] = "!this is not RESP\r\n";
  co_await asio::async_write(peer, asio::buffer(kGarbage, sizeof kGarbage - 1),
                             asio::as_tuple(asio::use_awaitable));
  while (!read_ec) {
    std::tie(read_ec, n) =
        co_await peer.async_read_some(asio::buffer(buf), asio::as_tuple(asio::use_awaitable));
  }
}

std::string show(const std::optional<Reply>& r) {
  if (!r) {
    return "(nothing)";
  }
  switch (r->type) {
    case Reply::Type::Nil:
      return "(nil)";
    case Reply::Type::Integer:
      return "(integer) " + std::to_string(r->integer);
    case Reply::Type::String:
      return "\"" + r->str + "\"";
    case Reply::Type::Status:
      return "+" + r->str;
    case Reply::Type::Error:
      return "-" + r->str;
    case Reply::Type::Array: {
      std::string out = "[";
      for (const auto& e : r->elements) {
        out += show(e) + ",";
      }
      return out + "]";
    }
  }
  return "?";
}

std::string random_suffix() {
  static std::mt19937_64 rng(std::random_device{}());
  char buf[17];
  std::snprintf(buf, sizeof buf, "%016llx", static_cast<unsigned long long>(rng()));
  return buf;
}

// ---------------------------------------------------------------------------------------------
// The client.

class RedisClient : public ::testing::Test {
 protected:
  void SetUp() override {
    const std::string error = server_.start();
    ASSERT_TRUE(error.empty()) << "cannot start the test Redis: " << error;
  }

  [[nodiscard]] Options options() const {
    Options o;
    o.port = server_.port();
    return o;
  }
  std::optional<Reply> cmd(Client& c, std::vector<std::string> args) {
    return run(ioc_, c.command(std::move(args)));
  }
  Timed timed(Client& c, std::vector<std::string> args) {
    return run(ioc_, timed_command(&c, std::move(args)));
  }
  /// Retries `args` until it is answered; the time from `since` until then, or nullopt.
  std::optional<Clock::duration> until_answered(Client& c, const std::vector<std::string>& args,
                                                Clock::time_point since) {
    const auto deadline = Clock::now() + kRecoveryDeadline;
    while (Clock::now() < deadline) {
      const auto r = cmd(c, args);
      if (r && !r->is_error()) {
        return Clock::now() - since;
      }
      std::this_thread::sleep_for(kPollInterval);
    }
    return std::nullopt;
  }

  RedisServer server_;
  asio::io_context ioc_;
};

TEST_F(RedisClient, RoundTripIsBinarySafe) {
  Client c(ioc_, options());
  const std::string value("a\0b\r\n$3\r\n\xff\x00z", 12);
  ASSERT_EQ(value.size(), 12u);
  const std::string key("k\0ey", 4);
  auto r = cmd(c, {"SET", key, value});
  ASSERT_TRUE(r) << "no answer";
  EXPECT_EQ(r->type, Reply::Type::Status);
  EXPECT_EQ(r->str, "OK");
  EXPECT_TRUE(c.connected());
  r = cmd(c, {"GET", key});
  ASSERT_TRUE(r);
  EXPECT_EQ(r->type, Reply::Type::String);
  EXPECT_EQ(r->str, value);
  r = cmd(c, {"GET", "k"});  // the key is not cut at its NUL
  ASSERT_TRUE(r);
  EXPECT_EQ(r->type, Reply::Type::Nil);
  r = cmd(c, {"STRLEN", key});
  ASSERT_TRUE(r);
  EXPECT_EQ(r->integer, 12);
  r = cmd(c, {"SET", "empty", ""});
  ASSERT_TRUE(r);
  r = cmd(c, {"GET", "empty"});
  ASSERT_TRUE(r);
  EXPECT_EQ(r->type, Reply::Type::String);
  EXPECT_EQ(r->str, "");
}

TEST_F(RedisClient, LargeValuesCrossManyReadsAndWrites) {
  Client c(ioc_, options());
  std::string big(4 << 20, '\0');
  for (std::size_t i = 0; i < big.size(); ++i) {
    big[i] = static_cast<char>(i * 7 + i / 251);
  }
  ASSERT_TRUE(cmd(c, {"SET", "big", big}));
  const auto r = cmd(c, {"GET", "big"});
  ASSERT_TRUE(r);
  EXPECT_TRUE(r->str == big) << "got " << r->str.size() << " bytes";
}

TEST_F(RedisClient, PipelinesConcurrentCommandsOnOneConnection) {
  Client c(ioc_, options());
  constexpr int kCommands = 1000;
  std::vector<std::optional<Reply>> replies(kCommands);
  std::vector<asio::awaitable<void>> tasks;
  for (int i = 0; i < kCommands; ++i) {
    tasks.push_back(incr_into(&c, "counter", &replies[i]));
  }
  run_all(ioc_, std::move(tasks));
  std::set<long long> seen;
  for (const auto& r : replies) {
    ASSERT_TRUE(r) << "an INCR got no answer";
    ASSERT_EQ(r->type, Reply::Type::Integer) << show(r);
    seen.insert(r->integer);
  }
  EXPECT_EQ(seen.size(), static_cast<std::size_t>(kCommands));
  EXPECT_EQ(*seen.begin(), 1);
  EXPECT_EQ(*seen.rbegin(), kCommands);
  const auto total = cmd(c, {"GET", "counter"});
  ASSERT_TRUE(total);
  EXPECT_EQ(total->str, "1000");
  const auto info = cmd(c, {"INFO", "clients"});
  ASSERT_TRUE(info);
  EXPECT_EQ(info_field(info->str, "connected_clients"), 1) << "all on one connection";
}

TEST_F(RedisClient, EvalLoadsAScriptOnceThenRunsItBySha) {
  Client c(ioc_, options());
  const std::string echo = "return {KEYS[1], ARGV[1], 7}";
  const std::string sum = "return tonumber(ARGV[1]) + tonumber(ARGV[2])";
  const std::vector<std::string> keys{"k"};
  const std::vector<std::string> no_keys;
  const std::vector<std::string> argv{std::string("a\0b", 3)};
  const std::vector<std::string> two{"2", "40"};
  auto stats = [&] {
    const auto info = cmd(c, {"INFO", "commandstats"});
    EXPECT_TRUE(info);
    return std::pair{command_calls(info ? info->str : "", "evalsha"),
                     command_calls(info ? info->str : "", "eval")};
  };

  auto r = run(ioc_, c.eval(echo, keys, argv));  // fresh server: EVALSHA, NOSCRIPT, EVAL
  ASSERT_TRUE(r);
  ASSERT_EQ(r->type, Reply::Type::Array) << show(r);
  ASSERT_EQ(r->elements.size(), 3u);
  EXPECT_EQ(r->elements[0].str, "k");
  EXPECT_EQ(r->elements[1].str, argv[0]);
  EXPECT_EQ(r->elements[2].integer, 7);
  EXPECT_EQ(stats(), std::pair(1LL, 1LL));

  r = run(ioc_, c.eval(echo, keys, argv));  // cached on the server: EVALSHA only
  ASSERT_TRUE(r);
  EXPECT_EQ(r->type, Reply::Type::Array);
  EXPECT_EQ(stats(), std::pair(2LL, 1LL));

  r = run(ioc_, c.eval(sum, no_keys, two));  // a second script, alternating with the first
  ASSERT_TRUE(r);
  EXPECT_EQ(r->integer, 42);
  EXPECT_EQ(stats(), std::pair(3LL, 2LL));
  r = run(ioc_, c.eval(echo, keys, argv));
  ASSERT_TRUE(r);
  EXPECT_EQ(r->elements.size(), 3u);
  r = run(ioc_, c.eval(sum, no_keys, two));
  ASSERT_TRUE(r);
  EXPECT_EQ(r->integer, 42);
  EXPECT_EQ(stats(), std::pair(5LL, 2LL));

  ASSERT_TRUE(cmd(c, {"SCRIPT", "FLUSH"}));  // as after a Redis restart: loaded again
  r = run(ioc_, c.eval(echo, keys, argv));
  ASSERT_TRUE(r);
  EXPECT_EQ(r->type, Reply::Type::Array);
  EXPECT_EQ(stats(), std::pair(6LL, 3LL));
}

TEST_F(RedisClient, AnErrorReplyIsAReplyAndTheConnectionStaysUsable) {
  Client c(ioc_, options());
  ASSERT_TRUE(cmd(c, {"SET", "s", "text"}));
  auto r = cmd(c, {"LPUSH", "s", "x"});
  ASSERT_TRUE(r) << "an error reply is an answer, not an outage";
  EXPECT_EQ(r->type, Reply::Type::Error);
  EXPECT_TRUE(r->is_error());
  EXPECT_TRUE(r->str.starts_with("WRONGTYPE")) << r->str;
  r = cmd(c, {"NOSUCHCOMMAND"});
  ASSERT_TRUE(r);
  EXPECT_TRUE(r->is_error());
  const std::vector<std::string> keys{"s"};
  const std::vector<std::string> none;
  r = run(ioc_, c.eval("return redis.call('INCR', KEYS[1])", keys, none));
  ASSERT_TRUE(r);
  EXPECT_TRUE(r->is_error()) << show(r);
  r = cmd(c, {"GET", "s"});
  ASSERT_TRUE(r);
  EXPECT_EQ(r->str, "text");
  EXPECT_TRUE(c.connected());
}

TEST_F(RedisClient, NoServerGivesNothingQuickly) {
  Options o;
  o.port = free_port();
  o.timeout = 2s;
  o.backoff = 1s;
  Client c(ioc_, o);
  for (int i = 0; i < 3; ++i) {  // a connect attempt, then refusals during the back-off
    const auto t = timed(c, {"PING"});
    EXPECT_FALSE(t.reply) << show(t.reply);
    EXPECT_LT(t.took, o.timeout + 1s);
  }
  EXPECT_FALSE(c.connected());
}

TEST_F(RedisClient, KilledServerFailsInFlightAndLaterCommands) {
  Options o = options();
  o.timeout = 10s;  // far longer than the test: the in-flight command must fail on the drop
  Client c(ioc_, o);
  Client watcher(ioc_, options());
  ASSERT_TRUE(cmd(c, {"PING"}));
  Timed blocked;
  std::vector<asio::awaitable<void>> tasks;
  tasks.push_back(timed_command_into(&c, {"BLPOP", "nothing", "0"}, &blocked));
  tasks.push_back(kill_when_blocked(&watcher, &server_));
  run_all(ioc_, std::move(tasks));
  EXPECT_FALSE(blocked.reply) << show(blocked.reply);
  EXPECT_LT(blocked.took, o.timeout - 2s) << "failed on the disconnect, not on its timeout";
  const auto next = timed(c, {"PING"});
  EXPECT_FALSE(next.reply) << show(next.reply);
  EXPECT_LT(next.took, 2s);
  EXPECT_FALSE(c.connected());
}

TEST_F(RedisClient, RestartedServerIsUsedAgainAfterTheBackoff) {
  Options o = options();
  o.timeout = 1s;
  o.backoff = 3s;
  Client c(ioc_, o);
  ASSERT_TRUE(cmd(c, {"SET", "before", "1"}));
  const auto killed_at = Clock::now();
  server_.kill();
  EXPECT_FALSE(cmd(c, {"PING"})) << "the dead connection";
  const std::string error = server_.start();
  ASSERT_TRUE(error.empty()) << "cannot restart the test Redis: " << error;
  if (Clock::now() - killed_at < o.backoff - 1s) {
    EXPECT_FALSE(cmd(c, {"PING"})) << "within the back-off nothing is tried";
  }
  const auto recovered = until_answered(c, {"SET", "after", "1"}, killed_at);
  ASSERT_TRUE(recovered) << "no answer within 15 s of a restart";
  EXPECT_GE(*recovered, o.backoff);
  EXPECT_TRUE(c.connected());
  const auto r = cmd(c, {"GET", "after"});
  ASSERT_TRUE(r);
  EXPECT_EQ(r->str, "1");
}

TEST_F(RedisClient, StoppedServerTimesOutAndRecoversWhenContinued) {
  Options o = options();
  o.timeout = 200ms;
  o.backoff = 100ms;
  Client c(ioc_, o);
  ASSERT_TRUE(cmd(c, {"PING"}));
  server_.pause();
  Timed first;
  Timed second;
  std::vector<asio::awaitable<void>> tasks;
  tasks.push_back(timed_command_into(&c, {"INCR", "n"}, &first));
  tasks.push_back(timed_command_into(&c, {"GET", "n"}, &second));
  run_all(ioc_, std::move(tasks));
  for (const Timed* t : {&first, &second}) {
    EXPECT_FALSE(t->reply) << show(t->reply);
    EXPECT_GE(t->took, o.timeout);
    EXPECT_LT(t->took, o.timeout + 2s);
  }
  EXPECT_FALSE(c.connected());
  const auto again = timed(c, {"PING"});  // refused during the back-off, or times out again
  EXPECT_FALSE(again.reply);
  EXPECT_LT(again.took, o.timeout + 2s);
  server_.resume();
  const auto since = Clock::now();
  const auto recovered = until_answered(c, {"PING"}, since);
  ASSERT_TRUE(recovered) << "no answer within 15 s of SIGCONT";
  EXPECT_LT(*recovered, 5s);
  EXPECT_TRUE(c.connected());
}

TEST_F(RedisClient, AuthenticatesAndSelectsTheDatabase) {
  RedisServer secured("s3cret pass");
  const std::string error = secured.start();
  ASSERT_TRUE(error.empty()) << "cannot start the test Redis: " << error;
  auto opts = [&](std::string password, int db) {
    Options o;
    o.port = secured.port();
    o.password = std::move(password);
    o.db = db;
    return o;
  };
  Client db3(ioc_, opts("s3cret pass", 3));
  Client db0(ioc_, opts("s3cret pass", 0));
  Client other_db3(ioc_, opts("s3cret pass", 3));
  Client anonymous(ioc_, opts("", 3));
  Client wrong(ioc_, opts("guess", 3));

  auto r = cmd(db3, {"SET", "k", "v"});
  ASSERT_TRUE(r);
  EXPECT_EQ(show(r), "+OK");
  r = cmd(db0, {"GET", "k"});
  ASSERT_TRUE(r);
  EXPECT_EQ(r->type, Reply::Type::Nil) << "db 0 does not see db 3's keys";
  r = cmd(other_db3, {"GET", "k"});
  ASSERT_TRUE(r);
  EXPECT_EQ(r->str, "v");
  r = cmd(db0, {"INFO", "keyspace"});
  ASSERT_TRUE(r);
  EXPECT_NE(r->str.find("db3:keys=1"), std::string::npos) << r->str;
  EXPECT_EQ(r->str.find("db0:"), std::string::npos) << r->str;

  r = cmd(anonymous, {"GET", "k"});
  ASSERT_TRUE(r);
  EXPECT_TRUE(r->is_error());
  EXPECT_TRUE(r->str.starts_with("NOAUTH")) << r->str;
  r = cmd(wrong, {"GET", "k"});
  ASSERT_TRUE(r);
  EXPECT_TRUE(r->is_error()) << show(r);
}

TEST_F(RedisClient, AReconnectAuthenticatesAndSelectsAgain) {
  RedisServer secured("pw");
  std::string error = secured.start();
  ASSERT_TRUE(error.empty()) << "cannot start the test Redis: " << error;
  Options o;
  o.port = secured.port();
  o.password = "pw";
  o.db = 2;
  o.backoff = 100ms;
  Client c(ioc_, o);
  ASSERT_EQ(show(cmd(c, {"SET", "before", "1"})), "+OK");
  const auto killed_at = Clock::now();
  secured.kill();
  EXPECT_FALSE(cmd(c, {"PING"}));
  error = secured.start();
  ASSERT_TRUE(error.empty()) << "cannot restart the test Redis: " << error;
  ASSERT_TRUE(until_answered(c, {"SET", "after", "1"}, killed_at));
  Options db0 = o;
  db0.db = 0;
  Client check(ioc_, db0);
  EXPECT_EQ(show(cmd(check, {"GET", "after"})), "(nil)");
  EXPECT_EQ(show(cmd(check, {"SELECT", "2"})), "+OK");
  EXPECT_EQ(show(cmd(check, {"GET", "after"})), "\"1\"");
}

TEST_F(RedisClient, AConnectThatNeverCompletesTimesOut) {
  // A listener whose accept queue is full: the kernel drops further SYNs, so a connect stays
  // in progress (as to a host that does not answer).
  const int listener = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  ASSERT_GE(listener, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof addr;
  ASSERT_EQ(::bind(listener, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
  ASSERT_EQ(::getsockname(listener, reinterpret_cast<sockaddr*>(&addr), &len), 0);
  ASSERT_EQ(::listen(listener, 0), 0);
  std::vector<int> fillers;
  for (int i = 0; i < 3; ++i) {
    const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    ::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr);
    fillers.push_back(fd);
  }
  std::this_thread::sleep_for(100ms);  // let the handshakes that can complete complete
  Options o;
  o.port = ntohs(addr.sin_port);
  o.timeout = 300ms;
  o.backoff = 100ms;
  Client c(ioc_, o);
  for (int i = 0; i < 2; ++i) {
    const auto t = timed(c, {"PING"});
    EXPECT_FALSE(t.reply) << show(t.reply);
    EXPECT_GE(t.took, o.timeout) << "the connect was not left in progress";
    EXPECT_LT(t.took, o.timeout + 2s);
    EXPECT_FALSE(c.connected());
    std::this_thread::sleep_for(o.backoff + 50ms);
  }
  for (const int fd : fillers) {
    ::close(fd);
  }
  ::close(listener);
}

TEST_F(RedisClient, AnAnswerThatIsNotRespDropsTheConnection) {
  asio::ip::tcp::acceptor acceptor(ioc_, {asio::ip::make_address("127.0.0.1"), 0});
  Options o;
  o.port = acceptor.local_endpoint().port();
  o.timeout = 5s;
  Client c(ioc_, o);
  Timed t;
  std::vector<asio::awaitable<void>> tasks;
  tasks.push_back(answer_garbage(&acceptor));
  tasks.push_back(timed_command_into(&c, {"PING"}, &t));
  run_all(ioc_, std::move(tasks));
  EXPECT_FALSE(t.reply) << show(t.reply);
  EXPECT_LT(t.took, o.timeout - 2s) << "failed on the protocol error, not on its timeout";
  EXPECT_FALSE(c.connected());
}

TEST_F(RedisClient, DestroyedClientLeavesNothingThatTouchesIt) {
  auto c = std::make_unique<Client>(ioc_, options());
  ASSERT_TRUE(cmd(*c, {"PING"}));
  c.reset();  // its descriptor's waits are cancelled; their handlers run after it is gone
  ioc_.restart();
  ioc_.poll();  // under ASan, a handler touching the destroyed client fails here
  // Its connection is closed: the server sees only the one that asks.
  Client other(ioc_, options());
  long long clients = -1;
  for (int i = 0; i < 100 && clients != 1; ++i) {
    const auto r = cmd(other, {"INFO", "clients"});
    ASSERT_TRUE(r && r->type == Reply::Type::String);
    const auto at = r->str.find("connected_clients:");
    ASSERT_NE(at, std::string::npos) << r->str;
    clients = std::stoll(r->str.substr(at + 18));
  }
  EXPECT_EQ(clients, 1);
}

TEST(RedisOptions, ParsesHostAndPort) {
  Options o;
  ASSERT_TRUE(Options::parse_address("redis.internal:6380", o));
  EXPECT_EQ(o.host, "redis.internal");
  EXPECT_EQ(o.port, 6380);
  ASSERT_TRUE(Options::parse_address("[::1]:7000", o));
  EXPECT_EQ(o.host, "::1");
  EXPECT_EQ(o.port, 7000);
  for (const char* bad : {"redis", ":6379", "h:", "h:0", "h:65536", "h:12x", "[]:1"}) {
    EXPECT_FALSE(Options::parse_address(bad, o)) << bad;
  }
}

// ---------------------------------------------------------------------------------------------
// The shared rate limiter. One server for the suite; each test uses its own gateway key ids.

constexpr std::int64_t kT0 = 1'700'000'000'000;  // epoch milliseconds: the scale of Redis TIME
constexpr std::int64_t kWindow = limits::LocalRateLimiter::kWindowMs;

std::string describe(const RateDecision& d) {
  static constexpr const char* kVerdicts[] = {"Ok", "Requests", "Tokens", "Concurrency",
                                              "TooLarge"};
  const auto v = static_cast<std::size_t>(d.verdict);
  std::string out = v < std::size(kVerdicts) ? kVerdicts[v] : "verdict#" + std::to_string(v);
  out += " retry=" + std::to_string(d.retry_after_ms);
  auto window = [&](const char* name, const std::optional<limits::WindowState>& w) {
    if (w) {
      out += std::string(" ") + name + "=" + std::to_string(w->remaining) + "/" +
             std::to_string(w->limit) + " reset=" + std::to_string(w->reset_ms);
    }
  };
  window("requests", d.requests);
  window("tokens", d.tokens);
  return out;
}

asio::awaitable<void> acquire_into(RedisRateLimiter* rl, std::string key, RateLimits l,
                                   std::int64_t est, std::string call_id, std::int64_t now,
                                   RedisRateResult* result, RateTicket* ticket) {
  *result = co_await rl->acquire(key, l, est, call_id, *ticket, now);
}

/// A call held by both limiters.
struct Twin {
  RateTicket redis;
  RateTicket local;
};

class RedisRateLimiterTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    server_ = new RedisServer();
    start_error_ = server_->start();
  }
  static void TearDownTestSuite() {
    delete server_;
    server_ = nullptr;
  }
  void SetUp() override {
    ASSERT_TRUE(start_error_.empty()) << "cannot start the test Redis: " << start_error_;
  }

  static Options options() {
    Options o;
    o.port = server_->port();
    return o;
  }
  std::string next_call_id() { return "req-" + suffix_ + "-" + std::to_string(++calls_); }

  RedisRateResult take_redis(RedisRateLimiter& rl, const std::string& key, const RateLimits& l,
                             std::int64_t est, std::int64_t at, RateTicket* t = nullptr) {
    RateTicket local_ticket;
    const std::string id = next_call_id();
    return run(ioc_, rl.acquire(key, l, est, id, t != nullptr ? *t : local_ticket, at));
  }
  RateDecision take(const RateLimits& l, std::int64_t est, std::int64_t at,
                    RateTicket* t = nullptr) {
    const auto r = take_redis(rl_, key_, l, est, at, t);
    EXPECT_FALSE(r.unavailable);
    return r.decision;
  }
  /// The same call on both limiters: their decisions must be the same.
  RateDecision both(const RateLimits& l, std::int64_t est, std::int64_t at, Twin* t = nullptr,
                    const std::string* key = nullptr) {
    Twin scratch;
    Twin& twin = t != nullptr ? *t : scratch;
    const std::string& k = key != nullptr ? *key : key_;
    const auto r = take_redis(rl_, k, l, est, at, &twin.redis);
    EXPECT_FALSE(r.unavailable);
    const auto d = local_.acquire(k, l, est, at, twin.local);
    EXPECT_EQ(describe(r.decision), describe(d)) << "redis vs local at T0+" << at - kT0;
    EXPECT_EQ(twin.redis.active, twin.local.active);
    return r.decision;
  }
  void finish_both(Twin& t, std::int64_t actual, std::int64_t at) {
    run(ioc_, rl_.finish(t.redis, actual));
    local_.reconcile(t.local, actual, at);
    local_.release(t.local);
  }
  std::optional<Reply> cmd(std::vector<std::string> args) {
    return run(ioc_, client_.command(std::move(args)));
  }

  static RedisServer* server_;
  static std::string start_error_;
  std::string suffix_ = random_suffix();
  std::string key_ = "key_" + suffix_;
  int calls_ = 0;
  asio::io_context ioc_;
  Client client_{ioc_, options()};
  RedisRateLimiter rl_{client_};
  limits::LocalRateLimiter local_;
};

RedisServer* RedisRateLimiterTest::server_ = nullptr;
std::string RedisRateLimiterTest::start_error_;

TEST_F(RedisRateLimiterTest, ExactlyTheLimitPassesInAMinuteAndNoMore) {
  const RateLimits l{.rpm = 100};
  int accepted = 0;
  for (int i = 0; i < 300; ++i) {
    accepted += both(l, 0, kT0 + i * 10).verdict == RateVerdict::Ok;  // 300 calls within 3 s
  }
  EXPECT_EQ(accepted, 100);
}

TEST_F(RedisRateLimiterTest, NoDoubleBurstAcrossAWindowEdge) {
  const RateLimits l{.rpm = 10};
  for (int i = 0; i < 10; ++i) {
    ASSERT_EQ(both(l, 0, kT0 + 59'000).verdict, RateVerdict::Ok);
  }
  const auto d = both(l, 0, kT0 + 60'500);
  EXPECT_EQ(d.verdict, RateVerdict::Requests);
  EXPECT_EQ(d.retry_after_ms, 58'500);
  ASSERT_TRUE(d.requests);
  EXPECT_EQ(d.requests->remaining, 0);
  EXPECT_EQ(d.requests->reset_ms, 58'500);
  EXPECT_EQ(both(l, 0, kT0 + 118'999).verdict, RateVerdict::Requests);
  EXPECT_EQ(both(l, 0, kT0 + 119'000).verdict, RateVerdict::Ok);
}

TEST_F(RedisRateLimiterTest, RetryAfterIsWhenEnoughTokensHaveAgedOut) {
  const RateLimits l{.tpm = 1000};
  ASSERT_EQ(both(l, 400, kT0).verdict, RateVerdict::Ok);
  ASSERT_EQ(both(l, 400, kT0 + 10'000).verdict, RateVerdict::Ok);
  // 700 more needs the first 400 (at T0) and the second (at T0+10 s) gone: 70 s after T0.
  const auto d = both(l, 700, kT0 + 20'000);
  EXPECT_EQ(d.verdict, RateVerdict::Tokens);
  EXPECT_EQ(d.retry_after_ms, 50'000);
  ASSERT_TRUE(d.tokens);
  EXPECT_EQ(d.tokens->remaining, 200);
  // 300 more needs only the first to go.
  EXPECT_EQ(both(l, 300, kT0 + 20'001).retry_after_ms, 39'999);
  EXPECT_EQ(both(l, 700, kT0 + 69'999).verdict, RateVerdict::Tokens);
  EXPECT_EQ(both(l, 700, kT0 + 70'000).verdict, RateVerdict::Ok);
}

TEST_F(RedisRateLimiterTest, AllOrNothing) {
  const RateLimits l{.rpm = 10, .tpm = 100, .max_concurrent = 5};
  ASSERT_EQ(both(l, 90, kT0).verdict, RateVerdict::Ok);
  // The request and concurrency limits have room, the token limit does not: nothing is taken.
  EXPECT_EQ(both(l, 20, kT0 + 1).verdict, RateVerdict::Tokens);
  const auto d = both(l, 10, kT0 + 2);
  EXPECT_EQ(d.verdict, RateVerdict::Ok);
  EXPECT_EQ(d.requests->remaining, 8) << "the refused call took no request";
  EXPECT_EQ(d.tokens->remaining, 0);
  const auto inflight = cmd({"ZCARD", "llmgw:rl:{" + key_ + "}:inflight"});
  ASSERT_TRUE(inflight);
  EXPECT_EQ(inflight->integer, 2) << "the refused call took no slot";
}

TEST_F(RedisRateLimiterTest, AnEstimateAboveTheLimitIsTooLargeAndTakesNothing) {
  const RateLimits l{.rpm = 5, .tpm = 100};
  const auto d = both(l, 101, kT0);
  EXPECT_EQ(d.verdict, RateVerdict::TooLarge);
  EXPECT_EQ(both(l, 100, kT0 + 1).requests->remaining, 4);
}

TEST_F(RedisRateLimiterTest, FinishReconcilesTokensAndFreesTheSlot) {
  const RateLimits l{.tpm = 1000, .max_concurrent = 1};
  Twin a;
  ASSERT_EQ(both(l, 900, kT0, &a).verdict, RateVerdict::Ok);
  EXPECT_EQ(both(l, 50, kT0 + 1).verdict, RateVerdict::Concurrency);
  EXPECT_EQ(both(l, 200, kT0 + 1).verdict, RateVerdict::Tokens);
  finish_both(a, 300, kT0 + 2);  // used less than feared; its slot is free
  EXPECT_FALSE(a.redis.active);
  Twin c;
  const auto d = both(l, 200, kT0 + 3, &c);
  ASSERT_EQ(d.verdict, RateVerdict::Ok);
  EXPECT_EQ(d.tokens->remaining, 500);
  finish_both(c, 2000, kT0 + 5);  // more than estimated: counted, later calls wait
  const auto refused = both(l, 1, kT0 + 6);
  EXPECT_EQ(refused.verdict, RateVerdict::Tokens);
  EXPECT_EQ(refused.retry_after_ms, kWindow - 3) << "once the over-run (at T0+3) ages out";
  EXPECT_EQ(refused.tokens->remaining, 0);
  finish_both(c, 10, kT0 + 7);  // a second finish does nothing
  EXPECT_EQ(both(l, 1, kT0 + 8).verdict, RateVerdict::Tokens);
  EXPECT_EQ(both(l, 1, kT0 + 3 + kWindow).verdict, RateVerdict::Ok);
}

TEST_F(RedisRateLimiterTest, ConcurrencySlotsExpireAfterTheSlotTtlWhenNeverFinished) {
  RedisRateLimiter rl(client_, 5s);
  const RateLimits l{.max_concurrent = 1};
  RateTicket crashed;  // a replica that died mid-call: never finished
  ASSERT_EQ(take_redis(rl, key_, l, 0, kT0, &crashed).decision.verdict, RateVerdict::Ok);
  EXPECT_EQ(take_redis(rl, key_, l, 0, kT0 + 4'999).decision.verdict, RateVerdict::Concurrency);
  RateTicket next;
  EXPECT_EQ(take_redis(rl, key_, l, 0, kT0 + 5'000, &next).decision.verdict, RateVerdict::Ok);
  // A late finish of the expired call frees its own slot only, not the next call's.
  run(ioc_, rl.finish(crashed, 0));
  EXPECT_EQ(take_redis(rl, key_, l, 0, kT0 + 5'001).decision.verdict, RateVerdict::Concurrency);
  run(ioc_, rl.finish(next, 0));
  EXPECT_EQ(take_redis(rl, key_, l, 0, kT0 + 5'002).decision.verdict, RateVerdict::Ok);
}

TEST_F(RedisRateLimiterTest, TwoReplicasShareOneWindowExactly) {
  Client other_client(ioc_, options());
  RedisRateLimiter other(other_client);
  const RateLimits l{.rpm = 10, .tpm = 5000};
  int accepted = 0;
  for (int i = 0; i < 30; ++i) {
    RedisRateLimiter& replica = i % 2 == 0 ? rl_ : other;
    RateTicket local_ticket;
    const std::int64_t at = kT0 + i * 100;
    const auto r = take_redis(replica, key_, l, 100, at);
    const auto d = local_.acquire(key_, l, 100, at, local_ticket);
    EXPECT_EQ(describe(r.decision), describe(d)) << "call " << i;
    accepted += r.decision.verdict == RateVerdict::Ok;
  }
  EXPECT_EQ(accepted, 10);

  // Concurrently, on both connections at once: still exactly the limit.
  const RateLimits burst{.rpm = 50, .max_concurrent = 60};
  const std::string burst_key = key_ + "_burst";
  constexpr int kCalls = 200;
  std::vector<RedisRateResult> results(kCalls);
  std::vector<RateTicket> tickets(kCalls);
  std::vector<asio::awaitable<void>> tasks;
  for (int i = 0; i < kCalls; ++i) {
    tasks.push_back(acquire_into(i % 2 == 0 ? &rl_ : &other, burst_key, burst, 1, next_call_id(),
                                 kT0, &results[i], &tickets[i]));
  }
  run_all(ioc_, std::move(tasks));
  int ok = 0;
  for (const auto& r : results) {
    EXPECT_FALSE(r.unavailable);
    ok += r.decision.verdict == RateVerdict::Ok;
  }
  EXPECT_EQ(ok, 50);
  const auto inflight = cmd({"ZCARD", "llmgw:rl:{" + burst_key + "}:inflight"});
  ASSERT_TRUE(inflight);
  EXPECT_EQ(inflight->integer, 50);
}

TEST_F(RedisRateLimiterTest, AClockSteppingBackFreesNothingEarly) {
  const RateLimits l{.rpm = 2};
  auto verdicts = [&](std::int64_t at) {  // Retry-After differs after a step back: see below
    RateTicket local_ticket;
    const auto d = take(l, 0, at);
    EXPECT_EQ(d.verdict, local_.acquire(key_, l, 0, at, local_ticket).verdict) << at - kT0;
    return d;
  };
  ASSERT_EQ(verdicts(kT0).verdict, RateVerdict::Ok);
  ASSERT_EQ(verdicts(kT0).verdict, RateVerdict::Ok);
  const auto back = verdicts(kT0 - 3'600'000);
  EXPECT_EQ(back.verdict, RateVerdict::Requests);
  // Counted at T0, free at T0 + 60 s of this clock: an hour and a minute from now. (The local
  // limiter, holding its clock at T0, says 60 s but refuses just as long.)
  EXPECT_EQ(back.retry_after_ms, 3'600'000 + kWindow);
  EXPECT_EQ(verdicts(kT0 + kWindow - 1).verdict, RateVerdict::Requests);
  EXPECT_EQ(verdicts(kT0 + 3'600'000).verdict, RateVerdict::Ok);
  EXPECT_EQ(verdicts(kT0 + 3'600'000).verdict, RateVerdict::Ok);
  EXPECT_EQ(verdicts(kT0 + 3'600'000).verdict, RateVerdict::Requests);
}

TEST_F(RedisRateLimiterTest, ACallMadeAfterAStepBackCountsFromItsOwnTime) {
  const RateLimits l{.rpm = 2};
  ASSERT_EQ(take(l, 0, kT0).verdict, RateVerdict::Ok);
  ASSERT_EQ(take(l, 0, kT0 - 50'000).verdict, RateVerdict::Ok);  // the clock stepped back 50 s
  auto d = take(l, 0, kT0 - 50'000 + kWindow - 1);
  EXPECT_EQ(d.verdict, RateVerdict::Requests);
  EXPECT_EQ(d.retry_after_ms, 1) << "the second call ages out 60 s after it was made";
  EXPECT_EQ(take(l, 0, kT0 - 50'000 + kWindow).verdict, RateVerdict::Ok);
  d = take(l, 0, kT0 - 50'000 + kWindow + 1);
  EXPECT_EQ(d.verdict, RateVerdict::Requests);
  EXPECT_EQ(d.retry_after_ms, 50'000 - 1) << "the first call still counts until T0 + 60 s";
  EXPECT_EQ(take(l, 0, kT0 + kWindow - 1).verdict, RateVerdict::Requests);
  EXPECT_EQ(take(l, 0, kT0 + kWindow).verdict, RateVerdict::Ok);
}

TEST_F(RedisRateLimiterTest, AZeroLimitRefusesLikeTheLocalLimiter) {
  const std::string a = key_ + "_rpm";
  const std::string b = key_ + "_tpm";
  const std::string c = key_ + "_slots";
  auto d = both({.rpm = 0}, 0, kT0, nullptr, &a);
  EXPECT_EQ(d.verdict, RateVerdict::Requests);
  EXPECT_EQ(d.retry_after_ms, kWindow);
  EXPECT_EQ(both({.tpm = 0}, 1, kT0, nullptr, &b).verdict, RateVerdict::TooLarge);
  EXPECT_EQ(both({.max_concurrent = 0}, 0, kT0, nullptr, &c).verdict, RateVerdict::Concurrency);
}

TEST_F(RedisRateLimiterTest, KeysAreIndependentExpireAndUnlimitedKeysAreFree) {
  const std::string a = key_ + "_a";
  const std::string b = key_ + "_b";
  const std::string c = key_ + "_c";
  EXPECT_EQ(both({.rpm = 1}, 0, kT0, nullptr, &a).verdict, RateVerdict::Ok);
  EXPECT_EQ(both({.rpm = 1}, 0, kT0, nullptr, &b).verdict, RateVerdict::Ok);
  EXPECT_EQ(both({.rpm = 1}, 0, kT0, nullptr, &a).verdict, RateVerdict::Requests);
  const auto d = both({}, 0, kT0, nullptr, &c);
  EXPECT_EQ(d.verdict, RateVerdict::Ok);
  EXPECT_FALSE(d.requests);
  const auto listed = cmd({"KEYS", "llmgw:rl:{" + c + "}:*"});
  ASSERT_TRUE(listed);
  EXPECT_TRUE(listed->elements.empty()) << "an unlimited key costs no Redis state";
  for (const char* part : {"req", "tok", "toksum"}) {
    const auto ttl = cmd({"PTTL", "llmgw:rl:{" + a + "}:" + part});
    ASSERT_TRUE(ttl);
    EXPECT_GT(ttl->integer, 0) << part << " must expire";
    EXPECT_LE(ttl->integer, 10 * 60'000 + 1000) << part;
  }
}

TEST_F(RedisRateLimiterTest, UsesRedisClockWhenNoTimeIsGiven) {
  const RateLimits l{.rpm = 3};
  for (int i = 0; i < 3; ++i) {
    ASSERT_EQ(take(l, 0, 0).verdict, RateVerdict::Ok);
  }
  const auto d = take(l, 0, 0);
  EXPECT_EQ(d.verdict, RateVerdict::Requests);
  EXPECT_GT(d.retry_after_ms, kWindow - 30'000);
  EXPECT_LE(d.retry_after_ms, kWindow);
}

TEST_F(RedisRateLimiterTest, AnUnreachableRedisIsReportedNotDecided) {
  Options o;
  o.port = free_port();
  Client nowhere(ioc_, o);
  RedisRateLimiter rl(nowhere);
  RateTicket t;
  const auto r = take_redis(rl, key_, {.rpm = 1}, 0, kT0, &t);
  EXPECT_TRUE(r.unavailable);
  EXPECT_FALSE(t.active);
  t.active = true;  // as if acquired before the outage: finishing it neither throws nor hangs
  t.key_id = key_;
  t.call_id = "gone";
  run(ioc_, rl.finish(t, 10));
  EXPECT_FALSE(t.active);
}

TEST_F(RedisRateLimiterTest, MatchesTheLocalLimiterOnARandomWorkload) {
  RedisRateLimiter rl(client_, std::chrono::hours(24));  // slots never expire, as locally
  const RateLimits l{.rpm = 8, .tpm = 2000, .max_concurrent = 4};
  std::mt19937 rng(20240611);
  std::vector<Twin> open;
  std::int64_t now = kT0;
  for (int step = 0; step < 600; ++step) {
    SCOPED_TRACE("step " + std::to_string(step));
    if (rng() % 3 != 0) {
      now += static_cast<std::int64_t>(rng() % 9000);
    }
    if (!open.empty() && rng() % 3 == 0) {
      const std::size_t i = rng() % open.size();
      const auto actual = static_cast<std::int64_t>(rng() % 700);
      run(ioc_, rl.finish(open[i].redis, actual));
      local_.reconcile(open[i].local, actual, now);
      local_.release(open[i].local);
      open.erase(open.begin() + static_cast<std::ptrdiff_t>(i));
      continue;
    }
    Twin t;
    const auto est = static_cast<std::int64_t>(rng() % 450);
    const std::string id = next_call_id();
    const auto r = run(ioc_, rl.acquire(key_, l, est, id, t.redis, now));
    ASSERT_FALSE(r.unavailable);
    const auto d = local_.acquire(key_, l, est, now, t.local);
    ASSERT_EQ(describe(r.decision), describe(d)) << "at T0+" << now - kT0 << " est " << est;
    if (d.verdict == RateVerdict::Ok) {
      open.push_back(std::move(t));
    }
  }
}

}  // namespace
}  // namespace llmgw::redis

namespace llmgw::redis {
namespace {

// --- the shared budget ledger and checks of several subjects at once

class RedisLedgerTest : public RedisRateLimiterTest {
 protected:
  static core::Money usd(const char* text) { return *core::Money::parse(text); }
  // The admission script's budget section, as the proxy runs it (no rate-limit subject).
  struct Held {
    int status = -1;  // 1 held, 0 over budget, 2 period not in Redis
    core::Money spent;
  };
  Held hold(core::Money budget, core::Money amount, const std::string& id,
            std::optional<core::Money> seed, limits::Reservation& r, std::int64_t now_ms = 0) {
    BudgetHoldRequest req{.key_id = key_,
                          .period_id = "2026-11",
                          .budget_nano = to_nano_down(budget),
                          .amount_nano = to_nano_up(amount),
                          .seed_nano = seed ? to_nano_up(*seed) : -1,
                          .period_ttl_ms = 7'200'000};
    std::vector<RateTicket> tickets;
    auto res = run(ioc_, rl_.acquire_all({}, 0, id, tickets, now_ms, req));
    EXPECT_FALSE(res.unavailable);
    if (res.hold.active) {
      r = res.hold;
    }
    return {res.budget_status, from_nano(res.budget_spent_nano)};
  }
  static constexpr int kHeld = 1;
  static constexpr int kOver = 0;
  static constexpr int kNotLoaded = 2;
  RedisSpendLedger ledger_{client_, 80};
};

TEST_F(RedisLedgerTest, SeededOnceThenHoldsAndSettlesExactly) {
  limits::Reservation r;
  EXPECT_EQ(hold(usd("1"), usd("0.3"), "a", std::nullopt, r).status, kNotLoaded);
  EXPECT_FALSE(r.active);
  auto seeded = hold(usd("1"), usd("0.3"), "a", usd("0.25"), r);
  ASSERT_EQ(seeded.status, kHeld);
  EXPECT_EQ(seeded.spent, usd("0.25"));
  // Another replica's seed arrives late: the first one stays (Redis knows more than the store).
  limits::Reservation r2;
  EXPECT_EQ(hold(usd("1"), usd("0.3"), "b", usd("0"), r2).status, kHeld);
  limits::Reservation r3;
  EXPECT_EQ(hold(usd("1"), usd("0.3"), "c", std::nullopt, r3).status, kOver)
      << "0.25 spent + 0.6 held + 0.3 > 1";
  const auto settled = run(ioc_, ledger_.settle_once(r, usd("0.1")));
  ASSERT_TRUE(settled);
  EXPECT_EQ(settled->spent, usd("0.35"));
  // The same settlement again (a retry whose first answer was lost) adds nothing.
  limits::Reservation again = r;
  again.active = true;
  EXPECT_EQ(run(ioc_, ledger_.settle_once(again, usd("0.1")))->spent, usd("0.35"));
  EXPECT_EQ(hold(usd("1"), usd("0.3"), "c", std::nullopt, r3).status, kHeld)
      << "0.35 + 0.3 + 0.3 <= 1 once a's hold became its cost";
}

TEST_F(RedisLedgerTest, SoftThresholdIsReportedOncePerPeriod) {
  limits::Reservation a, b;
  ASSERT_EQ(hold(usd("10"), usd("5"), "a", usd("0"), a).status, kHeld);
  ASSERT_EQ(hold(usd("10"), usd("5"), "b", std::nullopt, b).status, kHeld);
  EXPECT_TRUE(run(ioc_, ledger_.settle_once(a, usd("8")))->crossed_soft_threshold);
  EXPECT_FALSE(run(ioc_, ledger_.settle_once(b, usd("1")))->crossed_soft_threshold);
}

TEST_F(RedisLedgerTest, HoldsOfADeadReplicaLapseAndAFreeSettlementGivesTheHoldBack) {
  limits::Reservation a, b, c;
  const std::int64_t t0 = kT0;
  ASSERT_EQ(hold(usd("1"), usd("0.9"), "a", usd("0"), a, t0).status, kHeld);
  EXPECT_EQ(hold(usd("1"), usd("0.2"), "b", std::nullopt, b, t0 + 1).status, kOver);
  // Never settled (its replica died): after the hold's lifetime the budget is free again.
  EXPECT_EQ(hold(usd("1"), usd("0.2"), "b", std::nullopt, b, t0 + 3'600'001).status, kHeld);
  run(ioc_, ledger_.settle_once(b, usd("0")));  // the call failed: it cost nothing
  EXPECT_EQ(hold(usd("1"), usd("1"), "c", std::nullopt, c, t0 + 3'600'002).status, kHeld);
}

TEST(RedisLedgerMoney, NanoDollarsRoundAgainstTheCaller) {
  EXPECT_EQ(to_nano_up(*core::Money::parse("0.0000000001")), 1);
  EXPECT_EQ(to_nano_down(*core::Money::parse("0.0000000019")), 1);
  EXPECT_EQ(to_nano_up(*core::Money::parse("9000000")), 9'000'000'000'000'000);
  EXPECT_EQ(from_nano(150), *core::Money::parse("0.00000015"));
}

TEST_F(RedisRateLimiterTest, SeveralSubjectsAreCheckedAllOrNothingInOneScript) {
  const std::string model = "model:m-" + suffix_;
  std::vector<limits::RateTicket> tickets;
  auto call = [&](std::int64_t at) {
    std::vector<RateSubject> subjects{{key_, RateLimits{.rpm = 10}}, {model, RateLimits{.rpm = 2}}};
    return run(ioc_, rl_.acquire_all(std::move(subjects), 0, next_call_id(), tickets, at));
  };
  EXPECT_EQ(call(kT0).refused, static_cast<std::size_t>(-1));
  EXPECT_EQ(call(kT0 + 1).refused, static_cast<std::size_t>(-1));
  const auto third = call(kT0 + 2);
  ASSERT_EQ(third.refused, 1u) << "the model's limit";
  EXPECT_EQ(third.decisions[1].verdict, RateVerdict::Requests);
  EXPECT_EQ(third.decisions[0].verdict, RateVerdict::Ok);
  // The refused call took nothing from the key: 8 of its 10 remain.
  RateTicket t;
  const auto d = take(RateLimits{.rpm = 10}, 0, kT0 + 3, &t);
  ASSERT_TRUE(d.requests);
  EXPECT_EQ(d.requests->remaining, 7) << "two calls before, this one now";
}

// --- one interface for both shapes: what the request path does, on each

/// Counts soft-threshold crossings.
struct Crossings final : limits::SettlementListener {
  int seen = 0;
  void soft_threshold_crossed(const std::string&, const std::string&,
                              const limits::Settled&) override {
    ++seen;
  }
};

/// One admission through limits::RateLimiter, as the proxy makes it.
struct Admitted {
  limits::Admission result;
  std::array<RateDecision, 2> decisions;
  std::array<RateTicket, 2> tickets;
  limits::Reservation hold;
};

Admitted admit(asio::io_context& ioc, limits::RateLimiter& rl,
               std::span<const limits::RateSubject> subjects, const limits::BudgetRequest& budget,
               const std::string& call_id) {
  Admitted out;
  const limits::AdmitRequest rq{
      .subjects = subjects, .est_tokens = 10, .call_id = call_id, .budget = &budget};
  out.result = run(ioc, rl.admit(rq, std::span(out.decisions.data(), subjects.size()),
                                 std::span(out.tickets.data(), subjects.size()), out.hold));
  return out;
}

TEST_F(RedisLedgerTest, BothShapesAdmitSettleAndReleaseAlikeThroughOneInterface) {
  limits::LocalSpendLedger local_ledger(80);
  limits::LocalRateLimiter local_limiter(&local_ledger);
  struct Shape {
    const char* name;
    limits::RateLimiter& limiter;
    limits::SpendLedger& ledger;
  };
  const Shape shapes[] = {{"local", local_limiter, local_ledger}, {"redis", rl_, ledger_}};
  for (const Shape& shape : shapes) {
    SCOPED_TRACE(shape.name);
    const std::string key = key_ + "-" + shape.name;
    const std::string model = "model:m-" + key;
    const limits::RateSubject subjects[] = {{key, {.rpm = 3}}, {model, {.rpm = 100}}};
    limits::BudgetRequest b{.key_id = key,
                            .period_id = "2026-11",
                            .period_end_unix = core::unix_seconds() + 3600,
                            .budget = usd("10"),
                            .amount = usd("4")};
    auto call = [&] { return admit(ioc_, shape.limiter, subjects, b, next_call_id()); };
    // The period's spend is not known yet: nothing is counted or held.
    const auto unknown = call();
    EXPECT_EQ(unknown.result.budget, limits::BudgetStatus::NotLoaded);
    EXPECT_FALSE(unknown.result.admitted());
    EXPECT_FALSE(unknown.tickets[0].active);
    EXPECT_FALSE(unknown.hold.active);
    b.seed = usd("1");
    auto first = call();
    ASSERT_TRUE(first.result.admitted());
    EXPECT_EQ(first.result.budget, limits::BudgetStatus::Held);
    EXPECT_TRUE(first.hold.active);
    EXPECT_TRUE(first.tickets[0].active && first.tickets[1].active);
    ASSERT_TRUE(first.decisions[0].requests);
    EXPECT_EQ(first.decisions[0].requests->remaining, 2) << "the first try counted nothing";
    b.seed.reset();
    auto second = call();
    ASSERT_TRUE(second.result.admitted());
    // 1 spent + 8 held + 4 > 10: refused, with its rate counts taken back.
    const auto over = call();
    EXPECT_EQ(over.result.budget, limits::BudgetStatus::OverBudget);
    EXPECT_EQ(over.result.refused, limits::Admission::kNone);
    EXPECT_EQ(over.result.spent, usd("1"));
    EXPECT_FALSE(over.tickets[0].active);
    EXPECT_FALSE(over.hold.active);

    // Settled at 7: spent 8 of 10 crosses the soft threshold (80%), told once. A shared
    // ledger settles in the background: refused probes show the spend once it has landed.
    Crossings crossings;
    shape.ledger.settle(first.hold, usd("7"), crossings);
    EXPECT_FALSE(first.hold.active);
    b.amount = usd("100");
    for (int i = 0; i < 100 && crossings.seen == 0; ++i) {
      call();
    }
    EXPECT_EQ(crossings.seen, 1);
    EXPECT_EQ(call().result.spent, usd("8"));
    // The second call failed before costing anything: its hold is given back, awaited.
    run(ioc_, shape.ledger.release(second.hold, crossings));
    EXPECT_FALSE(second.hold.active);
    b.amount = usd("2");
    auto third = call();
    EXPECT_TRUE(third.result.admitted()) << "8 spent + 2 fits 10 once the hold is given back";
    // The key's 3 requests per minute are used (first, second, third): refused, nothing held.
    const auto limited = call();
    EXPECT_EQ(limited.result.refused, 0u);
    EXPECT_EQ(limited.decisions[0].verdict, RateVerdict::Requests);
    EXPECT_EQ(limited.result.budget, limits::BudgetStatus::NotAsked);
    EXPECT_FALSE(limited.hold.active);
    shape.limiter.finish(third.tickets, 12);
    EXPECT_FALSE(third.tickets[0].active);
    run(ioc_, shape.limiter.cancel(second.tickets));
    EXPECT_FALSE(second.tickets[0].active);
    shape.ledger.abandon(third.hold);
    shape.limiter.abandon(first.tickets);
    EXPECT_FALSE(first.tickets[0].active);
    EXPECT_EQ(crossings.seen, 1);
  }
}

}  // namespace
}  // namespace llmgw::redis
