#include "core/duration.hpp"

#include <array>
#include <cstdint>
#include <limits>

namespace llmgw::core {

namespace {

struct Unit {
  std::string_view name;
  std::uint64_t nanos;
};

// Longest names first where one is a prefix of another ("ms" before "m").
constexpr std::array kUnits{
    Unit{"ns", 1},
    Unit{"us", 1'000},
    Unit{"\xC2\xB5s", 1'000},  // µs, U+00B5 MICRO SIGN
    Unit{"\xCE\xBCs", 1'000},  // μs, U+03BC GREEK SMALL LETTER MU
    Unit{"ms", 1'000'000},
    Unit{"s", 1'000'000'000},
    Unit{"m", 60'000'000'000},
    Unit{"h", 3'600'000'000'000},
};

constexpr std::uint64_t kMax = static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max());

bool digit(char c) { return c >= '0' && c <= '9'; }

}  // namespace

std::optional<std::chrono::nanoseconds> parse_duration(std::string_view s) noexcept {
  if (s == "0") {
    return std::chrono::nanoseconds{0};
  }
  if (s.empty()) {
    return std::nullopt;
  }
  std::uint64_t total = 0;
  std::size_t i = 0;
  while (i < s.size()) {
    // The whole part, then an optional fraction: at least one digit in all.
    std::uint64_t whole = 0;
    bool whole_overflow = false;
    const std::size_t start = i;
    while (i < s.size() && digit(s[i])) {
      if (whole > (kMax - 9) / 10) {
        whole_overflow = true;
      } else {
        whole = whole * 10 + static_cast<std::uint64_t>(s[i] - '0');
      }
      ++i;
    }
    bool any_digit = i > start;
    std::uint64_t frac = 0;
    std::uint64_t frac_scale = 1;
    if (i < s.size() && s[i] == '.') {
      ++i;
      const std::size_t frac_start = i;
      while (i < s.size() && digit(s[i])) {
        if (frac_scale <= std::numeric_limits<std::uint64_t>::max() / 100) {  // keep 18 digits
          frac = frac * 10 + static_cast<std::uint64_t>(s[i] - '0');
          frac_scale *= 10;
        }
        ++i;
      }
      any_digit = any_digit || i > frac_start;
    }
    if (!any_digit || whole_overflow) {
      return std::nullopt;
    }
    const Unit* unit = nullptr;
    for (const Unit& u : kUnits) {
      if (s.substr(i, u.name.size()) == u.name && (unit == nullptr ||
                                                    u.name.size() > unit->name.size())) {
        unit = &u;
      }
    }
    if (unit == nullptr) {
      return std::nullopt;  // a number without its unit
    }
    i += unit->name.size();
    if (whole > kMax / unit->nanos) {
      return std::nullopt;
    }
    std::uint64_t part = whole * unit->nanos;
    if (frac != 0) {
      // frac / frac_scale of a unit, rounded down to whole nanoseconds.
      const long double extra = static_cast<long double>(frac) *
                                static_cast<long double>(unit->nanos) /
                                static_cast<long double>(frac_scale);
      part += static_cast<std::uint64_t>(extra);
    }
    if (part > kMax - total) {
      return std::nullopt;
    }
    total += part;
  }
  return std::chrono::nanoseconds{static_cast<std::int64_t>(total)};
}

std::string format_duration(std::chrono::nanoseconds d) {
  std::int64_t n = d.count();
  if (n == 0) {
    return "0s";
  }
  std::string out;
  if (n < 0) {
    out += '-';
    n = n == std::numeric_limits<std::int64_t>::min() ? std::numeric_limits<std::int64_t>::max()
                                                      : -n;
  }
  const auto u = static_cast<std::uint64_t>(n);
  if (u < 1'000'000'000) {
    // Below a second: one unit, exact when it divides.
    if (u % 1'000'000 == 0) {
      return out + std::to_string(u / 1'000'000) + "ms";
    }
    if (u % 1'000 == 0) {
      return out + std::to_string(u / 1'000) + "us";
    }
    return out + std::to_string(u) + "ns";
  }
  const std::uint64_t hours = u / 3'600'000'000'000;
  const std::uint64_t minutes = (u / 60'000'000'000) % 60;
  const std::uint64_t nanos = u % 60'000'000'000;
  if (hours != 0) {
    out += std::to_string(hours) + "h";
  }
  if (minutes != 0) {
    out += std::to_string(minutes) + "m";
  }
  if (nanos != 0) {
    out += std::to_string(nanos / 1'000'000'000);
    if (const std::uint64_t sub = nanos % 1'000'000'000; sub != 0) {
      std::string digits = std::to_string(sub);
      digits.insert(0, 9 - digits.size(), '0');
      while (digits.back() == '0') {
        digits.pop_back();
      }
      out += '.';
      out += digits;
    }
    out += 's';
  }
  return out;
}

}  // namespace llmgw::core
