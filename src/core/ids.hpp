#pragma once
/// Identifiers and randomness: cryptographic bytes for secrets, a fast per-thread generator
/// for request ids, hex and base64url encoding, and the clock the gateway reads.

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <optional>
#include <string_view>
#include <vector>

namespace llmgw::core {

/// Fills `out` from OpenSSL's CSPRNG. Throws std::runtime_error if it fails (start-up/CLI).
void secure_random(std::span<unsigned char> out);

std::string to_hex(std::span<const unsigned char> bytes);
std::string base64url(std::span<const unsigned char> bytes);  ///< no padding
/// Inverse of base64url (no padding, canonical trailing bits); nullopt if malformed.
std::optional<std::vector<unsigned char>> base64url_decode(std::string_view s);

/// `prefix` + 16 lowercase hex digits from the CSPRNG, e.g. "key_3f9a…".
std::string new_id(std::string_view prefix);

/// A 32-hex-digit request id: 12 digits of the Unix time in milliseconds, then 20 random
/// digits (80 bits) from a per-thread generator seeded by the CSPRNG. Ids sort by time, so
/// the store's unique index on usage_records.request_id grows at its end instead of at a
/// random page per insert. Appends to `out` (no allocation when `out` has capacity).
void append_request_id(std::string& out);
/// The same with the time given (tests).
void append_request_id(std::string& out, std::int64_t unix_ms);

/// Wall clock as unix microseconds / seconds.
inline std::int64_t unix_micros() {
  return std::chrono::duration_cast<std::chrono::microseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}
inline std::int64_t unix_seconds() { return unix_micros() / 1'000'000; }

/// Formats unix seconds as RFC 3339 UTC ("2026-01-02T03:04:05Z").
std::string format_utc(std::int64_t unix_seconds);
/// Parses an RFC 3339 time ("2027-01-01T02:00:00.000+02:00", "…Z", fractions of a second
/// dropped) or a date ("2027-01-01", midnight UTC) into unix seconds, from 1970 to 9999;
/// false for anything else.
bool parse_utc(std::string_view text, std::int64_t& unix_seconds);

}  // namespace llmgw::core
