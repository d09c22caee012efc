#include "core/money.hpp"

#include <algorithm>

namespace llmgw::core {

namespace {
constexpr Money::Rep kMaxRep = ~(static_cast<unsigned __int128>(1) << 127);
}  // namespace

std::optional<Money> Money::parse(std::string_view s) {
  // digits [ "." digits ] [ ("e"|"E") ["+"|"-"] digits ]
  std::string digits;  // all significant digits, decimal point removed
  int frac = 0;        // digits after the point
  std::size_t i = 0;
  bool seen_digit = false;
  while (i < s.size() && s[i] >= '0' && s[i] <= '9') {
    digits.push_back(s[i++]);
    seen_digit = true;
  }
  if (i < s.size() && s[i] == '.') {
    ++i;
    while (i < s.size() && s[i] >= '0' && s[i] <= '9') {
      digits.push_back(s[i++]);
      ++frac;
      seen_digit = true;
    }
  }
  if (!seen_digit) {
    return std::nullopt;
  }
  int exp = 0;
  if (i < s.size() && (s[i] == 'e' || s[i] == 'E')) {
    ++i;
    bool neg = false;
    if (i < s.size() && (s[i] == '+' || s[i] == '-')) {
      neg = s[i++] == '-';
    }
    if (i >= s.size()) {
      return std::nullopt;
    }
    while (i < s.size() && s[i] >= '0' && s[i] <= '9') {
      exp = exp * 10 + (s[i++] - '0');
      if (exp > 100) {
        return std::nullopt;
      }
    }
    exp = neg ? -exp : exp;
  }
  if (i != s.size()) {
    return std::nullopt;
  }
  // value = digits * 10^(exp - frac); in units: digits * 10^(exp - frac + 24)
  int shift = exp - frac + kDecimals;
  // Trailing zeros beyond the last representable decimal are harmless: drop them.
  while (shift < 0 && !digits.empty() && digits.back() == '0') {
    digits.pop_back();
    ++shift;
  }
  if (shift < 0) {
    return std::nullopt;  // finer than 1e-24 USD
  }
  Rep v = 0;
  for (char c : digits) {
    if (v > (kMaxRep - (c - '0')) / 10) {
      return std::nullopt;
    }
    v = v * 10 + (c - '0');
  }
  for (int k = 0; k < shift; ++k) {
    if (v > kMaxRep / 10) {
      return std::nullopt;
    }
    v *= 10;
  }
  return Money(v);
}

std::string Money::to_string(int min_decimals) const {
  const bool negative = units_ < 0;
  unsigned __int128 v = negative ? static_cast<unsigned __int128>(-units_)
                                 : static_cast<unsigned __int128>(units_);
  std::string rev;
  for (int n = 0; n < kDecimals || v != 0; ++n) {
    rev.push_back(static_cast<char>('0' + static_cast<int>(v % 10)));
    v /= 10;
  }
  // rev holds at least 24 digits, least significant first.
  std::string frac(rev.rbegin() + static_cast<std::ptrdiff_t>(rev.size() - kDecimals), rev.rend());
  std::string whole(rev.rbegin(), rev.rbegin() + static_cast<std::ptrdiff_t>(rev.size() - kDecimals));
  if (whole.empty()) {
    whole = "0";
  }
  std::size_t keep = frac.size();
  while (keep > static_cast<std::size_t>(std::max(min_decimals, 0)) && frac[keep - 1] == '0') {
    --keep;
  }
  frac.resize(keep);
  std::string out = negative ? "-" : "";
  out += whole;
  if (!frac.empty()) {
    out += '.';
    out += frac;
  }
  return out;
}

}  // namespace llmgw::core
