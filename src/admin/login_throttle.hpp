#pragma once
/// Failed sign-ins per email / service name and per client address, over a sliding minute.

#include <cstddef>
#include <cstdint>
#include <deque>
#include <mutex>
#include <string>
#include <unordered_map>

namespace llmgw::admin {

class LoginThrottle {
 public:
  explicit LoginThrottle(unsigned max) : max_(max) {}

  /// Seconds until `key` may try again; 0: now.
  std::int64_t retry_after(const std::string& key, std::int64_t now_ms);
  void failed(const std::string& key, std::int64_t now_ms);

 private:
  static constexpr std::int64_t kWindowMs = 60'000;
  static constexpr std::size_t kMaxTracked = 100'000;
  static void prune(std::deque<std::int64_t>& q, std::int64_t now_ms);
  unsigned max_;
  std::mutex mutex_;
  std::unordered_map<std::string, std::deque<std::int64_t>> failures_;
  std::int64_t full_until_ms_ = 0;
};

}  // namespace llmgw::admin
