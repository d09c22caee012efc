#include "redis/rate_limits.hpp"

#include <algorithm>

namespace llmgw::redis {

namespace asio = boost::asio;

bool parse_failure_policy(std::string_view s, FailurePolicy& out) {
  if (s == "fail_open") {
    out = FailurePolicy::FailOpen;
  } else if (s == "fail_closed") {
    out = FailurePolicy::FailClosed;
  } else {
    return false;
  }
  return true;
}

namespace {

// KEYS: req, tok, toksum, inflight. ARGV: now_ms (0: Redis's clock), window_ms, rpm, tpm,
// max_concurrent (each -1: no such limit; 0 is a limit that refuses), est_tokens, call id,
// slot ttl ms.
// Returns {verdict, retry_ms, requests used, tokens used, reset_ms}; verdict as RateVerdict.
const std::string kAcquire = R"lua(
local now = tonumber(ARGV[1])
if now == 0 then
  local t = redis.call('TIME')
  now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
local win, rpm, tpm = tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4])
local mc, est, id, ttl = tonumber(ARGV[5]), tonumber(ARGV[6]), ARGV[7], tonumber(ARGV[8])
local cutoff = now - win
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', cutoff)
local old = redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', cutoff)
if #old > 0 then
  local freed = 0
  for _, m in ipairs(old) do freed = freed + tonumber(string.match(m, ':(%d+)$')) end
  redis.call('DECRBY', KEYS[3], freed)
  redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', cutoff)
end
redis.call('ZREMRANGEBYSCORE', KEYS[4], '-inf', now)
local reqs = redis.call('ZCARD', KEYS[1])
local toks = tonumber(redis.call('GET', KEYS[3]) or '0')
local inflight = redis.call('ZCARD', KEYS[4])
local verdict, retry = 0, 0
if tpm >= 0 and est > tpm then
  verdict = 4
elseif rpm >= 0 and reqs + 1 > rpm then
  verdict = 1
  retry = win
  if rpm > 0 then
    local e = redis.call('ZRANGE', KEYS[1], reqs - rpm, reqs - rpm, 'WITHSCORES')
    retry = tonumber(e[2]) + win - now
  end
elseif tpm >= 0 and toks + est > tpm then
  verdict = 2
  retry = win
  local all = redis.call('ZRANGE', KEYS[2], 0, -1, 'WITHSCORES')
  local freed = 0
  for i = 1, #all, 2 do
    freed = freed + tonumber(string.match(all[i], ':(%d+)$'))
    if toks - freed + est <= tpm then retry = tonumber(all[i + 1]) + win - now; break end
  end
elseif mc >= 0 and inflight + 1 > mc then
  verdict = 3
  retry = 1000
end
if verdict ~= 0 and verdict ~= 4 and retry < 1 then retry = 1 end
if verdict == 0 then
  if rpm >= 0 or tpm >= 0 then
    redis.call('ZADD', KEYS[1], now, id)
    redis.call('ZADD', KEYS[2], now, id .. ':' .. est)
    redis.call('INCRBY', KEYS[3], est)
    reqs = reqs + 1
    toks = toks + est
  end
  if mc >= 0 then redis.call('ZADD', KEYS[4], now + ttl, id) end
  local keep = math.max(win, ttl) + 1000
  for i = 1, 4 do redis.call('PEXPIRE', KEYS[i], keep) end
end
local reset = 0
local newest = redis.call('ZRANGE', KEYS[1], -1, -1, 'WITHSCORES')
if #newest > 0 then reset = tonumber(newest[2]) + win - now end
return {verdict, retry, reqs, toks, reset}
)lua";

// KEYS: tok, toksum, inflight. ARGV: id, estimate, actual, has_entry, has_slot.
const std::string kFinish = R"lua(
if ARGV[4] == '1' then
  local m = ARGV[1] .. ':' .. ARGV[2]
  local score = redis.call('ZSCORE', KEYS[1], m)
  if score then
    redis.call('ZREM', KEYS[1], m)
    redis.call('ZADD', KEYS[1], score, ARGV[1] .. ':' .. ARGV[3])
    redis.call('INCRBY', KEYS[2], tonumber(ARGV[3]) - tonumber(ARGV[2]))
  end
