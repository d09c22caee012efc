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

TEST(ParseUtc, ReadsRfc3339AsClientsWriteIt) {
  constexpr std::int64_t kNewYear2027 = 1'798'761'600;  // 2027-01-01T00:00:00Z
  const std::pair<const char*, std::int64_t> good[] = {
      {"2027-01-01", kNewYear2027},
      {"2027-01-01T00:00:00Z", kNewYear2027},
      {"2027-01-01T00:00:00.000Z", kNewYear2027},  // JavaScript's Date.toISOString()
      {"2027-01-01T00:00:00.999999999Z", kNewYear2027},
      {"2027-01-01T02:00:00+02:00", kNewYear2027},
      {"2026-12-31T19:00:00-05:00", kNewYear2027},
      {"2027-01-01T05:30:00.5+05:30", kNewYear2027},
      {"2027-01-01t00:00:00z", kNewYear2027},
      {"2027-01-01 00:00:00Z", kNewYear2027},
      {"2024-02-29T12:00:00Z", 1'709'208'000},
      {"1970-01-01T00:00:00Z", 0},
  };
  for (const auto& [text, want] : good) {
    std::int64_t t = -1;
    EXPECT_TRUE(parse_utc(text, t)) << text;
    EXPECT_EQ(t, want) << text;
  }
}

TEST(ParseUtc, RefusesWhatIsNotATime) {
  for (const char* text :
       {"", "tomorrow", "2027-1-1", "2027-01-01T00:00Z", "2027-01-01T00:00:00", "2027-13-01",
        "2027-02-29", "2027-01-32", "2027-01-01T24:00:00Z", "2027-01-01T00:60:00Z",
        "2027-01-01T00:00:00+2:00", "2027-01-01T00:00:00+0200", "2027-01-01T00:00:00.Z",
        "2027-01-01T00:00:00.1234567890Z", "2027-01-01T00:00:00Z ", " 2027-01-01",
        "2027-01-01T00:00:00+25:00", "1969-12-31T23:59:59Z", "2027-01-01X00:00:00Z",
        "2027-01-01T00:00:00ZZ", "+2027-01-01", "2027-01-01T00:00:00.5", "2027-01-01T00:00:00.",
        "2027-01-01T00:00:00+", "10000-01-01T00:00:00Z"}) {
    std::int64_t t = 0;
    EXPECT_FALSE(parse_utc(text, t)) << text;
  }
}

TEST(Base64Url, MatchesRfc4648AndRefusesWhatIsNotCanonical) {
  const auto enc = [](std::string_view t) {
    return base64url(std::span(reinterpret_cast<const unsigned char*>(t.data()), t.size()));
  };
  // RFC 4648 section 10, without padding.
  const std::pair<const char*, const char*> vectors[] = {
      {"", ""}, {"f", "Zg"}, {"fo", "Zm8"}, {"foo", "Zm9v"},
      {"foob", "Zm9vYg"}, {"fooba", "Zm9vYmE"}, {"foobar", "Zm9vYmFy"}};
  for (const auto& [plain, coded] : vectors) {
    EXPECT_EQ(enc(plain), coded);
    const auto back = base64url_decode(coded);
    ASSERT_TRUE(back) << coded;
    EXPECT_EQ(std::string(back->begin(), back->end()), plain);
  }
  const std::vector<unsigned char> high{0xfb, 0xff, 0xbf};
  EXPECT_EQ(base64url(high), "-_-_");  // the URL-safe alphabet
  for (const char* bad : {"Z", "Zh", "Zm9", "Zm9v+A", "Zm9v/A", "Zm8=", " Zm9v", "Zm9v ", "Zm\n9v",
                          "Zm9vY"}) {
    EXPECT_FALSE(base64url_decode(bad)) << bad;
  }
  std::vector<unsigned char> bytes;
  for (int n = 0; n <= 64; ++n) {
    const auto back = base64url_decode(base64url(bytes));
    ASSERT_TRUE(back) << n;
    EXPECT_EQ(*back, bytes);
    bytes.push_back(static_cast<unsigned char>(n * 37 + 11));
  }
}

}  // namespace
}  // namespace llmgw::core
