#include "core/ids.hpp"

#include <chrono>

#include <date/date.h>

#include <openssl/evp.h>
#include <openssl/rand.h>

#include <array>
#include <charconv>
#include <cstring>
#include <ctime>
#include <optional>
#include <sstream>
#include <vector>
#include <stdexcept>

namespace llmgw::core {

void secure_random(std::span<unsigned char> out) {
  if (RAND_bytes(out.data(), static_cast<int>(out.size())) != 1) {
    throw std::runtime_error("the system random generator failed");
  }
}

std::string to_hex(std::span<const unsigned char> bytes) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string s;
  s.reserve(bytes.size() * 2);
  for (unsigned char b : bytes) {
    s.push_back(kHex[b >> 4]);
    s.push_back(kHex[b & 0xF]);
  }
  return s;
}

std::string base64url(std::span<const unsigned char> bytes) {
  // OpenSSL's base64, then the URL-safe alphabet without padding (RFC 4648 section 5).
  std::string s(4 * ((bytes.size() + 2) / 3), '\0');
  const int n = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(s.data()), bytes.data(),
                                static_cast<int>(bytes.size()));
  s.resize(static_cast<std::size_t>(n));
  while (!s.empty() && s.back() == '=') {
    s.pop_back();
  }
  for (char& c : s) {
    c = c == '+' ? '-' : c == '/' ? '_' : c;
  }
  return s;
}

std::optional<std::vector<unsigned char>> base64url_decode(std::string_view s) {
  if (s.size() % 4 == 1) {
    return std::nullopt;
  }
  // Only the URL-safe alphabet (OpenSSL would also take '+', '/' and surrounding spaces).
  std::string b64(s);
  for (char& c : b64) {
    const bool alnum = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
    if (!alnum && c != '-' && c != '_') {
      return std::nullopt;
    }
    c = c == '-' ? '+' : c == '_' ? '/' : c;
  }
  const std::size_t pad = (4 - b64.size() % 4) % 4;
  b64.append(pad, '=');
  std::vector<unsigned char> out(b64.size() / 4 * 3);
  const int n = EVP_DecodeBlock(out.data(), reinterpret_cast<const unsigned char*>(b64.data()),
                                static_cast<int>(b64.size()));
  if (n < 0 || static_cast<std::size_t>(n) < pad) {
    return std::nullopt;
  }
  out.resize(static_cast<std::size_t>(n) - pad);  // EVP_DecodeBlock counts the padding as zeros
  if (base64url(out) != s) {
    return std::nullopt;  // non-canonical trailing bits
  }
  return out;
}

std::string new_id(std::string_view prefix) {
  std::array<unsigned char, 8> b{};
  secure_random(b);
  return std::string(prefix) + to_hex(b);
}

namespace {
/// xoshiro256** — fast, and seeded per thread from the CSPRNG; ids need uniqueness, not secrecy.
struct Xoshiro {
  std::uint64_t s[4];
  Xoshiro() {
    std::array<unsigned char, sizeof(s)> seed{};
    secure_random(seed);
    std::memcpy(s, seed.data(), sizeof(s));
  }
  static std::uint64_t rotl(std::uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }
  std::uint64_t next() {
    const std::uint64_t result = rotl(s[1] * 5, 7) * 9;
    const std::uint64_t t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 45);
    return result;
  }
};
}  // namespace

void append_request_id(std::string& out) {
  append_request_id(out, std::chrono::duration_cast<std::chrono::milliseconds>(
                             std::chrono::system_clock::now().time_since_epoch())
                             .count());
}

void append_request_id(std::string& out, std::int64_t unix_ms) {
  static thread_local Xoshiro rng;
  static constexpr char kHex[] = "0123456789abcdef";
  const auto ms = static_cast<std::uint64_t>(unix_ms);
  for (int shift = 44; shift >= 0; shift -= 4) {  // 12 digits, most significant first
    out.push_back(kHex[(ms >> shift) & 0xF]);
  }
  std::uint64_t v = rng.next();
  for (int i = 0; i < 16; ++i) {
    out.push_back(kHex[v & 0xF]);
    v >>= 4;
  }
  v = rng.next();
  for (int i = 0; i < 4; ++i) {
    out.push_back(kHex[v & 0xF]);
    v >>= 4;
  }
}

std::string format_utc(std::int64_t t) {
  const std::time_t tt = static_cast<std::time_t>(t);
  std::tm tm{};
  gmtime_r(&tt, &tm);
  char buf[32];
  const std::size_t n = std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return std::string(buf, n);
}

namespace {

/// 10000-01-01T00:00:00Z: RFC 3339 years have four digits.
constexpr std::int64_t kYear10000 = 253'402'300'800;

bool is_digit(char c) noexcept {
  return c >= '0' && c <= '9';
}

/// True when `s` matches `pattern`, where 'd' is a digit and any other byte itself.
bool shaped(std::string_view s, std::string_view pattern) noexcept {
  if (s.size() != pattern.size()) {
    return false;
  }
  for (std::size_t i = 0; i < s.size(); ++i) {
    if (pattern[i] == 'd' ? !is_digit(s[i]) : s[i] != pattern[i]) {
      return false;
    }
  }
  return true;
}

}  // namespace

bool parse_utc(std::string_view s, std::int64_t& out) {
  // RFC 3339 (section 5.6): full-date, or full-date "T" partial-time time-offset, where
  // partial-time may carry a fraction and time-offset is "Z" or ±hh:mm; "t", "z" and a space
  // for "T" are allowed as the RFC allows them. Only the shape is checked here: the calendar
  // (days per month, leap years, hours, offsets) is Howard Hinnant's date library's to judge.
  std::string text;
  if (shaped(s, "dddd-dd-dd")) {
    text.assign(s);
    text += "T00:00:00+00:00";
  } else {
    if (s.size() < 20 || !shaped(s.substr(0, 10), "dddd-dd-dd") ||
        (s[10] != 'T' && s[10] != 't' && s[10] != ' ') || !shaped(s.substr(11, 8), "dd:dd:dd")) {
      return false;
    }
    std::string_view rest = s.substr(19);
    std::string_view fraction;
    if (rest.starts_with('.')) {
      std::size_t n = 1;
      while (n < rest.size() && is_digit(rest[n])) {
        ++n;
      }
      if (n == 1 || n > 10) {  // one to nine digits: nanoseconds at most
        return false;
      }
      fraction = rest.substr(0, n);
      rest.remove_prefix(n);
    }
    std::string_view offset = rest;
    if (offset == "Z" || offset == "z") {
      offset = "+00:00";
    } else if (offset.size() != 6 || (offset[0] != '+' && offset[0] != '-') ||
               !shaped(offset.substr(1), "dd:dd") ||
               offset.substr(1, 2) > "23" || offset.substr(4, 2) > "59") {
      return false;  // the library would take +25:00; RFC 3339's time-numoffset does not
    }
    text.assign(s.substr(0, 10));
    text += 'T';
    text.append(s.substr(11, 8));
    text.append(fraction);
    text.append(offset);
  }
  std::istringstream in(text);
  date::sys_time<std::chrono::nanoseconds> t;
  in >> date::parse("%Y-%m-%dT%H:%M:%S%Ez", t);
  if (in.fail() || in.peek() != std::char_traits<char>::eof()) {
    return false;
  }
  const auto secs = std::chrono::floor<std::chrono::seconds>(t).time_since_epoch().count();
  if (secs < 0 || secs >= kYear10000) {
    return false;
  }
  out = static_cast<std::int64_t>(secs);
  return true;
}

}  // namespace llmgw::core