end
if ARGV[5] == '1' then redis.call('ZREM', KEYS[3], ARGV[1]) end
return 1
)lua";

std::string base(std::string_view key_id) { return "llmgw:rl:{" + std::string(key_id) + "}:"; }

/// A limit for the script: -1 when the key has none (0 is a limit: nothing passes).
std::int64_t limit_arg(const std::optional<std::int64_t>& limit) {
  return limit ? std::max<std::int64_t>(0, *limit) : -1;
}

}  // namespace

asio::awaitable<RedisRateResult> RedisRateLimiter::acquire(std::string_view key_id,
                                                           const limits::RateLimits& limits,
                                                           std::int64_t est_tokens,
                                                           std::string_view call_id,
                                                           limits::RateTicket& out,
                                                           std::int64_t now_ms) {
  RedisRateResult res;
  if (!limits.any()) {
    co_return res;
  }
  est_tokens = std::max<std::int64_t>(0, est_tokens);
  const std::string b = base(key_id);
  // Built before the co_await: GCC 12 miscompiles braced initialisers inside one.
  std::vector<std::string> keys;
  keys.reserve(4);
  for (const char* k : {"req", "tok", "toksum", "inflight"}) {
    keys.push_back(b + k);
  }
  std::vector<std::string> argv;
  argv.reserve(8);
  for (const std::int64_t v :
       {now_ms, limits::LocalRateLimiter::kWindowMs, limit_arg(limits.rpm), limit_arg(limits.tpm),
        limit_arg(limits.max_concurrent), est_tokens}) {
    argv.push_back(std::to_string(v));
  }
  argv.emplace_back(call_id);
  argv.push_back(std::to_string(slot_ttl_.count()));
  const auto reply = co_await client_.eval(kAcquire, keys, argv);
  if (!reply || reply->type != Reply::Type::Array || reply->elements.size() != 5) {
    res.unavailable = true;
    co_return res;
  }
  const auto& e = reply->elements;
  auto& d = res.decision;
  d.verdict = static_cast<limits::RateVerdict>(e[0].integer);
  d.retry_after_ms = e[1].integer;
  const bool ok = d.verdict == limits::RateVerdict::Ok;
  const std::int64_t reset = ok ? limits::LocalRateLimiter::kWindowMs : e[4].integer;
  if (limits.rpm) {
    d.requests = limits::WindowState{*limits.rpm, std::max<std::int64_t>(0, *limits.rpm - e[2].integer), reset};
  }
  if (limits.tpm) {
    d.tokens = limits::WindowState{*limits.tpm, std::max<std::int64_t>(0, *limits.tpm - e[3].integer), reset};
  }
  if (ok) {
    out.key_id = std::string(key_id);
    out.call_id = std::string(call_id);
    out.entry = (limits.rpm || limits.tpm) ? 1 : 0;
    out.tokens = est_tokens;
    out.slot = limits.max_concurrent.has_value();
    out.active = true;
  }
  co_return res;
}

asio::awaitable<void> RedisRateLimiter::finish(limits::RateTicket& t, std::int64_t actual_tokens) {
  if (!t.active) {
    co_return;
  }
  t.active = false;
  const std::string b = base(t.key_id);
  std::vector<std::string> keys;
  for (const char* k : {"tok", "toksum", "inflight"}) {
    keys.push_back(b + k);
  }
  std::vector<std::string> argv;
  argv.push_back(t.call_id);
  argv.push_back(std::to_string(t.tokens));
  argv.push_back(std::to_string(std::max<std::int64_t>(0, actual_tokens)));
  argv.emplace_back(t.entry != 0 ? "1" : "0");
  argv.emplace_back(t.slot ? "1" : "0");
  co_await client_.eval(kFinish, keys, argv);
}

}  // namespace llmgw::redis
