#pragma once
/// The keys seen in one JSON object, to refuse a repeated one while a SAX handler walks a
/// request body (providers/openai.cpp, providers/messages/request.cpp).

#include <array>
#include <cstddef>
#include <cstdint>
#include <forward_list>
#include <string>
#include <string_view>
#include <unordered_set>

namespace llmgw::core {

/// Keys written without escapes are kept as views into the request body (the parser hands
/// those over in place); only a key the parser decoded is copied. The first kLinearLimit are
/// compared one by one, in place; past that a hash set takes over, so a hostile body with
/// thousands of keys costs linear time. No allocation for an ordinary request.
class KeySet {
 public:
  static constexpr std::size_t kLinearLimit = 16;

  explicit KeySet(std::string_view body) noexcept : body_(body) {}

  /// False when `key` is already in the set; else adds it.
  bool insert(std::string_view key) {
    if (!in_body(key)) {
      key = owned_.emplace_front(key);  // a list: earlier copies stay where they are
    }
    if (count_ < small_.size()) {
      for (std::size_t i = 0; i < count_; ++i) {
        if (small_[i] == key) {
          return false;
        }
      }
      small_[count_++] = key;
      return true;
    }
    if (large_.empty()) {
      large_.insert(small_.begin(), small_.end());
    }
    return large_.insert(key).second;
  }

 private:
  [[nodiscard]] bool in_body(std::string_view key) const noexcept {
    const auto b = reinterpret_cast<std::uintptr_t>(body_.data());
    const auto k = reinterpret_cast<std::uintptr_t>(key.data());
    return k >= b && k + key.size() <= b + body_.size();
  }

  std::string_view body_;
  std::array<std::string_view, kLinearLimit> small_{};
  std::size_t count_ = 0;
  std::unordered_set<std::string_view> large_;
  std::forward_list<std::string> owned_;  ///< empty (no allocation) unless a key was decoded
};

}  // namespace llmgw::core
