#include "redis/rate_limits.hpp"

#include "redis/spend_ledger.hpp"

#include "core/ids.hpp"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>

#include <algorithm>

namespace llmgw::redis {

namespace asio = boost::asio;

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
local win, n, est, id, ttl = tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4]), ARGV[5],
  tonumber(ARGV[6])
local cutoff = now - win
local first = {0, 0, 0}
local state = {}
for s = 1, n do
  local k, a = (s - 1) * 4, 6 + (s - 1) * 3
  local rpm, tpm, mc = tonumber(ARGV[a + 1]), tonumber(ARGV[a + 2]), tonumber(ARGV[a + 3])
  redis.call('ZREMRANGEBYSCORE', KEYS[k + 1], '-inf', cutoff)
  local old = redis.call('ZRANGEBYSCORE', KEYS[k + 2], '-inf', cutoff)
  if #old > 0 then
    local freed = 0
    for _, m in ipairs(old) do freed = freed + tonumber(string.match(m, ':(%d+)$')) end
    redis.call('DECRBY', KEYS[k + 3], freed)
    redis.call('ZREMRANGEBYSCORE', KEYS[k + 2], '-inf', cutoff)
  end
  redis.call('ZREMRANGEBYSCORE', KEYS[k + 4], '-inf', now)
  local reqs = redis.call('ZCARD', KEYS[k + 1])
  local toks = tonumber(redis.call('GET', KEYS[k + 3]) or '0')
  local inflight = redis.call('ZCARD', KEYS[k + 4])
  local verdict, retry = 0, 0
  if tpm >= 0 and est > tpm then
    verdict = 4
  elseif rpm >= 0 and reqs + 1 > rpm then
    verdict = 1
    retry = win
    if rpm > 0 then
      local e = redis.call('ZRANGE', KEYS[k + 1], reqs - rpm, reqs - rpm, 'WITHSCORES')
      retry = tonumber(e[2]) + win - now
    end
  elseif tpm >= 0 and toks + est > tpm then
    verdict = 2
    retry = win
    local all = redis.call('ZRANGE', KEYS[k + 2], 0, -1, 'WITHSCORES')
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
  if verdict ~= 0 and first[1] == 0 then first = {verdict, retry, s} end
  state[s] = {rpm, tpm, mc, reqs, toks}
