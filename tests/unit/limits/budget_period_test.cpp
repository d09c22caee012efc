#include "limits/budget_period.hpp"

#include "core/ids.hpp"

#include <gtest/gtest.h>

namespace llmgw::limits {
namespace {

std::int64_t at(const char* utc) {
  std::int64_t t = 0;
  EXPECT_TRUE(core::parse_utc(utc, t)) << utc;
  return t;
}

TEST(BudgetPeriod, DailyWindowsAlignToUtcMidnight) {
  const auto w = period_window(BudgetPeriod::Daily, at("2026-11-27T23:59:59Z"));
  EXPECT_EQ(w.id, "2026-11-27");
  EXPECT_EQ(w.start_unix, at("2026-11-27"));
  EXPECT_EQ(w.end_unix, at("2026-11-28"));
  EXPECT_EQ(period_window(BudgetPeriod::Daily, at("2026-11-28")).id, "2026-11-28");
}

TEST(BudgetPeriod, WeeklyWindowsAreIsoWeeksFromMonday) {
  // 2026-11-27 is a Friday; its ISO week 48 runs Monday 23 to Sunday 29.
  const auto w = period_window(BudgetPeriod::Weekly, at("2026-11-27T12:00:00Z"));
  EXPECT_EQ(w.id, "2026-W48");
  EXPECT_EQ(w.first_day, "2026-11-23");
  EXPECT_EQ(w.last_day, "2026-11-29");
  // 2027-01-01 (a Friday) belongs to ISO week 53 of 2026.
  EXPECT_EQ(period_window(BudgetPeriod::Weekly, at("2027-01-01")).id, "2026-W53");
  EXPECT_EQ(period_window(BudgetPeriod::Weekly, at("2026-11-30")).id, "2026-W49");
}

TEST(BudgetPeriod, MonthlyWindowsCoverTheCalendarMonth) {
  auto w = period_window(BudgetPeriod::Monthly, at("2028-02-29T10:00:00Z"));
  EXPECT_EQ(w.id, "2028-02");
  EXPECT_EQ(w.first_day, "2028-02-01");
  EXPECT_EQ(w.last_day, "2028-02-29");
  w = period_window(BudgetPeriod::Monthly, at("2026-12-31T23:59:59Z"));
  EXPECT_EQ(w.id, "2026-12");
  EXPECT_EQ(w.end_unix, at("2027-01-01"));
}

TEST(BudgetPeriod, ParsesNames) {
  EXPECT_EQ(parse_budget_period("weekly"), BudgetPeriod::Weekly);
  EXPECT_FALSE(parse_budget_period("yearly"));
}

}  // namespace
}  // namespace llmgw::limits
