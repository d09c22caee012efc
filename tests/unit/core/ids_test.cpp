#include "core/ids.hpp"

#include <gtest/gtest.h>

#include <chrono>
#include <set>
#include <string>
#include <thread>

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
  std::string first;
  append_request_id(first);
  std::this_thread::sleep_for(std::chrono::milliseconds(2));
  std::set<std::string> seen;
  std::string id;
  for (int i = 0; i < 100'000; ++i) {
    id.clear();
    append_request_id(id);
    EXPECT_LT(first, id);
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
