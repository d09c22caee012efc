#pragma once
/// Budget periods aligned to UTC calendar boundaries: a day, an ISO week (Monday to Sunday),
/// a calendar month.

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace llmgw::limits {

enum class BudgetPeriod : std::uint8_t { Daily, Weekly, Monthly };

std::optional<BudgetPeriod> parse_budget_period(std::string_view s) noexcept;
std::string_view to_string(BudgetPeriod p) noexcept;

struct PeriodWindow {
  std::string id;         ///< "2026-11-27", "2026-W48", "2026-11"
  std::string first_day;  ///< "YYYY-MM-DD", inclusive
  std::string last_day;   ///< "YYYY-MM-DD", inclusive
  std::int64_t start_unix = 0;  ///< inclusive
  std::int64_t end_unix = 0;    ///< exclusive
};

/// The period of kind `p` that contains `unix_seconds`.
PeriodWindow period_window(BudgetPeriod p, std::int64_t unix_seconds);

/// "YYYY-MM-DD" of a unix time (UTC).
std::string utc_day(std::int64_t unix_seconds);

}  // namespace llmgw::limits
