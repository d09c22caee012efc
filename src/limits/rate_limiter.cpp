#include "limits/rate_limiter.hpp"

#include <algorithm>
#include <charconv>
#include <chrono>
#include <functional>

namespace llmgw::limits {

LocalRateLimiter::Shard& LocalRateLimiter::shard(std::string_view key) {
  return shards_[std::hash<std::string_view>{}(key) % kShards];
}

void LocalRateLimiter::expire(KeyState& s, std::int64_t now_ms) {
  while (!s.log.empty() && s.log.front().at_ms + kWindowMs <= now_ms) {
    s.calls -= s.log.front().calls;
    s.tokens -= s.log.front().tokens;
    s.log.pop_front();
  }
}

std::deque<LocalRateLimiter::Entry>::iterator LocalRateLimiter::find(KeyState& s,
                                                                      std::int64_t at_ms) {
  // In time order (a key's clock never steps back: latest_ms): binary search.
  auto e = std::lower_bound(s.log.begin(), s.log.end(), at_ms,
                            [](const Entry& x, std::int64_t ms) { return x.at_ms < ms; });
  return e != s.log.end() && e->at_ms == at_ms ? e : s.log.end();
}

namespace {

/// Time until the oldest entries holding `needed` units of room have aged out: walks the log
/// from the oldest entry until enough has been freed.
template <class Units>
std::int64_t wait_for(const std::deque<Units>& log, std::int64_t used, std::int64_t limit,
                      std::int64_t want, std::int64_t now_ms, std::int64_t window_ms,
                      std::int64_t (*amount)(const Units&)) {
  std::int64_t freed = 0;
  for (const auto& e : log) {
    freed += amount(e);
    if (used - freed + want <= limit) {
      return std::max<std::int64_t>(1, e.at_ms + window_ms - now_ms);
    }
  }
  return window_ms;
}

}  // namespace

RateDecision LocalRateLimiter::acquire(std::string_view key_id, const RateLimits& limits,
                                       std::int64_t est_tokens, std::int64_t now_ms,
                                       RateTicket& out) {
  RateDecision d;
  if (!limits.any()) {
    return d;
  }
  est_tokens = std::max<std::int64_t>(0, est_tokens);
  Shard& sh = shard(key_id);
  std::lock_guard lock(sh.mutex);
  auto it = sh.keys.find(key_id);
  if (it == sh.keys.end()) {
    it = sh.keys.try_emplace(std::string(key_id)).first;
  }
  KeyState& s = it->second;
  now_ms = std::max(now_ms, s.latest_ms);  // a clock stepping back frees nothing early
  s.latest_ms = now_ms;
  expire(s, now_ms);

  const std::int64_t requests = s.calls;
  const std::int64_t window_reset =
      s.log.empty() ? 0 : s.log.back().at_ms + kWindowMs - now_ms;
  auto per_request = +[](const Entry& e) -> std::int64_t { return e.calls; };
  auto per_token = +[](const Entry& e) -> std::int64_t { return e.tokens; };

  if (limits.tpm && est_tokens > *limits.tpm) {
    d.verdict = RateVerdict::TooLarge;
  } else if (limits.rpm && requests + 1 > *limits.rpm) {
    d.verdict = RateVerdict::Requests;
    d.retry_after_ms = wait_for(s.log, requests, *limits.rpm, 1, now_ms, kWindowMs, per_request);
  } else if (limits.tpm && s.tokens + est_tokens > *limits.tpm) {
    d.verdict = RateVerdict::Tokens;
    d.retry_after_ms =
        wait_for(s.log, s.tokens, *limits.tpm, est_tokens, now_ms, kWindowMs, per_token);
  } else if (limits.max_concurrent && s.in_flight + 1 > *limits.max_concurrent) {
    d.verdict = RateVerdict::Concurrency;
    d.retry_after_ms = 1000;  // unknown: when a call in flight ends
  }

  const bool ok = d.verdict == RateVerdict::Ok;
  if (ok && (limits.rpm || limits.tpm)) {
    if (s.log.empty() || s.log.back().at_ms != now_ms) {
      s.log.push_back({now_ms, 0, 0});
    }
    ++s.log.back().calls;
    s.log.back().tokens += est_tokens;
    ++s.calls;
    s.tokens += est_tokens;
    out.entry = 1;  // counted in the window (its slot: entry_ms)
    out.entry_ms = now_ms;
    out.tokens = est_tokens;
  }
  if (ok && limits.max_concurrent) {
    ++s.in_flight;
    out.slot = true;
  }
  if (ok) {
    out.key_id = std::string(key_id);
    out.active = true;
  }
  const std::int64_t reset = ok ? kWindowMs : window_reset;
  if (limits.rpm) {
    const std::int64_t used = s.calls;
    d.requests = WindowState{*limits.rpm, std::max<std::int64_t>(0, *limits.rpm - used), reset};
  }
  if (limits.tpm) {
    d.tokens = WindowState{*limits.tpm, std::max<std::int64_t>(0, *limits.tpm - s.tokens), reset};
  }
  if (s.log.empty() && s.in_flight == 0) {
    sh.keys.erase(it);  // nothing to remember: keep the map to the keys in use
  }
  return d;
}

void LocalRateLimiter::reconcile(RateTicket& t, std::int64_t actual_tokens, std::int64_t now_ms) {
  if (!t.active || t.entry == 0) {
    return;
  }
  actual_tokens = std::max<std::int64_t>(0, actual_tokens);
  Shard& sh = shard(t.key_id);
  std::lock_guard lock(sh.mutex);
  auto it = sh.keys.find(t.key_id);
  if (it == sh.keys.end()) {
    return;
  }
  KeyState& s = it->second;
  expire(s, std::max(now_ms, s.latest_ms));
  if (auto e = find(s, t.entry_ms); e != s.log.end()) {  // else aged out: nothing counted
    s.tokens += actual_tokens - t.tokens;
    e->tokens += actual_tokens - t.tokens;
  }
  t.tokens = actual_tokens;
}

void LocalRateLimiter::release(RateTicket& t) {
  if (!t.active) {
    return;
  }
  t.active = false;
  if (!t.slot) {
    return;
  }
  t.slot = false;
  Shard& sh = shard(t.key_id);
  std::lock_guard lock(sh.mutex);
  auto it = sh.keys.find(t.key_id);
  if (it == sh.keys.end()) {
    return;
  }
  KeyState& s = it->second;
  --s.in_flight;
  if (s.log.empty() && s.in_flight == 0) {
    sh.keys.erase(it);
  }
}

void LocalRateLimiter::cancel(RateTicket& t) {
  if (!t.active) {
    return;
  }
  if (t.entry != 0) {
    Shard& sh = shard(t.key_id);
    std::lock_guard lock(sh.mutex);
    if (auto it = sh.keys.find(t.key_id); it != sh.keys.end()) {
      KeyState& s = it->second;
      if (auto e = find(s, t.entry_ms); e != s.log.end()) {
        --s.calls;
        s.tokens -= t.tokens;
        --e->calls;
        e->tokens -= t.tokens;
        if (e->calls == 0) {
          s.log.erase(e);
        }
      }
    }
    t.entry = 0;
  }
  release(t);
}

namespace {

/// admit()'s clock: monotonic milliseconds.
std::int64_t steady_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

}  // namespace

Admission LocalRateLimiter::admit_now(const AdmitRequest& rq, std::span<RateDecision> decisions,
                                      std::span<RateTicket> tickets, Reservation& hold,
                                      std::int64_t now_ms) {
  Admission a;
  const auto take_back = [&](std::size_t n) {
    for (std::size_t j = 0; j < n; ++j) {
      cancel(tickets[j]);
    }
  };
  for (std::size_t i = 0; i < rq.subjects.size(); ++i) {
    const RateSubject& s = rq.subjects[i];
    decisions[i] = acquire(s.id, s.limits, rq.est_tokens, now_ms, tickets[i]);
    if (decisions[i].verdict != RateVerdict::Ok) {
      a.refused = i;
      take_back(i);  // all or nothing
      return a;
    }
  }
  if (rq.budget == nullptr || ledger_ == nullptr) {
    return a;
  }
  const BudgetRequest& b = *rq.budget;
  if (b.seed) {
    ledger_->load(b.key_id, b.period_id, *b.seed);
  }
  switch (ledger_->reserve(b.key_id, b.period_id, b.budget, b.amount, hold)) {
    case ReserveResult::Ok:
      a.budget = BudgetStatus::Held;
      return a;
    case ReserveResult::OverBudget:
      a.budget = BudgetStatus::OverBudget;
      a.spent = ledger_->spent(b.key_id, b.period_id);
      break;
    case ReserveResult::NotLoaded:
      a.budget = BudgetStatus::NotLoaded;
      break;
  }
  take_back(rq.subjects.size());
  return a;
}

boost::asio::awaitable<Admission> LocalRateLimiter::admit(const AdmitRequest& rq,
                                                          std::span<RateDecision> decisions,
                                                          std::span<RateTicket> tickets,
                                                          Reservation& hold) {
  co_return admit_now(rq, decisions, tickets, hold, steady_ms());
}

void LocalRateLimiter::finish(std::span<RateTicket> tickets, std::int64_t actual_tokens) {
  const std::int64_t now = steady_ms();
  for (RateTicket& t : tickets) {
    reconcile(t, actual_tokens, now);
    release(t);
  }
}

boost::asio::awaitable<void> LocalRateLimiter::cancel(std::span<RateTicket> tickets) {
  for (RateTicket& t : tickets) {
    cancel(t);
  }
  co_return;
}

void LocalRateLimiter::abandon(std::span<RateTicket> tickets) noexcept {
  for (RateTicket& t : tickets) {
    release(t);
  }
}

namespace {
void append_int(std::string& out, std::int64_t v) {
  char buf[24];
  const auto r = std::to_chars(buf, buf + sizeof buf, v);
  out.append(buf, r.ptr);
}
}  // namespace

void append_reset(std::string& out, std::int64_t ms) {
  if (ms < 1000) {
    append_int(out, std::max<std::int64_t>(0, ms));
    out += "ms";
    return;
  }
  const std::int64_t minutes = ms / 60'000;
  const std::int64_t rest_ms = ms % 60'000;
  if (minutes > 0) {
    append_int(out, minutes);
    out += 'm';
  }
  append_int(out, rest_ms / 1000);
  if (std::int64_t frac = rest_ms % 1000; frac != 0) {
    // Three digits without trailing zeros: 250 -> ".25", 5 -> ".005".
    char digits[3] = {static_cast<char>('0' + frac / 100), static_cast<char>('0' + frac / 10 % 10),
                      static_cast<char>('0' + frac % 10)};
    std::size_t n = 3;
    while (digits[n - 1] == '0') {
      --n;
    }
    out += '.';
    out.append(digits, n);
  }
  out += 's';
}

std::string format_reset(std::int64_t ms) {
  std::string out;
  append_reset(out, ms);
  return out;
}

}  // namespace llmgw::limits
