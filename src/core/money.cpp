#include "core/money.hpp"

#include <algorithm>
#include <cstdint>

namespace llmgw::core {

namespace {
constexpr Money::Rep kMaxRep = static_cast<Money::Rep>(~(static_cast<Money::URep>(1) << 127));
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
  // 128-bit division is a library call per digit; split into 64-bit parts once instead.
  constexpr std::uint64_t kE12 = 1'000'000'000'000ULL;
  const bool negative = units_ < 0;
  Money::URep v = negative ? static_cast<Money::URep>(-units_)
                                 : static_cast<Money::URep>(units_);
  const Money::URep scale = static_cast<Money::URep>(kE12) * kE12;  // 1e24
  const Money::URep whole = v / scale;
  const Money::URep frac = v % scale;
  const auto frac_hi = static_cast<std::uint64_t>(frac / kE12);  // first 12 decimals
  const auto frac_lo = static_cast<std::uint64_t>(frac % kE12);  // last 12 decimals

  std::string out = negative ? "-" : "";
  // The whole part fits 64 bits for any amount below 1.8e19 USD; beyond, go digit by digit.
  if (whole <= static_cast<Money::URep>(UINT64_MAX)) {
    out += std::to_string(static_cast<std::uint64_t>(whole));
  } else {
    std::string rev;
    for (Money::URep w = whole; w != 0; w /= 10) {
      rev.push_back(static_cast<char>('0' + static_cast<int>(w % 10)));
    }
    out.append(rev.rbegin(), rev.rend());
  }
  char digits[kDecimals];
  auto put12 = [](char* at, std::uint64_t v) {
    for (int i = 11; i >= 0; --i) {
      at[i] = static_cast<char>('0' + v % 10);
      v /= 10;
    }
  };
  put12(digits, frac_hi);
  put12(digits + 12, frac_lo);
  std::size_t keep = kDecimals;
  while (keep > static_cast<std::size_t>(std::max(min_decimals, 0)) && digits[keep - 1] == '0') {
    --keep;
  }
  if (keep > 0) {
    out += '.';
    out.append(digits, keep);
  }
  return out;
}

bool valid_budget_text(std::string_view text) {
  const auto dot = text.find('.');
  const std::string_view whole = text.substr(0, dot);
  const std::string_view frac = dot == std::string_view::npos ? std::string_view{} : text.substr(dot + 1);
  auto digits = [](std::string_view d) {
    return std::all_of(d.begin(), d.end(), [](char c) { return c >= '0' && c <= '9'; });
  };
  if (whole.empty() || whole.size() > 12 || !digits(whole) ||
      (dot != std::string_view::npos && (frac.empty() || frac.size() > 12 || !digits(frac)))) {
    return false;
  }
  const auto m = Money::parse(text);
  return m && *m <= kMaxBudget;
}

}  // namespace llmgw::core
