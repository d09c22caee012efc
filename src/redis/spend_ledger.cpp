#include "redis/spend_ledger.hpp"

#include "core/ids.hpp"
#include "core/log.hpp"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <algorithm>

namespace llmgw::redis {

namespace asio = boost::asio;

namespace {

constexpr core::Money::Rep kUnitsPerNano = core::Money::Rep(1'000'000'000'000'000);  // 1e15

// KEYS: period hash, holds zset. ARGV: hold id, held amount, actual, soft threshold (0: none).
// Returns {spent, crossed}.
// The hold is the settlement's guard: a retry of a settlement Redis already applied (its
// answer was lost) finds no hold and adds nothing. A hold that lapsed before its call ended
// is not added either (see BudgetHoldRequest::hold_ttl_ms).
const std::string kSettle = R"lua(
if redis.call('ZREM', KEYS[2], ARGV[1] .. ':' .. ARGV[2]) == 0 then
  return {tonumber(redis.call('HGET', KEYS[1], 'spent') or '0'), 0}
end
local spent = redis.call('HINCRBY', KEYS[1], 'spent', ARGV[3])
local crossed = 0
local soft = tonumber(ARGV[4])
if soft > 0 and spent >= soft and redis.call('HSETNX', KEYS[1], 'soft', '1') == 1 then
  crossed = 1
end
return {spent, crossed}
)lua";

constexpr int kSettleAttempts = 5;
constexpr std::chrono::milliseconds kSettleBackoff{200};

/// A lost settlement would leave the shared spend behind the real one (and the hold would
/// lapse): retried while Redis recovers, then logged.
asio::awaitable<void> settle_retried(RedisSpendLedger* ledger, limits::Reservation hold,
                                     core::Money actual, limits::SettlementListener* listener) {
  std::optional<limits::Settled> settled;
  for (int attempt = 0; attempt < kSettleAttempts && !settled; ++attempt) {
    if (attempt > 0) {
      asio::steady_timer wait(co_await asio::this_coro::executor, kSettleBackoff * (1 << attempt));
      co_await wait.async_wait(asio::use_awaitable);
    }
    limits::Reservation r = hold;
    r.active = true;
    settled = co_await ledger->settle_once(r, actual);
  }
  if (!settled) {
    core::LogLine(core::LogLevel::Error, "budget settlement lost (Redis unavailable)")
        .field("key_id", hold.key_id)
        .field("cost_usd", actual.to_string())
        .emit();
  }
  if (settled && settled->crossed_soft_threshold) {
    listener->soft_threshold_crossed(hold.key_id, hold.period_id, *settled);
  }
}

}  // namespace

std::vector<std::string> budget_keys(std::string_view key_id, std::string_view period_id) {
  std::string base = "llmgw:budget:{";
  base += key_id;
  base += "}:";
  base += period_id;
  std::vector<std::string> keys;
  keys.push_back(base);
  keys.push_back(base + ":holds");
  return keys;
}

std::int64_t to_nano_up(core::Money m) {
  const auto u = m.units();
  if (u <= 0) {
    return 0;
  }
  return static_cast<std::int64_t>((u + kUnitsPerNano - 1) / kUnitsPerNano);
}

std::int64_t to_nano_down(core::Money m) {
  const auto u = m.units();
  return u <= 0 ? 0 : static_cast<std::int64_t>(u / kUnitsPerNano);
}

core::Money from_nano(std::int64_t n) {
  return core::Money::from_units(static_cast<core::Money::Rep>(n) * kUnitsPerNano);
}

asio::awaitable<std::optional<limits::Settled>> RedisSpendLedger::settle_once(
    limits::Reservation& r, core::Money actual) {
  r.active = false;
  const auto keys = budget_keys(r.key_id, r.period_id);
  const core::Money budget = r.budget;
  const std::int64_t soft =
      soft_percent_ == 0 ? 0 : to_nano_down(budget) / 100 * soft_percent_ +
                                   to_nano_down(budget) % 100 * soft_percent_ / 100;
  std::vector<std::string> argv;
  argv.push_back(r.hold_id);
  argv.push_back(std::to_string(to_nano_up(r.amount)));
  argv.push_back(std::to_string(to_nano_up(actual)));
  argv.push_back(std::to_string(soft));
  const auto reply = co_await client_.eval(kSettle, std::move(keys), std::move(argv));
  if (!reply || reply->type != Reply::Type::Array || reply->elements.size() != 2) {
    co_return std::nullopt;
  }
  limits::Settled s;
  s.spent = from_nano(reply->elements[0].integer);
  s.budget = budget;
  s.crossed_soft_threshold = reply->elements[1].integer == 1;
  co_return s;
}

void RedisSpendLedger::settle(limits::Reservation& r, core::Money actual,
                              limits::SettlementListener& listener) {
  if (!r.active) {
    return;
  }
  r.active = false;
  // Off the request's path: the hold keeps the budget safe until the settlement lands.
  asio::co_spawn(client_.io_context(), settle_retried(this, r, actual, &listener),
                 asio::detached);
}

asio::awaitable<void> RedisSpendLedger::release(limits::Reservation& r,
                                                limits::SettlementListener& listener) {
  if (!r.active) {
    co_return;
  }
  r.active = false;
  co_await settle_retried(this, r, core::Money{}, &listener);
}

}  // namespace llmgw::redis
