// Cost cases computed by hand from the shipped catalog (catalog/litellm/), one per provider
// family and dimension. Each expectation shows its arithmetic.
#include "pricing/cost.hpp"
#include "pricing/litellm.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <fstream>
#include <map>
#include <sstream>

namespace llmgw::pricing {
namespace {

const std::map<std::string, ModelPricing>& catalog() {
  static const std::map<std::string, ModelPricing> models = [] {
    std::ifstream in(std::string(LLMGW_SOURCE_DIR) +
                     "/catalog/litellm/model_prices_and_context_window.json");
    std::stringstream ss;
    ss << in.rdbuf();
    std::map<std::string, ModelPricing> m;
    for (auto& e : parse_litellm_catalog(ss.str()).entries) {
      m.emplace(e.pricing.name, e.pricing);
    }
    return m;
  }();
  return models;
}

const ModelPricing& model(const std::string& name) {
  auto it = catalog().find(name);
  EXPECT_NE(it, catalog().end()) << name;
  return it->second;
}

std::string cost_of(const std::string& name, const TokenUsage& u,
                    ServiceTier tier = ServiceTier::Default) {
  const Cost c = compute_cost(&model(name), u, tier, false);
  EXPECT_EQ(c.status, CostStatus::Exact) << name;
  return c.total.to_string();
}

TokenUsage openai(std::string_view json) {
  TokenUsage u;
  EXPECT_TRUE(normalize_openai(json, u)) << json;
  return u;
}

TEST(Cost, OpenAiCachedTokensAtTheCacheRate) {
  // gpt-4o-mini: input 1.5e-7, cache read 7.5e-8, output 6e-7 per token.
  const auto u = openai(R"({"prompt_tokens":1000,"completion_tokens":200,)"
                        R"("prompt_tokens_details":{"cached_tokens":400}})");
  EXPECT_EQ(u.input_tokens, 600);
  EXPECT_EQ(u.cache_read_tokens, 400);
  // 600*1.5e-7 + 400*7.5e-8 + 200*6e-7 = 9e-5 + 3e-5 + 1.2e-4
  EXPECT_EQ(cost_of("gpt-4o-mini", u), "0.00024");
}

TEST(Cost, OpenAiPriorityAndFlexTiers) {
  const auto u = openai(R"({"prompt_tokens":1000,"completion_tokens":200,)"
                        R"("prompt_tokens_details":{"cached_tokens":400}})");
  // priority: 600*2.5e-7 + 400*1.25e-7 + 200*1e-6 = 1.5e-4 + 5e-5 + 2e-4
  EXPECT_EQ(cost_of("gpt-4o-mini", u, ServiceTier::Priority), "0.0004");
  // gpt-5 flex: 600*6.25e-7 + 400*6.25e-8 + 200*5e-6 = 3.75e-4 + 2.5e-5 + 1e-3
  EXPECT_EQ(cost_of("gpt-5", u, ServiceTier::Flex), "0.0014");
  // A tier the model does not list falls back to its default rates (gpt-5 has no batch).
  // 600*1.25e-6 + 400*1.25e-7 + 200*1e-5 = 7.5e-4 + 5e-5 + 2e-3
  EXPECT_EQ(cost_of("gpt-5", u, ServiceTier::Batch), "0.0028");
}

TEST(Cost, ReasoningTokensAtTheOutputRateWhenTheyHaveNoneOfTheirOwn) {
  // o1: input 1.5e-5, output 6e-5; completion 1000 of which 800 reasoning.
  const auto u = openai(R"({"prompt_tokens":100,"completion_tokens":1000,)"
                        R"("completion_tokens_details":{"reasoning_tokens":800}})");
  EXPECT_EQ(u.output_tokens, 200);
  EXPECT_EQ(u.reasoning_tokens, 800);
  // 100*1.5e-5 + 200*6e-5 + 800*6e-5 = 1.5e-3 + 1.2e-2 + 4.8e-2
  EXPECT_EQ(cost_of("o1", u), "0.0615");
}

TEST(Cost, ReasoningTokensAtTheirOwnRate) {
  // dashscope/qwen-turbo: input 5e-8, output 2e-7, reasoning 5e-7.
  const auto u = openai(R"({"prompt_tokens":1000,"completion_tokens":300,)"
                        R"("completion_tokens_details":{"reasoning_tokens":100}})");
  // 1000*5e-8 + 200*2e-7 + 100*5e-7 = 5e-5 + 4e-5 + 5e-5
  EXPECT_EQ(cost_of("dashscope/qwen-turbo", u), "0.00014");
}

TEST(Cost, AnthropicCacheWritesAndReads) {
  TokenUsage u;
  ASSERT_TRUE(normalize_anthropic(R"({"input_tokens":1000,"cache_creation_input_tokens":2000,)"
                                  R"("cache_read_input_tokens":5000,"output_tokens":500})",
                                  u));
  EXPECT_EQ(u.prompt_total(), 8000);
  // claude-sonnet-4-20250514: 1000*3e-6 + 2000*3.75e-6 + 5000*3e-7 + 500*1.5e-5
  //   = 3e-3 + 7.5e-3 + 1.5e-3 + 7.5e-3
  EXPECT_EQ(cost_of("claude-sonnet-4-20250514", u), "0.0195");
}

TEST(Cost, AnthropicOneHourCacheWrites) {
  TokenUsage u;
  ASSERT_TRUE(normalize_anthropic(
      R"({"input_tokens":10,"cache_creation_input_tokens":3000,"cache_read_input_tokens":0,)"
      R"("cache_creation":{"ephemeral_5m_input_tokens":1000,"ephemeral_1h_input_tokens":2000},)"
      R"("output_tokens":20})",
      u));
  EXPECT_EQ(u.cache_write_5m_tokens, 1000);
  EXPECT_EQ(u.cache_write_1h_tokens, 2000);
  // 10*3e-6 + 1000*3.75e-6 + 2000*6e-6 + 20*1.5e-5 = 3e-5 + 3.75e-3 + 1.2e-2 + 3e-4
  EXPECT_EQ(cost_of("claude-sonnet-4-20250514", u), "0.01608");
}

TEST(Cost, Above200kRatesApplyToTheWholeCall) {
  TokenUsage u;
  ASSERT_TRUE(normalize_anthropic(R"({"input_tokens":150000,"cache_read_input_tokens":60000,)"
                                  R"("output_tokens":1000})",
                                  u));
  EXPECT_EQ(u.prompt_total(), 210000);
  // claude-sonnet-4 above 200k: 150000*6e-6 + 60000*6e-7 + 1000*2.25e-5 = 0.9 + 0.036 + 0.0225
  EXPECT_EQ(cost_of("claude-sonnet-4-20250514", u), "0.9585");
  // Exactly 200k is not above it: 140000*3e-6 + 60000*3e-7 + 1000*1.5e-5 = 0.42+0.018+0.015
  ASSERT_TRUE(normalize_anthropic(R"({"input_tokens":140000,"cache_read_input_tokens":60000,)"
                                  R"("output_tokens":1000})",
                                  u));
  EXPECT_EQ(cost_of("claude-sonnet-4-20250514", u), "0.453");
}

TEST(Cost, GeminiCachedAndThoughtTokens) {
  TokenUsage u;
  ASSERT_TRUE(normalize_gemini(R"({"promptTokenCount":10000,"cachedContentTokenCount":4000,)"
                               R"("candidatesTokenCount":500,"thoughtsTokenCount":1500,)"
                               R"("totalTokenCount":12000})",
                               u));
  EXPECT_EQ(u.input_tokens, 6000);
  EXPECT_EQ(u.cache_read_tokens, 4000);
  // gemini-2.5-pro: 6000*1.25e-6 + 4000*1.25e-7 + (500+1500)*1e-5 (no reasoning rate)
  //   = 7.5e-3 + 5e-4 + 2e-2
  EXPECT_EQ(cost_of("gemini-2.5-pro", u), "0.028");
  // gemini-2.5-flash has a reasoning rate: 6000*3e-7 + 4000*3e-8 + 500*2.5e-6 + 1500*2.5e-6
  //   = 1.8e-3 + 1.2e-4 + 1.25e-3 + 3.75e-3
  EXPECT_EQ(cost_of("gemini-2.5-flash", u), "0.00692");
}

TEST(Cost, BedrockUsageShape) {
  TokenUsage u;
  ASSERT_TRUE(normalize_bedrock(R"({"inputTokens":1000,"outputTokens":500,"totalTokens":8500,)"
                                R"("cacheReadInputTokens":5000,"cacheWriteInputTokens":2000})",
                                u));
  // anthropic.claude-3-5-sonnet-20241022-v2:0 on Bedrock, same rates as above:
  // 1000*3e-6 + 2000*3.75e-6 + 5000*3e-7 + 500*1.5e-5
  EXPECT_EQ(cost_of("anthropic.claude-3-5-sonnet-20241022-v2:0", u), "0.0195");
}

TEST(Cost, PerRequestFee) {
  const auto u = openai(R"({"prompt_tokens":100,"completion_tokens":100})");
  // perplexity/pplx-70b-online: 0.005 per request, input 0, output 2.8e-6:
  //   0.005 + 100*2.8e-6
  EXPECT_EQ(cost_of("perplexity/pplx-70b-online", u), "0.00528");
}

TEST(Cost, ImagesPricedPerImage) {
  TokenUsage u;
  u.reported = true;
  u.input_images = 3;
  EXPECT_EQ(cost_of("dall-e-3", u), "0.12");  // 3 * 0.04
}

TEST(Cost, UnknownModelIsUnpricedNeverZero) {
  const auto u = openai(R"({"prompt_tokens":10,"completion_tokens":10})");
  const Cost c = compute_cost(nullptr, u, ServiceTier::Default, false);
  EXPECT_EQ(c.status, CostStatus::Unpriced);
  EXPECT_FALSE(c.known());
  ModelPricing only_input{"m", {}, {}, {{Direction::Input, Modality::Text, Unit::Tokens1m, {},
                                         *core::Money::parse("2"), PriceSource::Override}}};
  const Cost partial = compute_cost(&only_input, u, ServiceTier::Default, false);
  EXPECT_EQ(partial.status, CostStatus::Partial);
  EXPECT_EQ(partial.total.to_string(), "0.00002");  // 10 * 2/1e6; output had no price
}

TEST(Cost, RecordsThePricesItBilledAt) {
  const auto u = openai(R"({"prompt_tokens":10,"completion_tokens":5})");
  const Cost c = compute_cost(&model("gpt-4o-mini"), u, ServiceTier::Default, false);
  EXPECT_EQ(c.lines_json,
            R"([{"d":"input","m":"text","u":"token","t":"default","p":"0.00000015","q":10},)"
            R"({"d":"output","m":"text","u":"token","t":"default","p":"0.0000006","q":5}])");
}

TEST(Cost, StreamedAndNotStreamedUsageCostTheSame) {
  // The same usage object arrives in the JSON body or in the stream's last chunk.
  const char* usage = R"({"prompt_tokens":312,"completion_tokens":47,"total_tokens":359})";
  EXPECT_EQ(cost_of("gpt-4o-mini", openai(usage)), cost_of("gpt-4o-mini", openai(usage)));
  EXPECT_EQ(cost_of("gpt-4o-mini", openai(usage)), "0.000075");
}

TEST(WorstCase, ReservesPromptAndMaxOutputAtTheDearestRates) {
  // claude-sonnet-4: dearest prompt-side rate is the 1h cache write 6e-6; output 1.5e-5.
  // 1000*6e-6 + 4096*1.5e-5 = 6e-3 + 6.144e-2
  EXPECT_EQ(worst_case_cost(model("claude-sonnet-4-20250514"), 1000, 4096, ServiceTier::Default)
                .to_string(),
            "0.06744");
}

TEST(OverridePrices, APerMillionOverrideReplacesAPerTokenCatalogPrice) {
  std::vector<PriceComponent> rows{
      {Direction::Input, Modality::Text, Unit::Token, {}, *core::Money::parse("1.5e-7"),
       PriceSource::Catalog},
      {Direction::Input, Modality::Text, Unit::Tokens1m, {}, *core::Money::parse("5"),
       PriceSource::Override}};
  for (int order = 0; order < 2; ++order) {
    const auto eff = effective_components(rows);
    ASSERT_EQ(eff.size(), 1u);
    EXPECT_EQ(eff[0].unit, Unit::Tokens1m);
    std::swap(rows[0], rows[1]);
  }
}

TEST(Cost, AFailedCallPaysNoPerRequestFee) {
  const Cost c = compute_cost(&model("perplexity/pplx-70b-online"), TokenUsage{},
                              ServiceTier::Default, false);
  EXPECT_EQ(c.total.to_string(), "0");
}

TEST(OverridePrices, WinOverTheCatalogRow) {
  std::vector<PriceComponent> rows{
      {Direction::Input, Modality::Text, Unit::Token, {}, *core::Money::parse("1e-6"),
       PriceSource::Override},
      {Direction::Input, Modality::Text, Unit::Token, {}, *core::Money::parse("2e-6"),
       PriceSource::Catalog},
      {Direction::Output, Modality::Text, Unit::Token, {}, *core::Money::parse("3e-6"),
       PriceSource::Catalog}};
  const auto eff = effective_components(rows);
  ASSERT_EQ(eff.size(), 2u);
  EXPECT_EQ(eff[0].price.to_string(), "0.000001");
  EXPECT_EQ(eff[0].source, PriceSource::Override);
}

/// A text price of the default tier.
PriceComponent text_price(Direction d, Unit u, const char* price, PriceSource source) {
  return {d, Modality::Text, u, {}, *core::Money::parse(price), source};
}

TEST(AdminPrices, WinOverOverrideAndCatalogWhateverTheOrder) {
  // The same component from every source, the admin one per million tokens.
  std::vector<PriceComponent> rows{
      text_price(Direction::Input, Unit::Token, "2e-6", PriceSource::Catalog),
      text_price(Direction::Input, Unit::Token, "1e-6", PriceSource::Override),
      text_price(Direction::Input, Unit::Tokens1m, "0.5", PriceSource::Admin),
      text_price(Direction::Output, Unit::Token, "3e-6", PriceSource::Catalog)};
  const auto by_price = [](const PriceComponent& a, const PriceComponent& b) {
    return a.price < b.price;
  };
  std::sort(rows.begin(), rows.end(), by_price);
  do {
    const auto eff = effective_components(rows);
    ASSERT_EQ(eff.size(), 2u);
    const auto& input = eff[0].direction == Direction::Input ? eff[0] : eff[1];
    EXPECT_EQ(input.source, PriceSource::Admin);
    EXPECT_EQ(input.unit, Unit::Tokens1m);
    EXPECT_EQ(input.price.to_string(), "0.5");
  } while (std::next_permutation(rows.begin(), rows.end(), by_price));
}

TEST(AdminPrices, WithoutAnAdminRowTheOverrideStillWins) {
  const std::vector<PriceComponent> rows{
      text_price(Direction::Input, Unit::Token, "1e-6", PriceSource::Override),
      text_price(Direction::Input, Unit::Token, "2e-6", PriceSource::Catalog),
      text_price(Direction::Output, Unit::Token, "9e-6", PriceSource::Admin)};
  const auto eff = effective_components(rows);
  ASSERT_EQ(eff.size(), 2u);
  EXPECT_EQ(eff[0].source, PriceSource::Override);
  EXPECT_EQ(eff[1].source, PriceSource::Admin);
}

}  // namespace
}  // namespace llmgw::pricing
