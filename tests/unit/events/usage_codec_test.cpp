// The usage record's JSON line (the Redis usage queue's entries, the writer's dead letters):
// every field round-trips; what encode_usage did not write is refused.

#include "events/usage_codec.hpp"

#include "usage_records.hpp"

#include <gtest/gtest.h>

namespace llmgw::events {
namespace {

using test::record;

TEST(UsageCodec, EveryFieldRoundTrips) {
  for (int i = 0; i < 20; ++i) {
    const auto r = record(i);
    const auto back = decode_usage(encode_usage(r));
    ASSERT_TRUE(back.has_value()) << encode_usage(r);
    EXPECT_EQ(*back, r);
  }
  store::UsageRecord large = record(1);
  large.prompt_tokens = std::int64_t{1} << 40;  // the largest count a record may carry
  EXPECT_EQ(decode_usage(encode_usage(large)), large);
  large.prompt_tokens += 1;
  EXPECT_EQ(decode_usage(encode_usage(large)), std::nullopt);
}

TEST(UsageCodec, RefusesWhatItDidNotWrite) {
  const std::string good = encode_usage(record(1));
  for (std::string bad : {std::string(), std::string("null"), std::string("[]"),
                          std::string("{\"v\":1}"), good.substr(0, good.size() - 1),
                          std::string("\xff\xfe")}) {
    EXPECT_FALSE(decode_usage(bad).has_value()) << bad;
  }
  auto with = [&](const std::string& from, const std::string& to) {
    std::string s = good;
    const auto at = s.find(from);
    EXPECT_NE(at, std::string::npos) << from;
    return s.replace(at, from.size(), to);
  };
  EXPECT_FALSE(decode_usage(with("\"v\":1", "\"v\":2")));           // a later format
  EXPECT_FALSE(decode_usage(with("\"request_id\":\"req-1\"", "\"request_id\":\"\"")));
  EXPECT_FALSE(decode_usage(with("\"status\":201", "\"status\":\"201\"")));
  EXPECT_FALSE(decode_usage(with("\"status\":201", "\"status\":1000")));
  EXPECT_FALSE(decode_usage(with("\"prompt_tokens\":1", "\"prompt_tokens\":1.5")));
  EXPECT_FALSE(decode_usage(with("\"stream\":false", "\"stream\":0")));
  EXPECT_FALSE(decode_usage(with("\"key_id\":\"key_1\",", "")));    // missing
  EXPECT_FALSE(decode_usage(with("\"prompt_tokens\":1", "\"prompt_tokens\":-1")));
  EXPECT_FALSE(decode_usage(with("\"prompt_tokens\":1", "\"prompt_tokens\":9223372036854775807")));
  EXPECT_FALSE(decode_usage(with("\"created_at_us\":", "\"created_at_us\":-")));
  EXPECT_TRUE(decode_usage(with("\"v\":1", "\"v\":1,\"extra\":true")));  // unknown: ignored
}

}  // namespace
}  // namespace llmgw::events
