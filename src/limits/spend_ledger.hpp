#pragma once
/// Budgets that concurrency cannot overrun: reserve the worst case before the call, settle to
/// the actual cost after it. `SpendLedger` is the interface; `LocalSpendLedger` (embedded
/// default) keeps the ledger in process, a Redis implementation serves several replicas.

#include "core/money.hpp"
#include "limits/budget_period.hpp"

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

class SpendLedger {
 public:
  virtual ~SpendLedger() = default;
  [[nodiscard]] virtual bool loaded(const std::string& key_id, const std::string& period_id) = 0;
  /// Seeds a key's period with the spend already recorded (from the store). Ignored if the
  /// period is loaded already (the ledger then knows more than the store).
  virtual void load(const std::string& key_id, const std::string& period_id, core::Money spent) = 0;
  /// Reserves `amount` unless it would take spent + reserved past `budget`. A zero amount is
  /// always granted: a free call is never blocked, even by an exhausted budget.
  virtual ReserveResult reserve(const std::string& key_id, const std::string& period_id,
                                core::Money budget, core::Money amount, Reservation& out) = 0;
  /// Replaces the reservation by the actual cost (it may be higher than reserved).
  virtual Settled settle(Reservation& r, core::Money actual) = 0;
  /// Gives a reservation back unused (the call failed before costing anything).
  virtual void release(Reservation& r) = 0;
  [[nodiscard]] virtual core::Money spent(const std::string& key_id,
                                          const std::string& period_id) = 0;
  [[nodiscard]] virtual core::Money reserved(const std::string& key_id,
                                             const std::string& period_id) = 0;
};

/// In-process ledger: one entry per (key, period) behind striped mutexes (a reservation is a
/// few additions under an uncontended lock).
class LocalSpendLedger final : public SpendLedger {
 public:
  /// `soft_threshold_percent` of the budget marks the soft threshold (default 80).
  explicit LocalSpendLedger(unsigned soft_threshold_percent = 80)
      : soft_percent_(soft_threshold_percent) {}

  bool loaded(const std::string& key_id, const std::string& period_id) override;
  void load(const std::string& key_id, const std::string& period_id, core::Money spent) override;
  ReserveResult reserve(const std::string& key_id, const std::string& period_id,
                        core::Money budget, core::Money amount, Reservation& out) override;
  Settled settle(Reservation& r, core::Money actual) override;
  void release(Reservation& r) override;
  core::Money spent(const std::string& key_id, const std::string& period_id) override;
  core::Money reserved(const std::string& key_id, const std::string& period_id) override;

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
