#include "auth/api_key.hpp"

#include "core/ids.hpp"

#include <openssl/evp.h>

namespace llmgw::auth {

NewApiKey generate_api_key() {
  std::array<unsigned char, 32> raw{};
  core::secure_random(raw);
  NewApiKey k;
  k.plaintext = std::string(kKeyPrefix) + core::base64url(raw);
  k.hash_hex = digest_hex(digest_api_key(k.plaintext));
  k.display_prefix = k.plaintext.substr(0, kDisplayPrefixLength);
  return k;
}

KeyDigest digest_api_key(std::string_view key) noexcept {
  // The algorithm is fetched once and the context kept per thread: EVP_Digest() looks the
  // algorithm up and allocates a context on every call, which cost more than the hashing.
  static EVP_MD* const kSha256 = EVP_MD_fetch(nullptr, "SHA256", nullptr);
  struct Ctx {
    EVP_MD_CTX* ctx = EVP_MD_CTX_new();
    ~Ctx() { EVP_MD_CTX_free(ctx); }
  };
  thread_local Ctx t;
  KeyDigest d{};
  unsigned int len = 0;
  if (EVP_DigestInit_ex2(t.ctx, kSha256, nullptr) != 1 ||
      EVP_DigestUpdate(t.ctx, key.data(), key.size()) != 1 ||
      EVP_DigestFinal_ex(t.ctx, d.data(), &len) != 1) {
    d.fill(0xFF);  // unreachable in practice; no key hashes to all ones
  }
  return d;
}

std::string digest_hex(const KeyDigest& d) { return core::to_hex(d); }

bool parse_digest_hex(std::string_view hex, KeyDigest& out) noexcept {
  if (hex.size() != 64) {
    return false;
  }
  auto nibble = [](char c) -> int {
    if (c >= '0' && c <= '9') {
      return c - '0';
    }
    if (c >= 'a' && c <= 'f') {
      return c - 'a' + 10;
    }
    if (c >= 'A' && c <= 'F') {
      return c - 'A' + 10;
    }
    return -1;
  };
  for (std::size_t i = 0; i < 32; ++i) {
    const int hi = nibble(hex[2 * i]);
    const int lo = nibble(hex[2 * i + 1]);
    if (hi < 0 || lo < 0) {
      return false;
    }
    out[i] = static_cast<unsigned char>((hi << 4) | lo);
  }
  return true;
}

std::string_view extract_api_key(std::string_view authorization, std::string_view api_key_header) {
  auto trim = [](std::string_view s) {
    while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) {
      s.remove_prefix(1);
    }
    while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) {
      s.remove_suffix(1);
    }
    return s;
  };
  authorization = trim(authorization);
  if (authorization.size() > 7) {
    const std::string_view scheme = authorization.substr(0, 7);
    bool bearer = true;
    constexpr std::string_view kBearer = "bearer ";
    for (std::size_t i = 0; i < 7; ++i) {
      bearer = bearer && (scheme[i] | 0x20) == kBearer[i];
    }
    if (bearer) {
      return trim(authorization.substr(7));
    }
  }
  return trim(api_key_header);
}

}  // namespace llmgw::auth
