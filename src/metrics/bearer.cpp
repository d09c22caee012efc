#include "metrics/bearer.hpp"

#include <openssl/crypto.h>
#include <openssl/sha.h>

namespace llmgw::metrics {

namespace {

std::array<std::uint8_t, 32> sha256(std::string_view s) noexcept {
  std::array<std::uint8_t, 32> d{};
  SHA256(reinterpret_cast<const unsigned char*>(s.data()), s.size(), d.data());
  return d;
}

bool iequals(std::string_view a, std::string_view b) noexcept {
  if (a.size() != b.size()) {
    return false;
  }
  for (std::size_t i = 0; i < a.size(); ++i) {
    const auto lower = [](char c) { return c >= 'A' && c <= 'Z' ? static_cast<char>(c + 32) : c; };
    if (lower(a[i]) != lower(b[i])) {
      return false;
    }
  }
  return true;
}

}  // namespace

BearerCheck::BearerCheck(std::string_view token)
    : required_(!token.empty()), digest_(sha256(token)) {}

bool BearerCheck::allows(std::string_view authorization) const noexcept {
  if (!required_) {
    return true;
  }
  constexpr std::string_view kScheme = "bearer";
  if (authorization.size() <= kScheme.size() ||
      !iequals(authorization.substr(0, kScheme.size()), kScheme) ||
      authorization[kScheme.size()] != ' ') {
    return false;
  }
  std::string_view token = authorization.substr(kScheme.size() + 1);
  while (!token.empty() && token.front() == ' ') {
    token.remove_prefix(1);
  }
  while (!token.empty() && (token.back() == ' ' || token.back() == '\t')) {
    token.remove_suffix(1);
  }
  if (token.empty()) {
    return false;
  }
  const auto got = sha256(token);
  return CRYPTO_memcmp(got.data(), digest_.data(), got.size()) == 0;
}

}  // namespace llmgw::metrics
