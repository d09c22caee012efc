#include "auth/api_key.hpp"

#include <gtest/gtest.h>

#include <set>

namespace llmgw::auth {
namespace {

TEST(ApiKey, GeneratedKeysHavePrefixLengthAndMatchingHash) {
  std::set<std::string> seen;
  for (int i = 0; i < 100; ++i) {
    const auto k = generate_api_key();
    EXPECT_EQ(k.plaintext.substr(0, kKeyPrefix.size()), kKeyPrefix);
    EXPECT_EQ(k.plaintext.size(), kKeyPrefix.size() + 43);  // 32 bytes base64url
    EXPECT_EQ(k.display_prefix, k.plaintext.substr(0, kDisplayPrefixLength));
    EXPECT_EQ(k.hash_hex, digest_hex(digest_api_key(k.plaintext)));
    EXPECT_TRUE(seen.insert(k.plaintext).second);
  }
}

TEST(ApiKey, DigestIsSha256) {
  // FIPS 180-2 example: SHA-256("abc").
  EXPECT_EQ(digest_hex(digest_api_key("abc")),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  KeyDigest d{};
  ASSERT_TRUE(parse_digest_hex(
      "BA7816BF8F01CFEA414140DE5DAE2223B00361A396177A9CB410FF61F20015AD", d));
  EXPECT_EQ(d, digest_api_key("abc"));
  EXPECT_FALSE(parse_digest_hex("xyz", d));
  EXPECT_FALSE(parse_digest_hex(std::string(64, 'g'), d));
}

TEST(ApiKey, ExtractsBearerOrApiKeyHeader) {
  EXPECT_EQ(extract_api_key("Bearer sk-1", ""), "sk-1");
  EXPECT_EQ(extract_api_key("bearer   sk-2  ", ""), "sk-2");
  EXPECT_EQ(extract_api_key("", "sk-3"), "sk-3");
  EXPECT_EQ(extract_api_key("Basic abc", "sk-4"), "sk-4");
  EXPECT_EQ(extract_api_key("Bearer", ""), "");
  EXPECT_EQ(extract_api_key("", ""), "");
}

}  // namespace
}  // namespace llmgw::auth
