#include "core/ids.hpp"

#include <gtest/gtest.h>

#include <chrono>
#include <set>
#include <string>

namespace llmgw::core {
namespace {

std::int64_t now_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

TEST(RequestId, IsThirtyTwoHexDigitsLedByTheTimeInMilliseconds) {
  const std::int64_t before = now_ms();
  std::string id;
  append_request_id(id);
  const std::int64_t after = now_ms();
  ASSERT_EQ(id.size(), 32u);
  EXPECT_EQ(id.find_first_not_of("0123456789abcdef"), std::string::npos) << id;
  const std::int64_t stamped = std::stoll(id.substr(0, 12), nullptr, 16);
  EXPECT_GE(stamped, before);
  EXPECT_LE(stamped, after);
}

TEST(RequestId, SortsByTimeAndNeverRepeats) {
  std::string earlier;
  append_request_id(earlier, 1'764'201'600'000);
  std::string later;
  append_request_id(later, 1'764'201'600'001);
  EXPECT_LT(earlier, later);
  EXPECT_EQ(earlier.substr(0, 12), "019ac29c1400");  // the milliseconds, most significant first
  std::set<std::string> seen;
  std::string id;
  for (int i = 0; i < 100'000; ++i) {  // the same millisecond: the random part tells them apart
    id.clear();
    append_request_id(id, 1'764'201'600'000);
    ASSERT_TRUE(seen.insert(id).second) << "repeated: " << id;
  }
  // Appends: what `out` held stays.
  std::string out = "x-";
  append_request_id(out);
  EXPECT_EQ(out.size(), 34u);
  EXPECT_EQ(out.substr(0, 2), "x-");
}

}  // namespace
}  // namespace llmgw::core
