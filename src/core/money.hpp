#pragma once
/// Exact money. An amount is a signed 128-bit count of 1e-24 USD: every price in the LiteLLM
/// catalog (whose most precise entry has 23 decimals) is represented exactly, a cost is price
/// times an integer quantity, and sums stay exact up to about 1.7e14 USD. No binary floating
/// point is involved anywhere: amounts enter and leave as decimal text.

#include <compare>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace llmgw::core {

class Money {
 public:
  __extension__ typedef __int128 Rep;            // GCC/Clang 128-bit integers
  __extension__ typedef unsigned __int128 URep;
  static constexpr int kDecimals = 24;

  constexpr Money() = default;
  static constexpr Money from_units(Rep units) { return Money(units); }

  /// Parses a non-negative decimal: "25", "0.15", "1.5e-07", "3E2". Exponents are applied
  /// exactly; more than 24 decimals, a negative sign or anything else → nullopt.
  static std::optional<Money> parse(std::string_view text);

  /// Exact decimal with trailing zeros trimmed, at least `min_decimals` decimals
  /// ("0.00018", "25.00" with min_decimals 2).
  [[nodiscard]] std::string to_string(int min_decimals = 0) const;

  [[nodiscard]] constexpr Rep units() const noexcept { return units_; }
  [[nodiscard]] constexpr bool is_zero() const noexcept { return units_ == 0; }

  constexpr Money& operator+=(Money o) noexcept {
    units_ += o.units_;
    return *this;
  }
  constexpr Money& operator-=(Money o) noexcept {
    units_ -= o.units_;
    return *this;
  }
  friend constexpr Money operator+(Money a, Money b) noexcept { return Money(a.units_ + b.units_); }
  friend constexpr Money operator-(Money a, Money b) noexcept { return Money(a.units_ - b.units_); }
  /// Price per unit times a quantity.
  friend constexpr Money operator*(Money a, std::int64_t q) noexcept {
    return Money(a.units_ * static_cast<Rep>(q));
  }
  /// Exact division by a unit size (1000, 1'000'000); the remainder is dropped (below 1e-24
  /// USD only when the price itself is finer than the catalog ever is).
  friend constexpr Money operator/(Money a, std::int64_t d) noexcept {
    return Money(a.units_ / static_cast<Rep>(d));
  }
  friend constexpr auto operator<=>(Money a, Money b) noexcept = default;

 private:
  constexpr explicit Money(Rep units) : units_(units) {}
  Rep units_ = 0;
};

/// The largest budget a key may have, per period: the shared (Redis) ledger counts in
/// integer nano-dollars that its Lua scripts compare exactly only up to 2^53 (about $9.007M).
inline const Money kMaxBudget = Money::from_units(Money::Rep(9'000'000) * Money::Rep(1'000'000'000'000) *
                                                  Money::Rep(1'000'000'000'000));

/// A budget as an operator writes it: digits with at most 12 decimals ("25", "0.50"), up to
/// kMaxBudget. The one check of the CLI and the admin API.
bool valid_budget_text(std::string_view text);

}  // namespace llmgw::core
