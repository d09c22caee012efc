#include "auth/key_cache.hpp"

#include <gtest/gtest.h>

namespace llmgw::auth {
namespace {

std::shared_ptr<const KeyInfo> info(std::string id) {
  store::ApiKeyRecord r;
  r.id = std::move(id);
  return KeyInfo::from_record(r);
}

TEST(KeyCache, CachesHitsAndKnownUnknownKeys) {
  KeyInvalidations inv;
  KeyCache cache(10, inv);
  const auto a = digest_api_key("a");
  const auto b = digest_api_key("b");
  EXPECT_FALSE(cache.find(a).has_value());
  cache.insert(a, info("key_a"), cache.generation());
  cache.insert(b, nullptr, cache.generation());
  ASSERT_TRUE(cache.find(a).has_value());
  EXPECT_EQ((*cache.find(a))->id, "key_a");
  ASSERT_TRUE(cache.find(b).has_value());
  EXPECT_EQ(*cache.find(b), nullptr);
}

TEST(KeyCache, EvictsLeastRecentlyUsed) {
  KeyInvalidations inv;
  KeyCache cache(2, inv);
  const auto a = digest_api_key("a"), b = digest_api_key("b"), c = digest_api_key("c");
  cache.insert(a, info("a"), 0);
  cache.insert(b, info("b"), 0);
  cache.find(a);  // a is now the most recent
  cache.insert(c, info("c"), 0);
  EXPECT_TRUE(cache.find(a).has_value());
  EXPECT_FALSE(cache.find(b).has_value());
  EXPECT_TRUE(cache.find(c).has_value());
  EXPECT_EQ(cache.size(), 2u);
}

TEST(KeyCache, InvalidationDropsOnlyChangedKeys) {
  KeyInvalidations inv;
  KeyCache cache(10, inv);
  const auto a = digest_api_key("a"), b = digest_api_key("b");
  cache.insert(a, info("a"), 0);
  cache.insert(b, info("b"), 0);
  inv.publish({a});
  cache.sync();
  EXPECT_FALSE(cache.find(a).has_value());
  EXPECT_TRUE(cache.find(b).has_value());
}

TEST(KeyCache, LookupThatRacedAnInvalidationIsNotCached) {
  KeyInvalidations inv;
  KeyCache cache(10, inv);
  const auto a = digest_api_key("a");
  const auto generation_at_lookup = cache.generation();
  inv.publish({a});  // the key changed while the store lookup was in flight
  cache.sync();
  cache.insert(a, info("stale"), generation_at_lookup);
  EXPECT_FALSE(cache.find(a).has_value());
}

TEST(KeyCache, FallingBehindTheLogClearsEverything) {
  KeyInvalidations inv;
  KeyCache cache(100, inv);
  const auto keep = digest_api_key("keep");
  cache.insert(keep, info("keep"), 0);
  for (std::size_t i = 0; i < KeyInvalidations::kMaxLog + 10; ++i) {
    inv.publish({digest_api_key("k" + std::to_string(i))});
  }
  cache.sync();
  EXPECT_FALSE(cache.find(keep).has_value());
}

TEST(KeyInfo, AllowlistAndExpiry) {
  store::ApiKeyRecord r;
  r.allowed_models = {"gpt-4o", "fast"};
  r.expires_at = 1000;
  const auto k = KeyInfo::from_record(r);
  EXPECT_TRUE(k->allows("fast"));
  EXPECT_FALSE(k->allows("gpt-4"));
  EXPECT_FALSE(k->expired(999));
  EXPECT_TRUE(k->expired(1000));
  EXPECT_TRUE(KeyInfo::from_record(store::ApiKeyRecord{})->allows("anything"));
}

}  // namespace
}  // namespace llmgw::auth
