#include "redis/spend_ledger.hpp"

#include "core/ids.hpp"

#include <algorithm>

namespace llmgw::redis {

namespace asio = boost::asio;

namespace {

constexpr core::Money::Rep kUnitsPerNano = core::Money::Rep(1'000'000'000'000'000);  // 1e15

// KEYS: period hash, holds zset. ARGV: budget, amount, seed (-1: none), hold id, now_ms
// (0: Redis's clock), hold ttl ms, period ttl ms. Returns {status, spent}: 1 held, 0 over
// budget, 2 not loaded.
const std::string kReserve = R"lua(
local now = tonumber(ARGV[5])
if now == 0 then
  local t = redis.call('TIME')
  now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
local spent = redis.call('HGET', KEYS[1], 'spent')
if not spent then
  if tonumber(ARGV[3]) < 0 then return {2, 0} end
  redis.call('HSETNX', KEYS[1], 'spent', ARGV[3])
  redis.call('PEXPIRE', KEYS[1], ARGV[7])
  spent = redis.call('HGET', KEYS[1], 'spent')
end
spent = tonumber(spent)
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now)
local held = 0
for _, m in ipairs(redis.call('ZRANGE', KEYS[2], 0, -1)) do
  held = held + tonumber(string.match(m, ':(%d+)$'))
end
local budget, amount = tonumber(ARGV[1]), tonumber(ARGV[2])
if amount > 0 and spent + held + amount > budget then return {0, spent} end
if amount > 0 then
  redis.call('ZADD', KEYS[2], now + tonumber(ARGV[6]), ARGV[4] .. ':' .. ARGV[2])
  redis.call('PEXPIRE', KEYS[2], ARGV[7])
end
return {1, spent}
)lua";

// KEYS: period hash, holds zset. ARGV: hold id, held amount, actual, soft threshold (0: none).
// Returns {spent, crossed}.
// The hold is the settlement's guard: a retry of a settlement Redis already applied (its
// answer was lost) finds no hold and adds nothing. A hold that lapsed before its call ended
// is not added either (see hold_ttl).
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

const std::string kRelease = R"lua(
redis.call('ZREM', KEYS[2], ARGV[1] .. ':' .. ARGV[2])
return 1
)lua";

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

asio::awaitable<LedgerReserve> RedisSpendLedger::reserve(
    std::string_view key_id, std::string_view period_id, core::Money budget, core::Money amount,
    std::string_view hold_id, std::int64_t period_end_unix, std::optional<core::Money> seed,
    limits::Reservation& out, std::int64_t now_ms) {
  LedgerReserve res;
  const std::int64_t amount_nano = to_nano_up(amount);
  const std::int64_t period_ttl_ms =
      std::max<std::int64_t>(60, period_end_unix - core::unix_seconds() + 86'400) * 1000;
  const auto keys = budget_keys(key_id, period_id);
  std::vector<std::string> argv;
  argv.push_back(std::to_string(to_nano_down(budget)));
  argv.push_back(std::to_string(amount_nano));
  argv.push_back(seed ? std::to_string(to_nano_up(*seed)) : std::string("-1"));
  argv.emplace_back(hold_id);
  argv.push_back(std::to_string(now_ms));
  argv.push_back(std::to_string(hold_ttl_.count()));
  argv.push_back(std::to_string(period_ttl_ms));
  const auto reply = co_await client_.eval(kReserve, keys, argv);
  if (!reply || reply->type != Reply::Type::Array || reply->elements.size() != 2) {
    co_return res;
  }
  res.spent = from_nano(reply->elements[1].integer);
  switch (reply->elements[0].integer) {
    case 1:
      res.outcome = LedgerOutcome::Ok;
      out.key_id = std::string(key_id);
      out.period_id = std::string(period_id);
      out.amount = from_nano(amount_nano);
      out.active = amount_nano > 0;
      break;
    case 0:
      res.outcome = LedgerOutcome::OverBudget;
      break;
    default:
      res.outcome = LedgerOutcome::NotLoaded;
      break;
  }
  co_return res;
}

asio::awaitable<std::optional<limits::Settled>> RedisSpendLedger::settle(
    limits::Reservation& r, std::string_view hold_id, core::Money budget, core::Money actual) {
  r.active = false;
  const auto keys = budget_keys(r.key_id, r.period_id);
  const std::int64_t soft =
      soft_percent_ == 0 ? 0 : to_nano_down(budget) / 100 * soft_percent_ +
                                   to_nano_down(budget) % 100 * soft_percent_ / 100;
  std::vector<std::string> argv;
  argv.emplace_back(hold_id);
  argv.push_back(std::to_string(to_nano_up(r.amount)));
  argv.push_back(std::to_string(to_nano_up(actual)));
  argv.push_back(std::to_string(soft));
  const auto reply = co_await client_.eval(kSettle, keys, argv);
  if (!reply || reply->type != Reply::Type::Array || reply->elements.size() != 2) {
    co_return std::nullopt;
  }
  limits::Settled s;
  s.spent = from_nano(reply->elements[0].integer);
  s.budget = budget;
  s.crossed_soft_threshold = reply->elements[1].integer == 1;
  co_return s;
}

asio::awaitable<void> RedisSpendLedger::release(limits::Reservation& r, std::string_view hold_id) {
  if (!r.active) {
    co_return;
  }
  r.active = false;
  const auto keys = budget_keys(r.key_id, r.period_id);
  std::vector<std::string> argv;
  argv.emplace_back(hold_id);
  argv.push_back(std::to_string(to_nano_up(r.amount)));
  co_await client_.eval(kRelease, keys, argv);
}

}  // namespace llmgw::redis
