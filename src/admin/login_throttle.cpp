#include "admin/login_throttle.hpp"

#include <iterator>

namespace llmgw::admin {

std::int64_t LoginThrottle::retry_after(const std::string& key, std::int64_t now_ms) {
  std::lock_guard lock(mutex_);
  auto it = failures_.find(key);
  if (it == failures_.end()) {
    return now_ms < full_until_ms_ ? (full_until_ms_ - now_ms + 999) / 1000 : 0;
  }
  prune(it->second, now_ms);
  if (it->second.size() < max_) return 0;
  return (it->second.front() + kWindowMs - now_ms + 999) / 1000;
}

void LoginThrottle::failed(const std::string& key, std::int64_t now_ms) {
  std::lock_guard lock(mutex_);
  if (failures_.size() >= kMaxTracked && !failures_.contains(key)) {
    for (auto it = failures_.begin(); it != failures_.end();) {
      prune(it->second, now_ms);
      it = it->second.empty() ? failures_.erase(it) : std::next(it);
    }
    if (failures_.size() >= kMaxTracked) {
      full_until_ms_ = now_ms + kWindowMs;  // bounded memory: refuse unknown names a while
      return;
    }
  }
  auto& q = failures_[key];
  prune(q, now_ms);
  q.push_back(now_ms);
  if (q.size() > max_) q.pop_front();
}

void LoginThrottle::prune(std::deque<std::int64_t>& q, std::int64_t now_ms) {
  while (!q.empty() && q.front() + kWindowMs <= now_ms) q.pop_front();
}

}  // namespace llmgw::admin
