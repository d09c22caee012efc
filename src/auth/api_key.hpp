#pragma once
/// Gateway API keys: 256 random bits behind a recognisable prefix, stored only as SHA-256.

#include <array>
#include <cstring>
#include <cstddef>
#include <functional>
#include <string>
#include <string_view>

namespace llmgw::auth {

inline constexpr std::string_view kKeyPrefix = "sk-llmgw-";
/// Characters of the key kept for display ("sk-llmgw-AbCd").
inline constexpr std::size_t kDisplayPrefixLength = kKeyPrefix.size() + 4;

using KeyDigest = std::array<unsigned char, 32>;

struct KeyDigestHash {
  std::size_t operator()(const KeyDigest& d) const noexcept {
    std::size_t h;
    static_assert(sizeof h <= sizeof(KeyDigest));
    std::memcpy(&h, d.data(), sizeof h);  // already uniformly random
    return h;
  }
};

struct NewApiKey {
  std::string plaintext;  ///< shown once, never stored
  std::string hash_hex;
  std::string display_prefix;
};

/// A fresh key from the CSPRNG. Throws if the CSPRNG fails.
NewApiKey generate_api_key();

/// SHA-256 of the key bytes (whatever their shape: unknown keys are hashed the same way).
KeyDigest digest_api_key(std::string_view key) noexcept;
std::string digest_hex(const KeyDigest& d);
/// Parses 64 hex digits; false if malformed.
bool parse_digest_hex(std::string_view hex, KeyDigest& out) noexcept;

/// Extracts the key from `Authorization: Bearer KEY` (scheme case-insensitive) or `api-key`.
std::string_view extract_api_key(std::string_view authorization, std::string_view api_key_header);

}  // namespace llmgw::auth
