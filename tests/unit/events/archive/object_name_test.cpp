#include "events/archive/object_name.hpp"

#include <gtest/gtest.h>

namespace llmgw::archive {
namespace {

using std::chrono::nanoseconds;
using std::chrono::system_clock;

system_clock::time_point at(std::int64_t unix_ns) {
  return system_clock::time_point(std::chrono::duration_cast<system_clock::duration>(
      nanoseconds(unix_ns)));
}

TEST(ObjectName, FollowsThePrefixDatePodTimestampNanosPattern) {
  // 2026-12-07T18:01:02Z and 123456789 ns.
  const auto t = at(1'796'666'462LL * 1'000'000'000 + 123'456'789);
  EXPECT_EQ(object_name("logs/", "gw-7f9c", t),
            "logs/2026/12/07/gw-7f9c-20261207T180102Z-123456789.jsonl.gz");
  EXPECT_EQ(object_name("logs", "gw-7f9c", t),
            "logs/2026/12/07/gw-7f9c-20261207T180102Z-123456789.jsonl.gz");
  EXPECT_EQ(object_name("", "gw", at(0)), "1970/01/01/gw-19700101T000000Z-000000000.jsonl.gz");
}

TEST(ObjectName, NamesAreValidAndSortByTime) {
  const auto a = object_name("logs/", "pod", at(1'700'000'000'000'000'001));
  const auto b = object_name("logs/", "pod", at(1'700'000'000'000'000'002));
  const auto c = object_name("logs/", "pod", at(1'700'000'001'000'000'000));
  EXPECT_LT(a, b);
  EXPECT_LT(b, c);
  EXPECT_TRUE(valid_object_name(a));
}

TEST(ObjectName, PodNamesAreMadeSafe) {
  EXPECT_EQ(sanitize_pod_name("gw-1.example_x"), "gw-1.example_x");
  EXPECT_EQ(sanitize_pod_name("a/b c\n"), "a_b_c_");
  EXPECT_EQ(sanitize_pod_name(""), "llmgw");
  EXPECT_EQ(sanitize_pod_name(".."), "llmgw..");
  EXPECT_EQ(sanitize_pod_name(std::string(300, 'p')).size(), 128u);
}

TEST(ObjectName, ValidatesNamesForBothSinks) {
  EXPECT_TRUE(valid_object_name("a.jsonl.gz"));
  EXPECT_TRUE(valid_object_name("logs/2026/01/02/x.jsonl.gz"));
  for (const char* bad : {"", "/abs", "a//b", "a/../b", "./a", "a/.", "dir/.hidden", "a b",
                          "a\\b", "a\nb", "trailing/"}) {
    EXPECT_FALSE(valid_object_name(bad)) << bad;
  }
  EXPECT_FALSE(valid_object_name(std::string(1025, 'a')));
}

}  // namespace
}  // namespace llmgw::archive
