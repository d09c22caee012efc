// Price-list resolution for the names providers really use, checked against the shipped
// catalog (catalog/litellm/): each real id must land on the entry a user would expect.
#include "pricing/resolve.hpp"

#include "read_file.hpp"

#include <boost/json.hpp>
#include <gtest/gtest.h>

#include <set>

namespace llmgw::pricing {
namespace {

const std::set<std::string>& catalog_names() {
  static const std::set<std::string> names = [] {
    std::set<std::string> out;
    const auto doc = boost::json::parse(test::read_file(
        std::string(LLMGW_SOURCE_DIR) + "/catalog/litellm/model_prices_and_context_window.json"));
    for (const auto& [k, v] : doc.as_object()) {
      out.emplace(k);
    }
    return out;
  }();
  return names;
}

std::string resolve(core::ProviderType type, std::string_view model) {
  for (const auto& c : pricing_candidates(type, model)) {
    if (catalog_names().contains(c)) {
      return c;
    }
  }
  return "(unknown)";
}

using T = core::ProviderType;

TEST(PricingResolve, RealProviderIdsFindTheirEntry) {
  // Bedrock: cross-region profiles have their own entries; the plain id too.
  EXPECT_EQ(resolve(T::Bedrock, "us.anthropic.claude-3-haiku-20240307-v1:0"),
            "us.anthropic.claude-3-haiku-20240307-v1:0");
  EXPECT_EQ(resolve(T::Bedrock, "anthropic.claude-sonnet-4-20250514-v1:0"),
            "anthropic.claude-sonnet-4-20250514-v1:0");
  // A region prefix the catalog lacks falls back to the plain id.
  EXPECT_EQ(resolve(T::Bedrock, "jp.anthropic.claude-3-haiku-20240307-v1:0"),
            "anthropic.claude-3-haiku-20240307-v1:0");
  // Vertex AI's model@version.
  EXPECT_EQ(resolve(T::Vertex, "claude-3-haiku@20240307"), "vertex_ai/claude-3-haiku@20240307");
  EXPECT_EQ(resolve(T::Vertex, "gemini-2.5-flash-image"), "vertex_ai/gemini-2.5-flash-image");
  // Azure: the model Azure reports, under azure/.
  EXPECT_EQ(resolve(T::Azure, "gpt-4o-2024-11-20"), "azure/gpt-4o-2024-11-20");
  // Gemini API names under gemini/.
  EXPECT_EQ(resolve(T::Gemini, "gemini-2.5-flash"), "gemini/gemini-2.5-flash");
  // OpenAI fine-tunes: the ft: entry of the base model.
  EXPECT_EQ(resolve(T::OpenAI, "ft:gpt-4o-2024-11-20:acme:support:9xYz"), "ft:gpt-4o-2024-11-20");
  // Anthropic's own names.
  EXPECT_EQ(resolve(T::Anthropic, "claude-sonnet-4-20250514"), "claude-sonnet-4-20250514");
  EXPECT_EQ(resolve(T::Anthropic, "my-own-model"), "(unknown)");
}

TEST(PricingResolve, CandidatesComeMostSpecificFirst) {
  EXPECT_EQ(pricing_candidates(T::Bedrock, "us.anthropic.claude-3-haiku-20240307-v1:0"),
            (std::vector<std::string>{"us.anthropic.claude-3-haiku-20240307-v1:0",
                                      "anthropic.claude-3-haiku-20240307-v1:0",
                                      "claude-3-haiku-20240307", "claude-3-haiku"}));
  EXPECT_EQ(pricing_candidates(T::Vertex, "claude-sonnet-4@20250514"),
            (std::vector<std::string>{"vertex_ai/claude-sonnet-4@20250514",
                                      "claude-sonnet-4@20250514",
                                      "vertex_ai/claude-sonnet-4-20250514",
                                      "claude-sonnet-4-20250514", "vertex_ai/claude-sonnet-4",
                                      "claude-sonnet-4"}));
  EXPECT_EQ(pricing_candidates(T::OpenAI, "gpt-4o-2024-11-20"),
            (std::vector<std::string>{"gpt-4o-2024-11-20", "gpt-4o"}));
  EXPECT_EQ(pricing_candidates(T::OpenAI, "ft:gpt-4o-mini-2024-07-18:org:s:id"),
            (std::vector<std::string>{"ft:gpt-4o-mini-2024-07-18:org:s:id",
                                      "ft:gpt-4o-mini-2024-07-18", "gpt-4o-mini-2024-07-18",
                                      "gpt-4o-mini"}));
}

}  // namespace
}  // namespace llmgw::pricing
