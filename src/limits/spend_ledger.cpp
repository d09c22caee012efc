#include "limits/spend_ledger.hpp"

namespace llmgw::limits {

bool LocalSpendLedger::loaded(std::string_view key_id, std::string_view period_id) {
  Stripe& s = stripe(key_id);
  std::lock_guard lock(s.mutex);
  auto it = s.entries.find(key_id);
  return it != s.entries.end() && it->second.period_id == period_id;
}

void LocalSpendLedger::load(std::string_view key_id, std::string_view period_id,
                            core::Money spent) {
  Stripe& s = stripe(key_id);
  std::lock_guard lock(s.mutex);
  auto [it, inserted] = s.entries.try_emplace(std::string(key_id));
  Entry& e = it->second;
  if (!inserted && e.period_id == period_id) {
    return;  // already loaded: the ledger knows more than the store
  }
  // A slow load of a period that has already ended must not replace the current one (ids of
  // one kind sort in time order: "2026-11-27" < "2026-11-28", "2026-W48" < "2026-W49").
  if (!inserted && e.period_id.size() == period_id.size() && period_id < e.period_id) {
    return;
  }
  // A new key, or a new period. Reservations still held for the old period settle there
  // (settle() checks the period) and no longer count against the new one.
  e = Entry{std::string(period_id), spent, {}, {}, false, e.generation + 1};
}

ReserveResult LocalSpendLedger::reserve(std::string_view key_id, std::string_view period_id,
                                        core::Money budget, core::Money amount,
                                        Reservation& out) {
  Stripe& s = stripe(key_id);
  std::lock_guard lock(s.mutex);
  auto it = s.entries.find(key_id);
  if (it == s.entries.end() || it->second.period_id != period_id) {
    return ReserveResult::NotLoaded;
  }
  Entry& e = it->second;
  e.budget = budget;
  if (!amount.is_zero() && e.spent + e.reserved + amount > budget) {
    return ReserveResult::OverBudget;
  }
  e.reserved += amount;
  out = Reservation{std::string(key_id), std::string(period_id), amount, true, e.generation,
                    budget, {}};
  return ReserveResult::Ok;
}

Settled LocalSpendLedger::settle(Reservation& r, core::Money actual) {
  Settled result;
  if (!r.active) {
    return result;
  }
  r.active = false;
  Stripe& s = stripe(r.key_id);
  std::lock_guard lock(s.mutex);
  auto it = s.entries.find(r.key_id);
  if (it == s.entries.end() || it->second.period_id != r.period_id ||
      it->second.generation != r.generation) {
    return result;  // the period ended (or was reloaded) meanwhile: the store has the spend
  }
  Entry& e = it->second;
  e.reserved -= r.amount;
  e.spent += actual;
  result.spent = e.spent;
  result.budget = e.budget;
  if (!e.soft_crossed && !e.budget.is_zero() &&
      e.spent * 100 >= e.budget * static_cast<std::int64_t>(soft_percent_)) {
    e.soft_crossed = true;
    result.crossed_soft_threshold = true;
  }
  return result;
}

void LocalSpendLedger::release(Reservation& r) {
  if (!r.active) {
    return;
  }
  r.active = false;
  Stripe& s = stripe(r.key_id);
  std::lock_guard lock(s.mutex);
  auto it = s.entries.find(r.key_id);
  if (it != s.entries.end() && it->second.period_id == r.period_id &&
      it->second.generation == r.generation) {
    it->second.reserved -= r.amount;
  }
}

core::Money LocalSpendLedger::spent(std::string_view key_id, std::string_view period_id) {
  Stripe& s = stripe(key_id);
  std::lock_guard lock(s.mutex);
  auto it = s.entries.find(key_id);
  return (it == s.entries.end() || it->second.period_id != period_id) ? core::Money{}
                                                                       : it->second.spent;
}

core::Money LocalSpendLedger::reserved(std::string_view key_id, std::string_view period_id) {
  Stripe& s = stripe(key_id);
  std::lock_guard lock(s.mutex);
  auto it = s.entries.find(key_id);
  return (it == s.entries.end() || it->second.period_id != period_id) ? core::Money{}
                                                                       : it->second.reserved;
}

void LocalSpendLedger::settle(Reservation& r, core::Money actual, SettlementListener& listener) {
  const Settled settled = settle(r, actual);
  if (settled.crossed_soft_threshold) {
    listener.soft_threshold_crossed(r.key_id, r.period_id, settled);
  }
}

boost::asio::awaitable<void> LocalSpendLedger::release(Reservation& r, SettlementListener&) {
  release(r);
  co_return;
}

void LocalSpendLedger::abandon(Reservation& r) noexcept { release(r); }

}  // namespace llmgw::limits
