#pragma once
/// The admin plane's cryptography, on OpenSSL and libargon2 (never hand-rolled primitives):
/// HS256 JWTs, Argon2id password/token hashes, AES-256-GCM for secrets at rest. Checked
/// against RFC 7515 A.1, RFC 9106 and Wycheproof vectors (tests/unit/auth/crypto_test.cpp).

#include "core/ids.hpp"

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace llmgw::auth {

using Bytes = std::vector<unsigned char>;

using core::base64url_decode;

// --- JWT (HS256 only)

/// `header.payload.signature` for the given JSON payload, header {"alg":"HS256","typ":"JWT"}.
std::string jwt_sign_hs256(std::string_view payload_json, std::span<const unsigned char> key);
/// HMAC-SHA256 of `signing_input`, base64url.
std::string hs256_signature(std::string_view signing_input, std::span<const unsigned char> key);

enum class JwtError : std::uint8_t {
  Malformed,      ///< not three base64url parts of JSON objects
  Algorithm,      ///< alg is not HS256 ("none" included)
  Signature,      ///< does not verify (compared in constant time)
  Expired,        ///< exp <= now
  NotYetValid,    ///< nbf > now
};

/// Verifies a token's structure, algorithm and signature, then exp/nbf against `now_unix`
/// (both optional claims; a non-numeric one is Malformed). Returns the payload JSON.
std::optional<std::string> jwt_verify_hs256(std::string_view token,
                                            std::span<const unsigned char> key,
                                            std::int64_t now_unix, JwtError* error = nullptr);

// --- Argon2

struct Argon2Params {
  std::uint32_t iterations = 1;          ///< t
  std::uint32_t memory_kib = 64 * 1024;  ///< m (64 MiB)
  std::uint32_t parallelism = 4;         ///< p
  std::uint32_t tag_length = 32;
};

/// Argon2id PHC string ("$argon2id$v=19$m=…,t=…,p=…$salt$tag") with a random 16-byte salt.
/// Throws std::runtime_error if libargon2 fails (e.g. memory).
std::string argon2id_hash(std::string_view password, const Argon2Params& params = {});
/// Constant-time verification of `password` against a PHC string (false for a bad string).
bool argon2id_verify(std::string_view password, const std::string& encoded);

enum class Argon2Type : std::uint8_t { D, I, ID };
/// Raw Argon2 (v1.3) with optional secret and associated data, for the RFC 9106 vectors.
Bytes argon2_raw(Argon2Type type, std::span<const unsigned char> password,
                 std::span<const unsigned char> salt, std::span<const unsigned char> secret,
                 std::span<const unsigned char> associated_data, const Argon2Params& params);

/// Compares two secrets (or values derived from them) without a timing side channel.
bool constant_time_equal(std::string_view a, std::string_view b) noexcept;

// --- AES-256-GCM

/// Encrypts with a 32-byte key; returns ciphertext and a 16-byte tag. nullopt on bad sizes
/// (key not 32 bytes, IV empty).
std::optional<std::pair<Bytes, Bytes>> aes256gcm_encrypt(std::span<const unsigned char> key,
                                                          std::span<const unsigned char> iv,
                                                          std::span<const unsigned char> aad,
                                                          std::span<const unsigned char> plaintext);
/// Decrypts and authenticates; nullopt if the tag does not match (or on bad sizes).
std::optional<Bytes> aes256gcm_decrypt(std::span<const unsigned char> key,
                                       std::span<const unsigned char> iv,
                                       std::span<const unsigned char> aad,
                                       std::span<const unsigned char> ciphertext,
                                       std::span<const unsigned char> tag);

/// Secrets at rest: random 12-byte nonce || ciphertext || tag, base64url; `aad` binds the
/// sealed value to its place (e.g. the provider id).
std::string seal_secret(std::span<const unsigned char> key, std::string_view plaintext,
                        std::string_view aad);
std::optional<std::string> open_secret(std::span<const unsigned char> key, std::string_view sealed,
                                       std::string_view aad);

}  // namespace llmgw::auth
