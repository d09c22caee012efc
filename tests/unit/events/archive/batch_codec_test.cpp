#include "events/archive/batch_codec.hpp"

#include <gtest/gtest.h>
#include <zlib.h>

#include <random>

namespace llmgw::archive {
namespace {

std::vector<std::string> sample_records(std::size_t n) {
  std::vector<std::string> out;
  for (std::size_t i = 0; i < n; ++i) {
    out.push_back(R"({"request_id":"req-)" + std::to_string(i) +
                  R"(","status":200,"body":"héllo \u2028 \"quoted\""})");
  }
  return out;
}

std::string encode(const std::vector<std::string>& records) {
  std::string error;
  auto gz = encode_batch(records, error);
  EXPECT_TRUE(gz) << error;
  return gz.value_or("");
}

TEST(BatchCodec, RoundTripsRecordsAsGzipJsonLines) {
  const auto records = sample_records(1000);
  const std::string gz = encode(records);
  ASSERT_GE(gz.size(), 18u);
  EXPECT_EQ(static_cast<unsigned char>(gz[0]), 0x1f);  // gzip magic
  EXPECT_EQ(static_cast<unsigned char>(gz[1]), 0x8b);
  EXPECT_LT(gz.size(), records.size() * records[0].size() / 5);  // compresses
  std::string error;
  const auto back = decode_batch(gz, error);
  ASSERT_TRUE(back) << error;
  EXPECT_EQ(*back, records);
}

TEST(BatchCodec, DecodesWhatZlibsOwnGzipWriterMade) {
  // Independent of our encoder: zlib's gzip file writer, then the bytes as written.
  const std::string path = ::testing::TempDir() + "/codec_gzwrite.jsonl.gz";
  gzFile f = gzopen(path.c_str(), "wb9");
  ASSERT_NE(f, nullptr);
  const std::string text = "{\"a\":1}\n{\"b\":2}\n\n{\"c\":3}";
  ASSERT_EQ(gzwrite(f, text.data(), static_cast<unsigned>(text.size())),
            static_cast<int>(text.size()));
  ASSERT_EQ(gzclose(f), Z_OK);
  std::string bytes;
  {
    FILE* in = std::fopen(path.c_str(), "rb");
    ASSERT_NE(in, nullptr);
    char buf[4096];
    std::size_t n = 0;
    while ((n = std::fread(buf, 1, sizeof buf, in)) > 0) {
      bytes.append(buf, n);
    }
    std::fclose(in);
  }
  std::string error;
  const auto lines = decode_batch(bytes, error);
  ASSERT_TRUE(lines) << error;
  EXPECT_EQ(*lines, (std::vector<std::string>{R"({"a":1})", R"({"b":2})", R"({"c":3})"}));
}

TEST(BatchCodec, EncodingIsDeterministicSoARetriedBatchIsTheSameObject) {
  const auto records = sample_records(50);
  EXPECT_EQ(encode(records), encode(records));
}

TEST(BatchCodec, ReadsConcatenatedMembers) {
  const std::string a = encode({R"({"n":1})", R"({"n":2})"});
  const std::string b = encode({R"({"n":3})"});
  std::string error;
  const auto lines = decode_batch(a + b, error);
  ASSERT_TRUE(lines) << error;
  EXPECT_EQ(*lines, (std::vector<std::string>{R"({"n":1})", R"({"n":2})", R"({"n":3})"}));
}

TEST(BatchCodec, AnEmptyBatchIsAValidEmptyMember) {
  const std::string gz = encode({});
  std::string error;
  const auto lines = decode_batch(gz, error);
  ASSERT_TRUE(lines) << error;
  EXPECT_TRUE(lines->empty());
}

TEST(BatchCodec, RefusesRecordsWithLineBreaks) {
  std::string error;
  EXPECT_FALSE(encode_batch(std::vector<std::string>{"{\"a\":\n1}"}, error));
  EXPECT_FALSE(error.empty());
  EXPECT_FALSE(encode_batch(std::vector<std::string>{"{}\r"}, error));
}

TEST(BatchCodec, RefusesCorruptTruncatedAndForeignInput) {
  const std::string gz = encode(sample_records(20));
  std::string error;
  EXPECT_FALSE(decode_batch("", error));
  EXPECT_FALSE(decode_batch("plain text, not gzip\n", error));
  EXPECT_NE(error.find("corrupt"), std::string::npos) << error;
  // Every truncation is refused (the trailer's CRC and length included).
  for (std::size_t cut = 1; cut < gz.size(); ++cut) {
    EXPECT_FALSE(decode_batch(std::string_view(gz).substr(0, cut), error)) << cut;
  }
  // A flipped bit anywhere is refused, never crashes (CRC-32 catches what inflate does not),
  // unless it changes nothing: the unused bits that pad the deflate stream's last byte are
  // ignored by every inflater, and then the records decoded must be the ones encoded.
  const auto records = sample_records(20);
  for (std::size_t i = 10; i < gz.size(); ++i) {
    std::string bad = gz;
    bad[i] = static_cast<char>(bad[i] ^ 0x10);
    const auto back = decode_batch(bad, error);
    if (back) {
      EXPECT_EQ(*back, records) << i;
      EXPECT_EQ(i, gz.size() - 9) << "only the deflate stream's last byte has padding bits";
    }
  }
  // Trailing garbage after a member.
  EXPECT_FALSE(decode_batch(gz + "garbage", error));
}

TEST(BatchCodec, RandomBytesNeverCrashTheDecoder) {
  std::mt19937 rng(42);
  std::string error;
  for (int round = 0; round < 2000; ++round) {
    std::string junk(rng() % 200, '\0');
    for (auto& c : junk) {
      c = static_cast<char>(rng());
    }
    if (round % 2 == 0 && junk.size() > 3) {
      junk[0] = '\x1f';
      junk[1] = '\x8b';
      junk[2] = '\x08';
    }
    (void)decode_batch(junk, error);
  }
}

TEST(BatchCodec, RefusesARecordOverTheLimitAndStopsWhenAsked) {
  const std::string gz = encode({std::string(1000, 'x'), "{}"});
  std::string error;
  EXPECT_FALSE(decode_batch(gz, [](std::string_view) { return true; }, error, 999));
  EXPECT_NE(error.find("longer"), std::string::npos);
  int seen = 0;
  EXPECT_TRUE(decode_batch(
      gz,
      [&](std::string_view) {
        ++seen;
        return false;
      },
      error));
  EXPECT_EQ(seen, 1);
}

}  // namespace
}  // namespace llmgw::archive
