#pragma once
/// Rate limits shared by every replica: the sliding-window log of limits/rate_limiter.hpp,
/// kept in Redis and checked-and-counted by one Lua script per request (all limits of the
/// key, all or nothing, atomically), on Redis's clock so replicas' clocks do not matter.
///
/// Keys per gateway key K (one hash slot: `{K}`): `llmgw:rl:{K}:req` (zset of call ids by
/// time), `:tok` (zset of "id:tokens" by time), `:toksum` (their sum), `:inflight` (zset of
/// call ids by expiry: a replica that dies mid-call frees its slots after `slot_ttl`).
///
/// RedisRateLimiter implements limits::RateLimiter for the request path: admit() is
/// acquire_all(), one round trip that also holds the budget (redis/spend_ledger.hpp).
///
/// Unlike LocalRateLimiter, a clock that steps back is not held at the latest time seen: each
/// call is counted at the time it was made (the sorted sets keep the order), so after a step
/// back the earlier entries age out late, never early, and Retry-After says when they will.

#include "limits/rate_limiter.hpp"
#include "limits/spend_ledger.hpp"
#include "redis/redis_client.hpp"

#include <boost/asio/awaitable.hpp>

#include <chrono>
#include <optional>
#include <span>
#include <string>
#include <vector>

namespace llmgw::redis {

struct RedisRateResult {
  limits::RateDecision decision;
  bool unavailable = false;  ///< Redis did not answer: the caller applies its policy
};

/// One set of limits checked for a call: a gateway key ("key_…") or a model ("model:…").
struct RateSubject {
  std::string id;
  limits::RateLimits limits;
};

/// A budget hold checked in the same script as the rate limits (see spend_ledger.hpp for the
/// keys and amounts, all nano-dollars): the call is admitted only if both pass.
struct BudgetHoldRequest {
  std::string key_id;
  std::string period_id;
  std::int64_t budget_nano = 0;
  std::int64_t amount_nano = 0;
  std::int64_t seed_nano = -1;  ///< the store's spend when the period is new to Redis; -1: none
  std::int64_t hold_ttl_ms = 3'600'000;
  std::int64_t period_ttl_ms = 0;
};

struct RedisRateResults {
  std::vector<limits::RateDecision> decisions;  ///< one per subject, in order
  std::size_t refused = static_cast<std::size_t>(-1);  ///< the first subject that refused
  bool unavailable = false;
  /// The budget hold: 1 held, 0 over budget, 2 period not in Redis (call again with a seed),
  /// -1 not checked (no budget asked, or a rate limit refused first).
  int budget_status = -1;
  std::int64_t budget_spent_nano = 0;
  limits::Reservation hold;  ///< status 1 with a non-zero amount: the hold to settle later
};

class RedisRateLimiter final : public limits::RateLimiter {
 public:
  explicit RedisRateLimiter(Client& client, std::chrono::milliseconds slot_ttl = std::chrono::minutes(10))
      : client_(client), slot_ttl_(slot_ttl) {}

  /// `call_id` must be unique across replicas (the gateway request id). `now_ms` 0: Redis's
  /// clock (tests pass their own).
  boost::asio::awaitable<RedisRateResult> acquire(std::string_view key_id,
                                                  const limits::RateLimits& limits,
                                                  std::int64_t est_tokens, std::string_view call_id,
                                                  limits::RateTicket& out, std::int64_t now_ms = 0);
  /// Every subject's limits checked and, only if all pass, counted: one script, one round
  /// trip, all or nothing. `out` gets one ticket per subject.
  /// With `budget`, its hold is checked in the same script, after the rate limits: one round
  /// trip admits the call or refuses it with nothing recorded.
  boost::asio::awaitable<RedisRateResults> acquire_all(
      std::vector<RateSubject> subjects, std::int64_t est_tokens, std::string call_id,
      std::vector<limits::RateTicket>& out, std::int64_t now_ms = 0,
      std::optional<BudgetHoldRequest> budget = std::nullopt);
  /// Reconciles the tokens and frees the slot in one round trip. Best effort: a failure
  /// leaves the estimate counted (it ages out) and the slot until its expiry.
  boost::asio::awaitable<void> finish(limits::RateTicket& t, std::int64_t actual_tokens);
  /// Takes back what `acquire` counted (a later check of the same call refused it).
  boost::asio::awaitable<void> cancel(limits::RateTicket& t);

  /// acquire_all() on Redis's clock; a budget hold it takes is named by the call id.
  boost::asio::awaitable<limits::Admission> admit(const limits::AdmitRequest& rq,
                                                  std::span<limits::RateDecision> decisions,
                                                  std::span<limits::RateTicket> tickets,
                                                  limits::Reservation& hold) override;
  /// Both finishes in one background coroutine on the connection's thread.
  void finish(std::span<limits::RateTicket> tickets, std::int64_t actual_tokens) override;
  boost::asio::awaitable<void> cancel(std::span<limits::RateTicket> tickets) override;
  void abandon(std::span<limits::RateTicket> tickets) noexcept override;

 private:
  Client& client_;
  std::chrono::milliseconds slot_ttl_;
};

}  // namespace llmgw::redis
