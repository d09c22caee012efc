// The whole answer: an OpenAI chat completion → an Anthropic Message.
#include "providers/messages/messages.hpp"

#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>
#include <boost/json/value.hpp>

#include <gtest/gtest.h>

namespace llmgw::providers {
namespace {

namespace json = boost::json;

json::value answer(std::string_view openai) {
  std::string out;
  EXPECT_TRUE(chat_to_messages_answer(openai, "claude-sonnet-4-5", out)) << openai;
  boost::system::error_code ec;
  json::value v = json::parse(out, ec);
  EXPECT_FALSE(ec) << out;
  return v;
}

TEST(ChatToMessagesAnswer, Text) {
  const json::value v = answer(R"({"id":"chatcmpl-abc123","object":"chat.completion",
      "created":1700000000,"model":"gpt-4o-2024-08-06","choices":[{"index":0,
      "message":{"role":"assistant","content":"Hello there.","refusal":null},
      "logprobs":null,"finish_reason":"stop"}],
      "usage":{"prompt_tokens":12,"completion_tokens":3,"total_tokens":15}})");
  EXPECT_EQ(v, json::parse(R"({"id":"msg_abc123","type":"message","role":"assistant",
      "model":"claude-sonnet-4-5","content":[{"type":"text","text":"Hello there."}],
      "stop_reason":"end_turn","stop_sequence":null,
      "usage":{"input_tokens":12,"cache_creation_input_tokens":0,"cache_read_input_tokens":0,
               "output_tokens":3}})"))
      << json::serialize(v);
}

TEST(ChatToMessagesAnswer, ToolCallsWithTextAndCachedUsage) {
  const json::value v = answer(R"({"id":"chatcmpl-t","object":"chat.completion","created":1,
      "model":"gpt-4o","choices":[{"index":0,"message":{"role":"assistant",
      "content":"Let me check.","tool_calls":[
        {"id":"call_a","type":"function","function":{"name":"get_weather","arguments":"{\"city\":\"Paris\"}"}},
        {"id":"call_b","type":"function","function":{"name":"get_time","arguments":""}},
        {"id":"call_c","type":"function","function":{"name":"broken","arguments":"{\"cut"}}]},
      "finish_reason":"tool_calls"}],
      "usage":{"prompt_tokens":2000,"completion_tokens":50,"total_tokens":2050,
               "prompt_tokens_details":{"cached_tokens":1500,"cache_creation_tokens":300},
               "completion_tokens_details":{"reasoning_tokens":20}}})");
  EXPECT_EQ(v, json::parse(R"({"id":"msg_t","type":"message","role":"assistant",
      "model":"claude-sonnet-4-5","content":[
        {"type":"text","text":"Let me check."},
        {"type":"tool_use","id":"call_a","name":"get_weather","input":{"city":"Paris"}},
        {"type":"tool_use","id":"call_b","name":"get_time","input":{}},
        {"type":"tool_use","id":"call_c","name":"broken","input":{}}],
      "stop_reason":"tool_use","stop_sequence":null,
      "usage":{"input_tokens":200,"cache_creation_input_tokens":300,"cache_read_input_tokens":1500,
               "output_tokens":50}})"))
      << json::serialize(v);
}

TEST(ChatToMessagesAnswer, FinishReasons) {
  const std::pair<std::string_view, std::string_view> cases[] = {
      {R"("stop")", "end_turn"},       {R"("length")", "max_tokens"},
      {R"("tool_calls")", "tool_use"}, {R"("content_filter")", "refusal"},
      {"null", "end_turn"},            {R"("something_new")", "end_turn"},
  };
  for (const auto& [finish, expected] : cases) {
    const json::value v = answer(std::string(R"({"id":"x","choices":[{"index":0,
        "message":{"role":"assistant","content":"a"},"finish_reason":)") +
                                 std::string(finish) + "}]}");
    EXPECT_EQ(v.at("stop_reason"), json::value(expected)) << finish;
  }
}

TEST(ChatToMessagesAnswer, ReasoningRefusalAndMissingParts) {
  json::value v = answer(R"({"id":"chatcmpl-r","choices":[{"index":0,"message":{"role":"assistant",
      "reasoning_content":"Think first.","content":"Done."},"finish_reason":"stop"}]})");
  EXPECT_EQ(v.at("content"), json::parse(R"([{"type":"thinking","thinking":"Think first.",
      "signature":""},{"type":"text","text":"Done."}])"));
  // No usage: zeros (the adapter's own usage is what the gateway prices).
  EXPECT_EQ(v.at("usage").at("output_tokens"), json::value(0));

  v = answer(R"({"id":"chatcmpl-f","choices":[{"index":0,"message":{"role":"assistant",
      "content":null,"refusal":"I can't help with that."},"finish_reason":"stop"}]})");
  EXPECT_EQ(v.at("content"), json::parse(R"([{"type":"text","text":"I can't help with that."}])"));
  EXPECT_EQ(v.at("stop_reason"), json::value("refusal"));

  v = answer(R"({"choices":[{"message":{"role":"assistant","content":""},"finish_reason":"length"}]})");
  EXPECT_EQ(v.at("content"), json::value(json::array()));
  EXPECT_EQ(v.at("id"), json::value("msg_gateway"));

  // Tool calls without ids get ids of their own.
  v = answer(R"({"id":"chatcmpl-n","choices":[{"message":{"content":null,"tool_calls":[
      {"type":"function","function":{"name":"f","arguments":"{}"}}]}}]})");
  EXPECT_EQ(v.at("content").at(0).at("id"), json::value("toolu_n_0"));
  EXPECT_EQ(v.at("stop_reason"), json::value("tool_use"));
}

TEST(ChatToMessagesAnswer, RefusesWhatIsNotACompletion) {
  std::string out;
  for (std::string_view body :
       {"", "not json", "[]", "{}", R"({"choices":[]})", R"({"choices":[1]})",
        R"({"choices":[{"message":"hi"}]})", R"({"choices":[{"message":{"tool_calls":[1]}}]})",
        R"({"error":{"message":"x"}})"}) {
    EXPECT_FALSE(chat_to_messages_answer(body, "m", out)) << body;
  }
}

}  // namespace
}  // namespace llmgw::providers
