#pragma once
/// Budgets that concurrency cannot overrun: reserve the worst case before the call, settle to
/// the actual cost after it. The hold is taken with the call's rate limits
/// (RateLimiter::admit); `SpendLedger` is the request path's interface for the rest of its
/// life: settle or release. `LocalSpendLedger` (embedded default) keeps the ledger in process;
/// a Redis implementation serves several replicas (redis/spend_ledger.hpp).

#include "core/money.hpp"
#include "limits/budget_period.hpp"

#include <boost/asio/awaitable.hpp>

#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>

namespace llmgw::limits {

/// A hold on part of a key's budget, from reserve() until settle() or release().
struct Reservation {
  std::string key_id;
  std::string period_id;
  core::Money amount;
  bool active = false;
  std::uint64_t generation = 0;  ///< of the ledger entry it was taken from
  core::Money budget{};          ///< the key's budget when it was taken
  std::string hold_id{};         ///< a shared ledger's id of the hold (the gateway request id)
};

enum class ReserveResult : std::uint8_t {
  Ok,
  OverBudget,  ///< spent + reserved + this would pass the budget
  NotLoaded,   ///< the period's spend so far is not known yet: load() it first
};

/// After a settlement: where the period stands, for alerting.
struct Settled {
  core::Money spent;   ///< settled spend of the period after this call
  core::Money budget;
  bool crossed_soft_threshold = false;  ///< true once per key and period
};

/// Hears of a settlement that crossed a key's soft threshold (once per key and period),
/// whenever it lands.
class SettlementListener {
 public:
  virtual void soft_threshold_crossed(const std::string& key_id, const std::string& period_id,
                                      const Settled& settled) = 0;

 protected:
  ~SettlementListener() = default;
};

/// The request path's ledger. One object serves one I/O thread (a shared one may serve
/// all); its calls are made on that thread. `listener` must outlive the ledger's work.
class SpendLedger {
 public:
  virtual ~SpendLedger() = default;
  /// Replaces the hold by the actual cost (it may be higher than held). Does not wait: a
  /// shared ledger settles in the background, retried while it recovers (the hold keeps the
  /// budget safe meanwhile).
  virtual void settle(Reservation& r, core::Money actual, SettlementListener& listener) = 0;
  /// Gives a hold back unused (the call failed before costing anything), before the caller
  /// answers: the client's retry must not find it still held.
  virtual boost::asio::awaitable<void> release(Reservation& r, SettlementListener& listener) = 0;
  /// The call is gone without settling (its coroutine was destroyed): frees what needs no
  /// I/O. A shared hold lapses on its own.
  virtual void abandon(Reservation& r) noexcept = 0;
};

/// In-process ledger: one entry per (key, period) behind striped mutexes (a reservation is a
/// few additions under an uncontended lock).
class LocalSpendLedger final : public SpendLedger {
 public:
  /// `soft_threshold_percent` of the budget marks the soft threshold (default 80).
  explicit LocalSpendLedger(unsigned soft_threshold_percent = 80)
      : soft_percent_(soft_threshold_percent) {}

  void settle(Reservation& r, core::Money actual, SettlementListener& listener) override;
  boost::asio::awaitable<void> release(Reservation& r, SettlementListener& listener) override;
  void abandon(Reservation& r) noexcept override;

  [[nodiscard]] bool loaded(std::string_view key_id, std::string_view period_id);
  /// Seeds a key's period with the spend already recorded (from the store). Ignored if the
  /// period is loaded already (the ledger then knows more than the store).
  void load(std::string_view key_id, std::string_view period_id, core::Money spent);
  /// Reserves `amount` unless it would take spent + reserved past `budget`. A zero amount is
  /// always granted: a free call is never blocked, even by an exhausted budget.
  ReserveResult reserve(std::string_view key_id, std::string_view period_id, core::Money budget,
                        core::Money amount, Reservation& out);
  /// Replaces the reservation by the actual cost (it may be higher than reserved).
  Settled settle(Reservation& r, core::Money actual);
  /// Gives a reservation back unused (the call failed before costing anything).
  void release(Reservation& r);
  [[nodiscard]] core::Money spent(std::string_view key_id, std::string_view period_id);
  [[nodiscard]] core::Money reserved(std::string_view key_id, std::string_view period_id);

 private:
  /// One entry per key, holding its current period only: a new period starts from the store's
  /// figure (load) and the old one is no longer needed.
  struct Entry {
    std::string period_id;
    core::Money spent;
    core::Money reserved;
    core::Money budget;  ///< last budget seen (for the soft threshold)
    bool soft_crossed = false;
    std::uint64_t generation = 0;  ///< bumped by each (re)load: older holds no longer count
  };
  struct Hash {
    using is_transparent = void;
    std::size_t operator()(std::string_view s) const noexcept {
      return std::hash<std::string_view>{}(s);
    }
  };
  static constexpr std::size_t kStripes = 64;
  struct Stripe {
    std::mutex mutex;
    std::unordered_map<std::string, Entry, Hash, std::equal_to<>> entries;  ///< by key id
  };
  Stripe& stripe(std::string_view key_id) { return stripes_[Hash{}(key_id) % kStripes]; }

  unsigned soft_percent_;
  Stripe stripes_[kStripes];
};

}  // namespace llmgw::limits
