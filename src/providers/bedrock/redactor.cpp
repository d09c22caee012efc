#include "providers/bedrock/redactor.hpp"

#include <algorithm>

namespace llmgw::providers::bedrock {

namespace {

/// Secrets shorter than this are not searched for: they would blot out ordinary words.
constexpr std::size_t kMinSecretBytes = 8;

bool is_continuation(char c) noexcept { return (static_cast<unsigned char>(c) & 0xC0) == 0x80; }

}  // namespace

Redactor::Redactor(std::vector<std::string> secrets) : secrets_(std::move(secrets)) {
  std::erase_if(secrets_, [](const std::string& s) { return s.size() < kMinSecretBytes; });
  // Longest first: a secret that contains another is blotted out whole.
  std::sort(secrets_.begin(), secrets_.end(),
            [](const std::string& a, const std::string& b) { return a.size() > b.size(); });
}

std::string Redactor::clean(std::string_view message) const {
  std::string out(message);
  for (const auto& secret : secrets_) {
    for (std::size_t at = out.find(secret); at != std::string::npos;
         at = out.find(secret, at + 1)) {
      out.replace(at, secret.size(), "[redacted]");
    }
  }
  for (const std::string_view blank : {"\n\n", "\r\n\r\n"}) {
    if (const std::size_t at = out.find(blank); at != std::string::npos) {
      out.resize(at);
    }
  }
  if (out.size() > kMaxMessageBytes) {
    std::size_t end = kMaxMessageBytes;
    while (end > 0 && is_continuation(out[end])) {
      --end;
    }
    out.resize(end);
  }
  return out;
}

}  // namespace llmgw::providers::bedrock
