#include "metrics/bearer.hpp"

#include <gtest/gtest.h>

namespace llmgw::metrics {
namespace {

TEST(BearerCheck, EmptyTokenLetsEveryScrapeThrough) {
  const BearerCheck check("");
  EXPECT_FALSE(check.required());
  EXPECT_TRUE(check.allows(""));
  EXPECT_TRUE(check.allows("Bearer whatever"));
}

TEST(BearerCheck, AcceptsOnlyTheTokenAsBearer) {
  const BearerCheck check("s3cret-token");
  EXPECT_TRUE(check.required());
  EXPECT_TRUE(check.allows("Bearer s3cret-token"));
  EXPECT_TRUE(check.allows("bearer s3cret-token"));
  EXPECT_TRUE(check.allows("BEARER  s3cret-token "));
  EXPECT_FALSE(check.allows(""));
  EXPECT_FALSE(check.allows("Bearer"));
  EXPECT_FALSE(check.allows("Bearer "));
  EXPECT_FALSE(check.allows("Bearer s3cret-toke"));
  EXPECT_FALSE(check.allows("Bearer s3cret-token2"));
  EXPECT_FALSE(check.allows("Basic s3cret-token"));
  EXPECT_FALSE(check.allows("Bearers3cret-token"));
  EXPECT_FALSE(check.allows("s3cret-token"));
}

}  // namespace
}  // namespace llmgw::metrics
