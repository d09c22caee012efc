#pragma once
/// The budget ledger of limits/spend_ledger.hpp, shared by every replica through Redis: each
/// call's worst case is held, all replicas' holds and settled spend are checked in one Lua
/// script, and a settlement replaces the hold by the actual cost.
///
/// Amounts in Redis are integer nano-dollars (Lua's numbers are doubles, exact to 2^53: up
/// to $9,007,199 per key and period). Costs and holds are rounded up and the budget down, so
/// the rounding can only refuse a call a nano-dollar early, never let one through.
///
/// Keys per gateway key K and period P (one hash slot): `llmgw:budget:{K}:P` (hash: spent,
/// soft) and `llmgw:budget:{K}:P:holds` (zset of "hold-id:amount" by expiry, so the holds of
/// a replica that died mid-call lapse after `hold_ttl`, one hour: a call still running then
/// is settled without its cost in the shared spend, which only the store then has). Seeded from the store's spend the
/// first time a period is seen; kept until a day after the period ends.

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

enum class LedgerOutcome : std::uint8_t { Ok, OverBudget, NotLoaded, Unavailable };

struct LedgerReserve {
  LedgerOutcome outcome = LedgerOutcome::Unavailable;
  core::Money spent;  ///< settled spend of the period (Ok / OverBudget)
};

class RedisSpendLedger {
 public:
  RedisSpendLedger(Client& client, unsigned soft_threshold_percent,
                   std::chrono::milliseconds hold_ttl = std::chrono::hours(1))
      : client_(client), soft_percent_(soft_threshold_percent), hold_ttl_(hold_ttl) {}

  /// Holds `amount` for `hold_id` unless spent + holds + amount would pass `budget`.
  /// NotLoaded: Redis does not know the period yet; call again with `seed` (the store's
  /// spend). `period_end_unix` bounds how long Redis keeps the period. `now_ms` 0: Redis's
  /// clock.
  boost::asio::awaitable<LedgerReserve> reserve(std::string_view key_id, std::string_view period_id,
                                                core::Money budget, core::Money amount,
                                                std::string_view hold_id,
                                                std::int64_t period_end_unix,
                                                std::optional<core::Money> seed,
                                                limits::Reservation& out, std::int64_t now_ms = 0);
  /// Replaces the hold by `actual`, once: a repeated settlement of the same hold adds nothing.
  /// nullopt: Redis did not answer (the hold lapses on its own).
  boost::asio::awaitable<std::optional<limits::Settled>> settle(limits::Reservation& r,
                                                                std::string_view hold_id,
                                                                core::Money budget,
                                                                core::Money actual);
  /// Drops the hold (the call failed before costing anything).
  boost::asio::awaitable<void> release(limits::Reservation& r, std::string_view hold_id);

 private:
  Client& client_;
  unsigned soft_percent_;
  std::chrono::milliseconds hold_ttl_;
};

}  // namespace llmgw::redis
