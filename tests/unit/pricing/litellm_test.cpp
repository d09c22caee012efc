#include "pricing/litellm.hpp"

#include <gtest/gtest.h>

namespace llmgw::pricing {
namespace {

TEST(LiteLlmCatalog, MapsFieldNamesToComponents) {
  auto c = map_litellm_field("cache_read_input_token_cost_above_272k_tokens_priority", "chat");
  ASSERT_TRUE(c);
  EXPECT_EQ(c->direction, Direction::CacheRead);
  EXPECT_EQ(to_string(c->tier), "above_272k_priority");
  c = map_litellm_field("cache_creation_input_token_cost_above_1hr_above_200k_tokens", "chat");
  ASSERT_TRUE(c);
  EXPECT_EQ(c->direction, Direction::CacheWrite1h);
  EXPECT_EQ(c->tier.above_tokens, 200000);
  c = map_litellm_field("output_cost_per_second", "video_generation");
  ASSERT_TRUE(c);
  EXPECT_EQ(c->modality, Modality::Video);
  EXPECT_EQ(c->unit, Unit::Second);
  c = map_litellm_field("input_cost_per_token_batches", "chat");
  ASSERT_TRUE(c);
  EXPECT_EQ(c->tier.service, ServiceTier::Batch);
  EXPECT_FALSE(map_litellm_field("ocr_cost_per_page", "ocr"));
}

TEST(LiteLlmCatalog, KeepsNumberTextExactlyAndCountsUnknownFields) {
  const auto r = parse_litellm_catalog(R"({
    "sample_spec": {"input_cost_per_token": 0},
    "m1": {"litellm_provider": "openai", "mode": "chat", "max_output_tokens": 16384,
           "input_cost_per_token": 3.0001999999999996e-07, "output_cost_per_token": 1e-6,
           "ocr_cost_per_page": 0.1, "supports_vision": true, "supported_modalities": ["text"]},
    "m2": {"litellm_provider": "anthropic", "mode": "chat", "input_cost_per_token": 3e-6},
    "m3": {"litellm_provider": "openai", "mode": "chat", "max_tokens": 10}
  })", {"openai"});
  EXPECT_EQ(r.entries_seen, 3u);
  EXPECT_EQ(r.skipped_provider, 1u);
  EXPECT_EQ(r.skipped_no_price, 1u);
  ASSERT_EQ(r.entries.size(), 1u);
  const auto& m1 = r.entries[0].pricing;
  EXPECT_EQ(m1.max_output_tokens, 16384);
  ASSERT_EQ(m1.components.size(), 2u);
  EXPECT_EQ(m1.components[0].price.to_string(), "0.00000030001999999999996");
  EXPECT_EQ(r.unknown_fields.at("ocr_cost_per_page"), 1u);
}

TEST(LiteLlmCatalog, RejectsWhatIsNotAnObject) {
  EXPECT_THROW(parse_litellm_catalog("[1,2]"), std::runtime_error);
  EXPECT_THROW(parse_litellm_catalog("{"), std::runtime_error);
}

TEST(Tier, RoundTripsItsTextForm) {
  for (std::string_view s : {"default", "above_128k", "above_200k", "priority", "flex", "batch",
                             "above_272k_priority"}) {
    auto t = parse_tier(s);
    ASSERT_TRUE(t) << s;
    EXPECT_EQ(to_string(*t), s);
  }
  EXPECT_FALSE(parse_tier("above_"));
  EXPECT_FALSE(parse_tier("premium"));
  EXPECT_FALSE(parse_tier("above_200k_"));
}

}  // namespace
}  // namespace llmgw::pricing
