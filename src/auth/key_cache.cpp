#include "auth/key_cache.hpp"

#include <algorithm>

namespace llmgw::auth {

std::shared_ptr<const KeyInfo> KeyInfo::from_record(const store::ApiKeyRecord& r) {
  auto k = std::make_shared<KeyInfo>();
  k->id = r.id;
  k->name = r.name;
  k->enabled = r.enabled;
  k->expires_at = r.expires_at;
  k->rpm_limit = r.rpm_limit;
  k->tpm_limit = r.tpm_limit;
  k->max_concurrent = r.max_concurrent;
  if (r.budget_usd) {
    k->budget = core::Money::parse(*r.budget_usd);  // validated on the way in
  }
  k->budget_period = r.budget_period;
  k->allowed_models.insert(r.allowed_models.begin(), r.allowed_models.end());
  core::AuditBodies mode{};
  if (r.audit_bodies && core::parse_audit_bodies(*r.audit_bodies, mode)) {
    k->audit_bodies = mode;  // the store's CHECK allows nothing else
  }
  return k;
}

bool KeyInfo::allows(std::string_view model) const {
  if (allowed_models.empty()) {
    return true;
  }
  return allowed_models.contains(std::string(model));
}

void KeyInvalidations::publish(const std::vector<KeyDigest>& changed) {
  if (changed.empty()) {
    return;
  }
  std::lock_guard lock(mutex_);
  const std::uint64_t gen = generation_.load(std::memory_order_relaxed) + 1;
  for (const auto& d : changed) {
    log_.emplace_back(gen, d);
  }
  if (log_.size() > kMaxLog) {
    const std::size_t drop = log_.size() - kMaxLog;
    // Keep whole generations: a reader must never see half of one.
    std::size_t cut = drop;
    while (cut < log_.size() && log_[cut].first == log_[cut - 1].first) {
      ++cut;
    }
    oldest_ = log_[cut - 1].first;
    log_.erase(log_.begin(), log_.begin() + static_cast<std::ptrdiff_t>(cut));
  }
  generation_.store(gen, std::memory_order_release);
}

bool KeyInvalidations::changes_since(std::uint64_t since, std::vector<KeyDigest>& out) const {
  std::lock_guard lock(mutex_);
  if (since < oldest_) {
    return false;
  }
  auto it = std::upper_bound(log_.begin(), log_.end(), since,
                             [](std::uint64_t g, const auto& e) { return g < e.first; });
  for (; it != log_.end(); ++it) {
    out.push_back(it->second);
  }
  return true;
}

KeyCache::KeyCache(std::size_t capacity, const KeyInvalidations& inv)
    : capacity_(std::max<std::size_t>(capacity, 1)),
      inv_(inv),
      seen_generation_(inv.generation()) {}

void KeyCache::sync() {
  const std::uint64_t gen = inv_.generation();
  if (gen == seen_generation_) {
    return;
  }
  scratch_.clear();
  if (inv_.changes_since(seen_generation_, scratch_)) {
    for (const auto& d : scratch_) {
      if (auto it = map_.find(d); it != map_.end()) {
        lru_.erase(it->second.pos);
        map_.erase(it);
      }
    }
  } else {
    map_.clear();
    lru_.clear();
  }
  seen_generation_ = gen;
}

std::optional<std::shared_ptr<const KeyInfo>> KeyCache::find(const KeyDigest& d) {
  auto it = map_.find(d);
  if (it == map_.end()) {
    return std::nullopt;
  }
  lru_.splice(lru_.begin(), lru_, it->second.pos);
  return it->second.info;
}

void KeyCache::insert(const KeyDigest& d, std::shared_ptr<const KeyInfo> info,
                      std::uint64_t generation_at_lookup) {
  if (inv_.generation() != generation_at_lookup) {
    return;
  }
  if (auto it = map_.find(d); it != map_.end()) {
    it->second.info = std::move(info);
    lru_.splice(lru_.begin(), lru_, it->second.pos);
    return;
  }
  if (map_.size() >= capacity_) {
    map_.erase(lru_.back());
    lru_.pop_back();
  }
  lru_.push_front(d);
  map_.emplace(d, Entry{std::move(info), lru_.begin()});
}

}  // namespace llmgw::auth
