#include "limits/budget_period.hpp"

#include <cstdio>
#include <ctime>

namespace llmgw::limits {

std::optional<BudgetPeriod> parse_budget_period(std::string_view s) noexcept {
  if (s == "daily") {
    return BudgetPeriod::Daily;
  }
  if (s == "weekly") {
    return BudgetPeriod::Weekly;
  }
  if (s == "monthly") {
    return BudgetPeriod::Monthly;
  }
  return std::nullopt;
}

std::string_view to_string(BudgetPeriod p) noexcept {
  switch (p) {
    case BudgetPeriod::Daily: return "daily";
    case BudgetPeriod::Weekly: return "weekly";
    case BudgetPeriod::Monthly: return "monthly";
  }
  return "monthly";
}

namespace {

constexpr std::int64_t kDay = 86'400;

std::tm utc(std::int64_t t) {
  const std::time_t tt = static_cast<std::time_t>(t);
  std::tm tm{};
  gmtime_r(&tt, &tm);
  return tm;
}

std::string day_text(const std::tm& tm) {
  char buf[32];  // room for any int the format could print
  std::snprintf(buf, sizeof buf, "%04d-%02d-%02d", tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday);
  return buf;
}

std::int64_t floor_day(std::int64_t t) { return t - ((t % kDay) + kDay) % kDay; }

}  // namespace

std::string utc_day(std::int64_t t) { return day_text(utc(t)); }

PeriodWindow period_window(BudgetPeriod p, std::int64_t t) {
  PeriodWindow w;
  const std::tm tm = utc(t);
  switch (p) {
    case BudgetPeriod::Daily: {
      w.start_unix = floor_day(t);
      w.end_unix = w.start_unix + kDay;
      w.id = day_text(tm);
      break;
    }
    case BudgetPeriod::Weekly: {
      // ISO weeks start on Monday; tm_wday is 0 for Sunday.
      const int days_since_monday = (tm.tm_wday + 6) % 7;
      w.start_unix = floor_day(t) - days_since_monday * kDay;
      w.end_unix = w.start_unix + 7 * kDay;
      // The ISO week-numbering year is that of the week's Thursday.
      const std::tm thursday = utc(w.start_unix + 3 * kDay);
      char buf[32];  // room for any int the format could print
      std::snprintf(buf, sizeof buf, "%04d-W%02d", thursday.tm_year + 1900,
                    thursday.tm_yday / 7 + 1);
      w.id = buf;
      break;
    }
    case BudgetPeriod::Monthly: {
      std::tm first = tm;
      first.tm_mday = 1;
      first.tm_hour = first.tm_min = first.tm_sec = 0;
      w.start_unix = static_cast<std::int64_t>(timegm(&first));
      std::tm next = first;
      next.tm_mon += 1;
      w.end_unix = static_cast<std::int64_t>(timegm(&next));  // timegm normalises month 12
      char buf[32];  // room for any int the format could print
      std::snprintf(buf, sizeof buf, "%04d-%02d", tm.tm_year + 1900, tm.tm_mon + 1);
      w.id = buf;
      break;
    }
  }
  w.first_day = utc_day(w.start_unix);
  w.last_day = utc_day(w.end_unix - 1);
  return w;
}

}  // namespace llmgw::limits
