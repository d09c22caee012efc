// Token counting (POST /v1/messages/count_tokens): the body check and the adapter that sends a
// provider's Messages request to its count_tokens route.
#include "providers/messages/messages.hpp"

#include <gtest/gtest.h>

namespace llmgw::providers {
namespace {

/// A provider adapter that takes Anthropic Messages at `target` and remembers what it was asked.
class FakeMessagesAdapter final : public Adapter {
 public:
  explicit FakeMessagesAdapter(std::string target) : target_(std::move(target)) {}

  const core::Origin& origin() const noexcept override { return origin_; }
  bool accepts(Format f) const noexcept override { return f == Format::AnthropicMessages; }
  std::optional<Refusal> prepare(const CallInput& in, Outgoing& out) const override {
    asked_stream = in.stream;
    out.target = target_;
    out.headers = "x-api-key: provider-key\r\n";
    out.body = R"({"model":"upstream"})";
    return std::nullopt;
  }
  bool translate_answer(const CallInput&, std::string_view, std::string&,
                        Answer&) const override {
    return false;
  }
  ProviderError translate_error(unsigned status, std::string_view,
                                std::string_view) const override {
    ProviderError e;
    e.status = status;
    e.type = "from_inner";
    return e;
  }
  std::unique_ptr<StreamTranslator> translate_stream(const CallInput&) const override {
    return nullptr;
  }

  mutable bool asked_stream = true;

 private:
  core::Origin origin_;
  std::string target_;
};

TEST(InspectCountTokens, MaxTokensIsNotRequiredAndNothingIsStreamed) {
  InspectedRequest r;
  const auto err = inspect_count_tokens_request(
      R"({"model":"claude","stream":true,"messages":[{"role":"user","content":"hi"}]})", r);
  ASSERT_FALSE(err) << err->message;
  EXPECT_EQ(r.model, "claude");
  EXPECT_FALSE(r.stream);
  EXPECT_EQ(r.max_output_tokens, 0);
  EXPECT_EQ(r.choices, 1);
}

TEST(InspectCountTokens, ChecksTheRestLikeAMessagesBody) {
  InspectedRequest r;
  auto err = inspect_count_tokens_request(R"({"model":"claude"})", r);
  ASSERT_TRUE(err);
  EXPECT_EQ(err->message, "messages: Field required");
  err = inspect_count_tokens_request(R"({"messages":[{"role":"user","content":"hi"}]})", r);
  ASSERT_TRUE(err);
  EXPECT_EQ(err->param, "model");
  err = inspect_count_tokens_request(
      R"({"model":"c","system":5,"messages":[{"role":"user","content":"hi"}]})", r);
  ASSERT_TRUE(err);
  EXPECT_EQ(err->param, "system");
  EXPECT_TRUE(inspect_count_tokens_request("{", r));
  // A Messages body still needs max_tokens.
  EXPECT_TRUE(
      inspect_messages_request(R"({"model":"c","messages":[{"role":"user","content":"hi"}]})", r));
}

TEST(CountTokensAdapter, SendsTheMessagesRequestToTheCountRoute) {
  auto inner = std::make_shared<FakeMessagesAdapter>("/base/v1/messages");
  const auto a = make_count_tokens_adapter(inner);
  EXPECT_TRUE(a->accepts(Format::AnthropicMessages));
  EXPECT_FALSE(a->accepts(Format::OpenAIChat));
  CallInput in;
  in.format = Format::AnthropicMessages;
  in.stream = true;
  Outgoing out;
  ASSERT_FALSE(a->prepare(in, out));
  EXPECT_FALSE(inner->asked_stream);
  EXPECT_EQ(out.target, "/base/v1/messages/count_tokens");
  EXPECT_EQ(out.headers, "x-api-key: provider-key\r\n");
  EXPECT_EQ(out.body, R"({"model":"upstream"})");
  EXPECT_EQ(a->translate_error(429, "{}", "").type, "from_inner");
}

TEST(CountTokensAdapter, RefusesAProviderWithoutACountRoute) {
  const auto a = make_count_tokens_adapter(
      std::make_shared<FakeMessagesAdapter>("/v1/projects/p/models/claude:rawPredict"));
  CallInput in;
  in.format = Format::AnthropicMessages;
  Outgoing out;
  const auto refusal = a->prepare(in, out);
  ASSERT_TRUE(refusal);
  EXPECT_EQ(refusal->errc, core::Errc::BadRequest);
  EXPECT_EQ(refusal->param, "model");
}

TEST(CountTokensAdapter, PassesTheCountThroughAsFreeUsage) {
  const auto a = make_count_tokens_adapter(std::make_shared<FakeMessagesAdapter>("/v1/messages"));
  const CallInput in;
  std::string out;
  Answer answer;
  ASSERT_TRUE(a->translate_answer(in, R"({"input_tokens":42})", out, answer));
  EXPECT_TRUE(answer.passthrough);
  EXPECT_TRUE(answer.usage.reported);
  EXPECT_EQ(answer.usage.prompt_total(), 0);
  EXPECT_EQ(answer.usage.completion_total(), 0);
  for (const std::string_view bad :
       {"", "{", "[]", R"({"input_tokens":"3"})", R"({"input_tokens":-1})", R"({"type":"message"})",
        R"({"input_tokens":1.5})"}) {
    Answer none;
    EXPECT_FALSE(a->translate_answer(in, bad, out, none)) << bad;
  }
}

}  // namespace
}  // namespace llmgw::providers
