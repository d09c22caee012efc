#pragma once
/// The budget ledger of limits/spend_ledger.hpp, shared by every replica through Redis: a
/// call's worst case is held by the admission script (RedisRateLimiter::acquire_all with a
/// BudgetHoldRequest: all replicas' holds and the settled spend, checked with the call's rate
/// limits), and a settlement here replaces the hold by the actual cost.
///
/// Amounts in Redis are integer nano-dollars (Lua's numbers are doubles, exact to 2^53: up
/// to $9,007,199 per key and period). Costs and holds are rounded up and the budget down, so
/// the rounding can only refuse a call a nano-dollar early, never let one through.
///
/// Keys per gateway key K and period P (one hash slot): `llmgw:budget:{K}:P` (hash: spent,
/// soft) and `llmgw:budget:{K}:P:holds` (zset of "hold-id:amount" by expiry, so the holds of
/// a replica that died mid-call lapse after BudgetHoldRequest::hold_ttl_ms, one hour: a call
/// still running then is settled without its cost in the shared spend, which only the store
/// then has). Seeded from the store's spend the first time a period is seen; kept until a day
/// after the period ends.

#include "core/money.hpp"
#include "limits/spend_ledger.hpp"
#include "redis/redis_client.hpp"

#include <boost/asio/awaitable.hpp>

#include <chrono>
#include <optional>
#include <string>
#include <vector>

namespace llmgw::redis {

/// Money ↔ nano-dollars, rounding up (costs) or down (budgets).
std::int64_t to_nano_up(core::Money m);
std::int64_t to_nano_down(core::Money m);
core::Money from_nano(std::int64_t n);

/// The ledger's keys of a key and period: the period hash, then the holds zset.
std::vector<std::string> budget_keys(std::string_view key_id, std::string_view period_id);

class RedisSpendLedger final : public limits::SpendLedger {
 public:
  RedisSpendLedger(Client& client, unsigned soft_threshold_percent)
      : client_(client), soft_percent_(soft_threshold_percent) {}

  /// settle_once() in the background, retried while Redis recovers (then logged as lost).
  void settle(limits::Reservation& r, core::Money actual,
              limits::SettlementListener& listener) override;
  /// A settlement at nothing, awaited (retried like settle()).
  boost::asio::awaitable<void> release(limits::Reservation& r,
                                       limits::SettlementListener& listener) override;
  /// Nothing to do without I/O: the hold lapses after BudgetHoldRequest::hold_ttl_ms.
  void abandon(limits::Reservation& r) noexcept override { r.active = false; }

  /// Replaces the hold (`r.hold_id`) by `actual`, once: a repeated settlement of the same hold
  /// adds nothing. nullopt: Redis did not answer (the hold lapses on its own).
  boost::asio::awaitable<std::optional<limits::Settled>> settle_once(limits::Reservation& r,
                                                                     core::Money actual);

 private:
  Client& client_;
  unsigned soft_percent_;
};

}  // namespace llmgw::redis
