#pragma once
/// The optional bearer token of GET /metrics (METRICS_TOKEN).

#include <array>
#include <cstdint>
#include <string_view>

namespace llmgw::metrics {

class BearerCheck {
 public:
  /// An empty token lets every scrape through. Only the token's SHA-256 is kept.
  explicit BearerCheck(std::string_view token);

  /// Whether an `Authorization` header value ("Bearer <token>", scheme case-insensitive)
  /// carries the token. The comparison is of SHA-256 digests, in constant time, so neither
  /// the token's content nor its length shows in the timing.
  [[nodiscard]] bool allows(std::string_view authorization) const noexcept;
  [[nodiscard]] bool required() const noexcept { return required_; }

 private:
  bool required_ = false;
  std::array<std::uint8_t, 32> digest_{};
};

}  // namespace llmgw::metrics
