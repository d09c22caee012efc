#include "limits/spend_ledger.hpp"

namespace llmgw::limits {

bool LocalSpendLedger::loaded(const std::string& key_id, const std::string& period_id) {
  const std::string k = entry_key(key_id, period_id);
  Stripe& s = stripe(k);
  std::lock_guard lock(s.mutex);
  return s.entries.contains(k);
}

void LocalSpendLedger::load(const std::string& key_id, const std::string& period_id,
                            core::Money spent) {
  const std::string k = entry_key(key_id, period_id);
  Stripe& s = stripe(k);
  std::lock_guard lock(s.mutex);
  s.entries.try_emplace(k, Entry{spent, {}, {}, false});
}

ReserveResult LocalSpendLedger::reserve(const std::string& key_id, const std::string& period_id,
                                        core::Money budget, core::Money amount,
                                        Reservation& out) {
  const std::string k = entry_key(key_id, period_id);
  Stripe& s = stripe(k);
  std::lock_guard lock(s.mutex);
  auto it = s.entries.find(k);
  if (it == s.entries.end()) {
    return ReserveResult::NotLoaded;
  }
  Entry& e = it->second;
  e.budget = budget;
  if (!amount.is_zero() && e.spent + e.reserved + amount > budget) {
    return ReserveResult::OverBudget;
  }
  e.reserved += amount;
  out = Reservation{key_id, period_id, amount, true};
  return ReserveResult::Ok;
}

Settled LocalSpendLedger::settle(Reservation& r, core::Money actual) {
  Settled result;
  if (!r.active) {
    return result;
  }
  const std::string k = entry_key(r.key_id, r.period_id);
  Stripe& s = stripe(k);
  std::lock_guard lock(s.mutex);
  Entry& e = s.entries[k];
  e.reserved -= r.amount;
  e.spent += actual;
  r.active = false;
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
  const std::string k = entry_key(r.key_id, r.period_id);
  Stripe& s = stripe(k);
  std::lock_guard lock(s.mutex);
  s.entries[k].reserved -= r.amount;
  r.active = false;
}

core::Money LocalSpendLedger::spent(const std::string& key_id, const std::string& period_id) {
  const std::string k = entry_key(key_id, period_id);
  Stripe& s = stripe(k);
  std::lock_guard lock(s.mutex);
  auto it = s.entries.find(k);
  return it == s.entries.end() ? core::Money{} : it->second.spent;
}

core::Money LocalSpendLedger::reserved(const std::string& key_id, const std::string& period_id) {
  const std::string k = entry_key(key_id, period_id);
  Stripe& s = stripe(k);
  std::lock_guard lock(s.mutex);
  auto it = s.entries.find(k);
  return it == s.entries.end() ? core::Money{} : it->second.reserved;
}

}  // namespace llmgw::limits
