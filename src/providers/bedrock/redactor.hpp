#pragma once
/// Cleans a provider's error message before anyone sees it: a Bedrock signature error quotes
/// the canonical request, X-Amz-Security-Token included, so the message is cut at its first
/// blank line, bounded, and every secret the adapter holds is blotted out wherever it appears.

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

namespace llmgw::providers::bedrock {

class Redactor {
 public:
  static constexpr std::size_t kMaxMessageBytes = 1024;

  /// `secrets`: the values never to show (empty ones are ignored).
  explicit Redactor(std::vector<std::string> secrets);

  /// `message` cut at its first blank line and at kMaxMessageBytes (on a UTF-8 boundary), with
  /// each secret replaced by "[redacted]".
  [[nodiscard]] std::string clean(std::string_view message) const;

 private:
  std::vector<std::string> secrets_;
};

}  // namespace llmgw::providers::bedrock
