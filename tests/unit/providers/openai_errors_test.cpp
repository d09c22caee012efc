// OpenAI-shaped error answers, as OpenAI-family providers send them, read into ProviderError.
#include "providers/openai_errors.hpp"

#include <gtest/gtest.h>

namespace llmgw::providers {
namespace {

TEST(OpenAiErrors, BadRequestKeepsTheProvidersMessageAndCode) {
  const ProviderError e = openai_error_to_provider_error(
      400,
      R"({"error":{"message":"This model's maximum context length is 128000 tokens.",
          "type":"invalid_request_error","param":"messages","code":"context_length_exceeded"}})",
      "");
  EXPECT_EQ(e.status, 400u);
  EXPECT_EQ(e.type, "invalid_request_error");
  EXPECT_EQ(e.message, "This model's maximum context length is 128000 tokens.");
  EXPECT_EQ(e.code, "context_length_exceeded");
  EXPECT_FALSE(e.credential_refused);
  EXPECT_EQ(render_provider_error(Format::AnthropicMessages, e),
            R"({"type":"error","error":{"type":"invalid_request_error",)"
            R"("message":"This model's maximum context length is 128000 tokens."}})");
}

TEST(OpenAiErrors, RefusedCredentialNeverQuotesTheProvider) {
  for (unsigned status : {401u, 403u}) {
    const ProviderError e = openai_error_to_provider_error(
        status,
        R"({"error":{"message":"Incorrect API key provided: sk-proj-abc***xyz.",
            "type":"invalid_request_error","param":null,"code":"invalid_api_key"}})",
        "");
    EXPECT_TRUE(e.credential_refused);
    EXPECT_EQ(e.status, 502u);
    EXPECT_EQ(e.message.find("sk-"), std::string::npos) << e.message;
    EXPECT_NE(e.message.find("invalid_api_key"), std::string::npos) << e.message;
  }
  // A code that is not a plain word is not quoted either.
  const ProviderError e = openai_error_to_provider_error(
      401, R"({"error":{"message":"bad","code":"key sk-secret"}})", "");
  EXPECT_EQ(e.message.find("sk-secret"), std::string::npos) << e.message;
}

TEST(OpenAiErrors, RateLimitAndOverload) {
  ProviderError e = openai_error_to_provider_error(
      429, R"({"error":{"message":"Rate limit reached","type":"requests","code":"rate_limit_exceeded"}})",
      "7");
  EXPECT_EQ(e.status, 429u);
  EXPECT_EQ(e.type, "rate_limit_error");
  EXPECT_EQ(e.retry_after, "7");
  EXPECT_EQ(e.code, "rate_limit_exceeded");
  e = openai_error_to_provider_error(503, R"({"error":{"message":"Overloaded","code":"busy"}})", "2");
  EXPECT_EQ(e.status, 503u);
  EXPECT_EQ(e.code, "overloaded");
  EXPECT_EQ(e.retry_after, "2");
  EXPECT_EQ(render_provider_error(Format::AnthropicMessages, e),
            R"({"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}})");
  e = openai_error_to_provider_error(500, R"({"error":{"message":"boom","type":"server_error"}})", "");
  EXPECT_EQ(e.status, 502u);
  EXPECT_EQ(e.message, "boom");
}

TEST(OpenAiErrors, CompatibleServersVariants) {
  // Gemini's OpenAI endpoint answers with a one-element array and a numeric code.
  ProviderError e = openai_error_to_provider_error(
      400, R"([{"error":{"code":400,"message":"Invalid JSON payload","status":"INVALID_ARGUMENT"}}])",
      "");
  EXPECT_EQ(e.message, "Invalid JSON payload");
  EXPECT_EQ(e.code, "400");
  e = openai_error_to_provider_error(404, R"({"error":"model 'x' not found"})", "");
  EXPECT_EQ(e.status, 400u);
  EXPECT_EQ(e.message, "model 'x' not found");
  e = openai_error_to_provider_error(422, R"({"message":"bad field","object":"error"})", "");
  EXPECT_EQ(e.message, "bad field");
}

TEST(OpenAiErrors, UnreadableBodiesGiveTheStatusAlone) {
  for (std::string_view body : {std::string_view(""), std::string_view("<html>502 Bad Gateway</html>"),
                                std::string_view("{\"error\":{\"message\":5}}"),
                                std::string_view("[]"), std::string_view("null")}) {
    const ProviderError e = openai_error_to_provider_error(502, body, "");
    EXPECT_EQ(e.status, 502u);
    EXPECT_EQ(e.message, "The provider answered HTTP 502.") << body;
  }
}

TEST(OpenAiErrors, LongMessagesAreCutOnACharacterBoundary) {
  std::string msg;
  for (int i = 0; i < 2000; ++i) {
    msg += "\xC3\xA9";  // é, two bytes each
  }
  const ProviderError e =
      openai_error_to_provider_error(400, "{\"error\":{\"message\":\"" + msg + "\"}}", "");
  EXPECT_LE(e.message.size(), 2048u);
  EXPECT_EQ(e.message.size() % 2, 0u);
}

}  // namespace
}  // namespace llmgw::providers
