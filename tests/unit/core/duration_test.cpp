#include "core/duration.hpp"

#include <gtest/gtest.h>

namespace llmgw::core {
namespace {

using namespace std::chrono_literals;

TEST(ParseDuration, ReadsGoStyleDurations) {
  EXPECT_EQ(parse_duration("30s"), 30s);
  EXPECT_EQ(parse_duration("5m"), 5min);
  EXPECT_EQ(parse_duration("1h"), 1h);
  EXPECT_EQ(parse_duration("1h30m"), 90min);
  EXPECT_EQ(parse_duration("250ms"), 250ms);
  EXPECT_EQ(parse_duration("2h45m30.5s"), 2h + 45min + 30500ms);
  EXPECT_EQ(parse_duration("1.5h"), 90min);
  EXPECT_EQ(parse_duration(".5s"), 500ms);
  EXPECT_EQ(parse_duration("1.s"), 1s);
  EXPECT_EQ(parse_duration("10us"), 10us);
  EXPECT_EQ(parse_duration("10\xC2\xB5s"), 10us);
  EXPECT_EQ(parse_duration("7ns"), 7ns);
  EXPECT_EQ(parse_duration("0"), 0ns);
  EXPECT_EQ(parse_duration("0s"), 0ns);
  EXPECT_EQ(parse_duration("1m1m"), 2min);  // Go adds repeated units
}

TEST(ParseDuration, RefusesWhatIsNotADuration) {
  for (const char* bad : {"", "5", "m", "5 m", "5M", "5min", "-5m", "+5m", "5m ", " 5m", "1h-30m",
                          "1.2.3s", ".s", "1e3s", "5m0", "abc", "9999999999999999999h",
                          "2562048h"}) {
    EXPECT_FALSE(parse_duration(bad)) << bad;
  }
  EXPECT_TRUE(parse_duration("2562047h"));  // just below the int64 nanosecond limit
}

TEST(FormatDuration, WritesTheShortestGoSpelling) {
  EXPECT_EQ(format_duration(5min), "5m");
  EXPECT_EQ(format_duration(90min), "1h30m");
  EXPECT_EQ(format_duration(1h + 30s), "1h30s");
  EXPECT_EQ(format_duration(250ms), "250ms");
  EXPECT_EQ(format_duration(1500ms), "1.5s");
  EXPECT_EQ(format_duration(0ns), "0s");
  for (const char* text : {"30s", "5m", "1h30m", "250ms", "2h45m30.5s", "10us", "7ns"}) {
    EXPECT_EQ(format_duration(*parse_duration(text)), text);
  }
}

}  // namespace
}  // namespace llmgw::core