end
-- The budget hold, when asked (KEYS after the subjects': period hash, holds; ARGV after the
-- subjects': '1', budget, amount, seed (-1: none), hold ttl ms, period ttl ms; nano-dollars).
-- Checked only when every rate limit passed; status 1 held, 0 over budget, 2 not loaded.
local b, bk = 6 + 3 * n, 4 * n
local bstatus, bspent = -1, 0
if first[1] == 0 and ARGV[b + 1] == '1' then
  local spent = redis.call('HGET', KEYS[bk + 1], 'spent')
  if not spent and tonumber(ARGV[b + 4]) >= 0 then
    redis.call('HSETNX', KEYS[bk + 1], 'spent', ARGV[b + 4])
    redis.call('PEXPIRE', KEYS[bk + 1], ARGV[b + 6])
    spent = redis.call('HGET', KEYS[bk + 1], 'spent')
  end
  if not spent then
    bstatus = 2
  else
    bspent = tonumber(spent)
    redis.call('ZREMRANGEBYSCORE', KEYS[bk + 2], '-inf', now)
    local held = 0
    for _, m in ipairs(redis.call('ZRANGE', KEYS[bk + 2], 0, -1)) do
      held = held + tonumber(string.match(m, ':(%d+)$'))
    end
    local budget, amount = tonumber(ARGV[b + 2]), tonumber(ARGV[b + 3])
    if amount > 0 and bspent + held + amount > budget then bstatus = 0 else bstatus = 1 end
  end
end
local record = first[1] == 0 and bstatus ~= 0 and bstatus ~= 2
if bstatus == 1 and tonumber(ARGV[b + 3]) > 0 then
  redis.call('ZADD', KEYS[bk + 2], now + tonumber(ARGV[b + 5]), id .. ':' .. ARGV[b + 3])
  redis.call('PEXPIRE', KEYS[bk + 2], ARGV[b + 6])
end
local out = {first[1], first[2], first[3]}
for s = 1, n do
  local k, st = (s - 1) * 4, state[s]
  local reqs, toks = st[4], st[5]
  if record then
    if st[1] >= 0 or st[2] >= 0 then
      redis.call('ZADD', KEYS[k + 1], now, id)
      redis.call('ZADD', KEYS[k + 2], now, id .. ':' .. est)
      redis.call('INCRBY', KEYS[k + 3], est)
      reqs = reqs + 1
      toks = toks + est
    end
    if st[3] >= 0 then redis.call('ZADD', KEYS[k + 4], now + ttl, id) end
    local keep = math.max(win, ttl) + 1000
    for i = 1, 4 do redis.call('PEXPIRE', KEYS[k + i], keep) end
  end
  local reset = 0
  local newest = redis.call('ZRANGE', KEYS[k + 1], -1, -1, 'WITHSCORES')
  if #newest > 0 then reset = tonumber(newest[2]) + win - now end
  out[#out + 1] = reqs
  out[#out + 1] = toks
  out[#out + 1] = reset
end
out[#out + 1] = bstatus
out[#out + 1] = bspent
return out
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

// KEYS: req, tok, toksum, inflight. ARGV: id, estimate. Takes back what acquire counted.
const std::string kCancel = R"lua(
redis.call('ZREM', KEYS[1], ARGV[1])
if redis.call('ZREM', KEYS[2], ARGV[1] .. ':' .. ARGV[2]) == 1 then
  redis.call('DECRBY', KEYS[3], ARGV[2])
end
redis.call('ZREM', KEYS[4], ARGV[1])
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
  std::vector<RateSubject> subjects;
  subjects.push_back({std::string(key_id), limits});
  std::vector<limits::RateTicket> tickets;
  auto all = co_await acquire_all(std::move(subjects), est_tokens, std::string(call_id), tickets,
                                  now_ms);
  res.unavailable = all.unavailable;
  if (!all.unavailable) {
    res.decision = std::move(all.decisions.front());
    out = std::move(tickets.front());
  }
  co_return res;
}

asio::awaitable<RedisRateResults> RedisRateLimiter::acquire_all(
    std::vector<RateSubject> subjects, std::int64_t est_tokens, std::string call_id,
    std::vector<limits::RateTicket>& out, std::int64_t now_ms,
    std::optional<BudgetHoldRequest> budget) {
  RedisRateResults res;
  est_tokens = std::max<std::int64_t>(0, est_tokens);
  // Built before the co_await: GCC 12 miscompiles braced initialisers inside one.
  std::vector<std::string> keys;
  std::vector<std::string> argv;
  keys.reserve(4 * subjects.size());
  for (const std::int64_t v : {now_ms, limits::LocalRateLimiter::kWindowMs,
                               static_cast<std::int64_t>(subjects.size()), est_tokens}) {
    argv.push_back(std::to_string(v));
  }
  argv.push_back(call_id);
  argv.push_back(std::to_string(slot_ttl_.count()));
  for (const auto& s : subjects) {
    const std::string b = base(s.id);
    for (const char* k : {"req", "tok", "toksum", "inflight"}) {
      keys.push_back(b + k);
    }
    for (const std::int64_t v : {limit_arg(s.limits.rpm), limit_arg(s.limits.tpm),
                                 limit_arg(s.limits.max_concurrent)}) {
      argv.push_back(std::to_string(v));
    }
  }
  if (budget) {
    for (auto& k : budget_keys(budget->key_id, budget->period_id)) {
      keys.push_back(std::move(k));
    }
    argv.emplace_back("1");
    for (const std::int64_t v : {budget->budget_nano, budget->amount_nano, budget->seed_nano,
                                 budget->hold_ttl_ms, budget->period_ttl_ms}) {
      argv.push_back(std::to_string(v));
    }
  }
  const auto reply = co_await client_.eval(kAcquire, std::move(keys), std::move(argv));
  if (!reply || reply->type != Reply::Type::Array ||
      reply->elements.size() != 5 + 3 * subjects.size()) {
    res.unavailable = true;
    co_return res;
  }
  res.budget_status = static_cast<int>(reply->elements[3 + 3 * subjects.size()].integer);
  res.budget_spent_nano = reply->elements[4 + 3 * subjects.size()].integer;
  if (res.budget_status == 1 && budget->amount_nano > 0) {
    res.hold.key_id = budget->key_id;
    res.hold.period_id = budget->period_id;
    res.hold.amount = from_nano(budget->amount_nano);
    res.hold.active = true;
    res.hold.budget = from_nano(budget->budget_nano);
    res.hold.hold_id = call_id;
  }
  const auto& e = reply->elements;
  const auto verdict = static_cast<limits::RateVerdict>(e[0].integer);
  // Counted only when the budget (if asked) held too: otherwise nothing was recorded.
  const bool ok = verdict == limits::RateVerdict::Ok && res.budget_status != 0 &&
                  res.budget_status != 2;
  if (!ok) {
    res.refused = static_cast<std::size_t>(e[2].integer - 1);
  }
  out.clear();
  for (std::size_t i = 0; i < subjects.size(); ++i) {
    const auto& lim = subjects[i].limits;
    limits::RateDecision d;
    if (verdict != limits::RateVerdict::Ok && i == res.refused) {
      d.verdict = verdict;
      d.retry_after_ms = e[1].integer;
    }
    const std::int64_t reqs = e[3 + 3 * i].integer;
    const std::int64_t toks = e[4 + 3 * i].integer;
    const std::int64_t reset =
        verdict == limits::RateVerdict::Ok ? limits::LocalRateLimiter::kWindowMs : e[5 + 3 * i].integer;
    if (lim.rpm) {
      d.requests = limits::WindowState{*lim.rpm, std::max<std::int64_t>(0, *lim.rpm - reqs), reset};
    }
    if (lim.tpm) {
      d.tokens = limits::WindowState{*lim.tpm, std::max<std::int64_t>(0, *lim.tpm - toks), reset};
    }
    res.decisions.push_back(std::move(d));
    limits::RateTicket t;
    if (ok) {
      t.key_id = subjects[i].id;
      t.call_id = call_id;
      t.entry = (lim.rpm || lim.tpm) ? 1 : 0;
      t.tokens = est_tokens;
      t.slot = lim.max_concurrent.has_value();
      t.active = true;
    }
    out.push_back(std::move(t));
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
  co_await client_.eval(kFinish, std::move(keys), std::move(argv));
}

}  // namespace llmgw::redis

namespace llmgw::redis {

asio::awaitable<void> RedisRateLimiter::cancel(limits::RateTicket& t) {
  if (!t.active) {
    co_return;
  }
  t.active = false;
  const std::string b = base(t.key_id);
  std::vector<std::string> keys;
  for (const char* k : {"req", "tok", "toksum", "inflight"}) {
    keys.push_back(b + k);
  }
  std::vector<std::string> argv;
  argv.push_back(t.call_id);
  argv.push_back(std::to_string(t.tokens));
  co_await client_.eval(kCancel, std::move(keys), std::move(argv));
}

}  // namespace llmgw::redis

namespace llmgw::redis {

namespace {

asio::awaitable<void> finish_all(RedisRateLimiter* limiter, std::vector<limits::RateTicket> tickets,
                                 std::int64_t actual_tokens) {
  for (auto& t : tickets) {
    co_await limiter->finish(t, actual_tokens);
  }
}

limits::BudgetStatus budget_status(int script_status) {
  switch (script_status) {
    case 1:
      return limits::BudgetStatus::Held;
    case 0:
      return limits::BudgetStatus::OverBudget;
    case 2:
      return limits::BudgetStatus::NotLoaded;
    default:
      return limits::BudgetStatus::NotAsked;
  }
}

}  // namespace

asio::awaitable<limits::Admission> RedisRateLimiter::admit(
    const limits::AdmitRequest& rq, std::span<limits::RateDecision> decisions,
    std::span<limits::RateTicket> tickets, limits::Reservation& hold) {
  limits::Admission a;
  std::vector<RateSubject> subjects;
  subjects.reserve(rq.subjects.size());
  for (const auto& s : rq.subjects) {
    subjects.push_back({std::string(s.id), s.limits});
  }
  std::optional<BudgetHoldRequest> budget;
  if (rq.budget != nullptr) {
    const limits::BudgetRequest& b = *rq.budget;
    budget.emplace();
    budget->key_id = b.key_id;
    budget->period_id = b.period_id;
    budget->budget_nano = to_nano_down(b.budget);
    budget->amount_nano = to_nano_up(b.amount);
    budget->seed_nano = b.seed ? to_nano_up(*b.seed) : -1;
    // Kept a day past the period's end (a late settlement still finds it).
    budget->period_ttl_ms =
        std::max<std::int64_t>(60, b.period_end_unix - core::unix_seconds() + 86'400) * 1000;
  }
  std::vector<limits::RateTicket> out;
  auto res = co_await acquire_all(std::move(subjects), rq.est_tokens, std::string(rq.call_id),
                                  out, 0, std::move(budget));
  if (res.unavailable) {
    a.unavailable = true;
    co_return a;
  }
  for (std::size_t i = 0; i < out.size(); ++i) {
    decisions[i] = std::move(res.decisions[i]);
    tickets[i] = std::move(out[i]);
  }
  a.refused = res.refused;
  a.budget = budget_status(res.budget_status);
  if (a.budget == limits::BudgetStatus::OverBudget) {
    a.spent = from_nano(res.budget_spent_nano);
  }
  if (res.hold.active) {
    hold = std::move(res.hold);
    hold.budget = rq.budget->budget;
  }
  co_return a;
}

void RedisRateLimiter::finish(std::span<limits::RateTicket> tickets, std::int64_t actual_tokens) {
  std::vector<limits::RateTicket> open;
  for (auto& t : tickets) {
    if (t.active) {
      open.push_back(std::move(t));
      t.active = false;
    }
  }
  if (!open.empty()) {
    // Off the request's path: the answer does not wait for Redis.
    asio::co_spawn(client_.io_context(), finish_all(this, std::move(open), actual_tokens),
                   asio::detached);
  }
}

asio::awaitable<void> RedisRateLimiter::cancel(std::span<limits::RateTicket> tickets) {
  for (auto& t : tickets) {
    co_await cancel(t);
  }
}

void RedisRateLimiter::abandon(std::span<limits::RateTicket> tickets) noexcept {
  for (auto& t : tickets) {
    t.active = false;  // its slot lapses after slot_ttl
  }
}

}  // namespace llmgw::redis
