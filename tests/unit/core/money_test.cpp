#include "core/money.hpp"

#include <gtest/gtest.h>

namespace llmgw::core {
namespace {

Money m(std::string_view s) {
  auto v = Money::parse(s);
  EXPECT_TRUE(v.has_value()) << s;
  return v.value_or(Money{});
}

TEST(Money, ParsesDecimalsAndExponentsExactly) {
  EXPECT_EQ(m("0.15").to_string(), "0.15");
  EXPECT_EQ(m("1.5e-07").to_string(), "0.00000015");
  EXPECT_EQ(m("3.0001999999999996e-07").to_string(), "0.00000030001999999999996");
  EXPECT_EQ(m("25").to_string(2), "25.00");
  EXPECT_EQ(m("2.5E+2").to_string(), "250");
  EXPECT_EQ(m("0.000000000000000000000001").units(), 1);
  EXPECT_EQ(m("1.50000000000000000000000000").to_string(), "1.5");
  EXPECT_EQ(m("0").to_string(), "0");
}

TEST(Money, RejectsWhatIsNotAnExactNonNegativeDecimal) {
  for (std::string_view bad : {"", "-1", "1.2.3", "abc", "1e", ".", "1e-25", "0.0000000000000000000000001",
                               "nan", "1e200", " 1", "1 "}) {
    EXPECT_FALSE(Money::parse(bad).has_value()) << bad;
  }
}

TEST(Money, AMillionIdenticalCallsSumToExactlyAMillionTimesOne) {
  const Money per_token = m("1.5e-07");
  const Money one_call = per_token * 312 + m("6e-07") * 47;  // gpt-4o-mini, 312 in / 47 out
  EXPECT_EQ(one_call.to_string(), "0.000075");  // 0.0000468 + 0.0000282
  Money sum;
  for (int i = 0; i < 1'000'000; ++i) {
    sum += one_call;
  }
  EXPECT_EQ(sum, one_call * 1'000'000);
  EXPECT_EQ(sum.to_string(), "75");
}

TEST(Money, DividesByUnitSizes) {
  EXPECT_EQ((m("0.15") / 1'000'000).to_string(), "0.00000015");
  EXPECT_EQ((m("0.0375") / 1'000'000 * 3).to_string(), "0.0000001125");
}

}  // namespace
}  // namespace llmgw::core

namespace llmgw::core {
namespace {

TEST(BudgetText, DigitsUpToTwelveDecimalsAndTheLedgersMaximum) {
  for (const char* ok : {"0", "25", "10.50", "0.000000000001", "9000000", "9000000.000000000000"}) {
    EXPECT_TRUE(valid_budget_text(ok)) << ok;
  }
  for (const char* bad : {"", ".5", "5.", "-1", "1e3", "1.0000000000001", "9000000.000000000001",
                          "1000000000000", "12,5", " 1", "1.2.3"}) {
    EXPECT_FALSE(valid_budget_text(bad)) << bad;
  }
}

}  // namespace
}  // namespace llmgw::core
