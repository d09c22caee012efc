#include "providers/stream_assembler.hpp"

#include <boost/json.hpp>
#include <gtest/gtest.h>

namespace llmgw::providers {
namespace {

namespace json = boost::json;

/// Feeds `sse` split at every `step` bytes.
json::value assemble(Format f, std::string_view sse, std::size_t step = 7) {
  StreamAssembler a(f);
  for (std::size_t i = 0; i < sse.size(); i += step) {
    a.feed(sse.substr(i, step));
  }
  const std::string out = a.finish();
  return out.empty() ? json::value() : json::parse(out);
}

TEST(StreamAssembler, OpenAIChunksBecomeOneCompletion) {
  const std::string_view sse =
      "data: {\"id\":\"c1\",\"object\":\"chat.completion.chunk\",\"created\":5,\"model\":\"m\","
      "\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\",\"content\":\"\"}}]}\n\n"
      "data: {\"id\":\"c1\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"Hel\"}}]}\n\n"
      "data: {\"id\":\"c1\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"lo \\\"x\\\"\"}}]}\r\n\r\n"
      "data: {\"id\":\"c1\",\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"stop\"}]}\n\n"
      "data: {\"id\":\"c1\",\"choices\":[],\"usage\":{\"prompt_tokens\":3,\"completion_tokens\":2,"
      "\"total_tokens\":5}}\n\n"
      "data: [DONE]\n\n";
  for (std::size_t step : {1u, 7u, 1000u}) {
    const json::value v = assemble(Format::OpenAIChat, sse, step);
    EXPECT_EQ(v.at("id"), "c1");
    EXPECT_EQ(v.at("object"), "chat.completion");
    EXPECT_EQ(v.at("model"), "m");
    EXPECT_EQ(v.at("created"), 5);
    const auto& c = v.at("choices").at(0);
    EXPECT_EQ(c.at("message").at("role"), "assistant");
    EXPECT_EQ(c.at("message").at("content"), "Hello \"x\"");
    EXPECT_EQ(c.at("finish_reason"), "stop");
    EXPECT_EQ(v.at("usage").at("total_tokens"), 5);
  }
}

TEST(StreamAssembler, OpenAIToolCallsAndChoices) {
  const std::string_view sse =
      "data: {\"id\":\"c\",\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\","
      "\"tool_calls\":[{\"index\":0,\"id\":\"t0\",\"type\":\"function\",\"function\":{\"name\":"
      "\"f\",\"arguments\":\"\"}}]}}]}\n\n"
      "data: {\"id\":\"c\",\"choices\":[{\"index\":0,\"delta\":{\"tool_calls\":[{\"index\":1,"
      "\"id\":\"t1\",\"function\":{\"name\":\"g\",\"arguments\":\"{}\"}}]}}]}\n\n"
      "data: {\"id\":\"c\",\"choices\":[{\"index\":0,\"delta\":{\"tool_calls\":[{\"index\":0,"
      "\"function\":{\"arguments\":\"{\\\"a\\\":\"}}]}}]}\n\n"
      "data: {\"id\":\"c\",\"choices\":[{\"index\":0,\"delta\":{\"tool_calls\":[{\"index\":0,"
      "\"function\":{\"arguments\":\"1}\"}}]}}]}\n\n"
      "data: {\"id\":\"c\",\"choices\":[{\"index\":1,\"delta\":{\"content\":\"second\"},"
      "\"finish_reason\":\"length\"}]}\n\n"
      "data: {\"id\":\"c\",\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":"
      "\"tool_calls\"}]}\n\n";
  const json::value v = assemble(Format::OpenAIChat, sse);
  const auto& c0 = v.at("choices").at(0);
  EXPECT_TRUE(c0.at("message").at("content").is_null());
  const auto& calls = c0.at("message").at("tool_calls").as_array();
  ASSERT_EQ(calls.size(), 2u);
  EXPECT_EQ(calls[0].at("id"), "t0");
  EXPECT_EQ(calls[0].at("function").at("name"), "f");
  EXPECT_EQ(calls[0].at("function").at("arguments"), "{\"a\":1}");
  EXPECT_EQ(calls[1].at("function").at("arguments"), "{}");
  EXPECT_EQ(c0.at("finish_reason"), "tool_calls");
  EXPECT_EQ(v.at("choices").at(1).at("message").at("content"), "second");
  EXPECT_EQ(v.at("choices").at(1).at("finish_reason"), "length");
}

TEST(StreamAssembler, AnErrorEventIsKept) {
  const json::value v = assemble(
      Format::OpenAIChat,
      "data: {\"id\":\"c\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"par\"}}]}\n\n"
      "data: {\"error\":{\"message\":\"lost\",\"type\":\"upstream_error\"}}\n\n");
  EXPECT_EQ(v.at("choices").at(0).at("message").at("content"), "par");
  EXPECT_EQ(v.at("error").at("type"), "upstream_error");
}

TEST(StreamAssembler, MessagesEventsBecomeOneMessage) {
  const std::string_view sse =
      "event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"id\":\"msg_1\","
      "\"type\":\"message\",\"role\":\"assistant\",\"model\":\"claude\",\"content\":[],"
      "\"stop_reason\":null,\"stop_sequence\":null,\"usage\":{\"input_tokens\":9,"
      "\"output_tokens\":1}}}\n\n"
      "event: ping\ndata: {\"type\":\"ping\"}\n\n"
      "event: content_block_start\ndata: {\"type\":\"content_block_start\",\"index\":0,"
      "\"content_block\":{\"type\":\"thinking\",\"thinking\":\"\"}}\n\n"
      "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,"
      "\"delta\":{\"type\":\"thinking_delta\",\"thinking\":\"hmm\"}}\n\n"
      "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,"
      "\"delta\":{\"type\":\"signature_delta\",\"signature\":\"sig\"}}\n\n"
      "event: content_block_start\ndata: {\"type\":\"content_block_start\",\"index\":1,"
      "\"content_block\":{\"type\":\"text\",\"text\":\"\"}}\n\n"
      "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":1,"
      "\"delta\":{\"type\":\"text_delta\",\"text\":\"Hi \"}}\n\n"
      "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":1,"
      "\"delta\":{\"type\":\"text_delta\",\"text\":\"there\"}}\n\n"
      "event: content_block_stop\ndata: {\"type\":\"content_block_stop\",\"index\":1}\n\n"
      "event: content_block_start\ndata: {\"type\":\"content_block_start\",\"index\":2,"
      "\"content_block\":{\"type\":\"tool_use\",\"id\":\"tu\",\"name\":\"f\",\"input\":{}}}\n\n"
      "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":2,"
      "\"delta\":{\"type\":\"input_json_delta\",\"partial_json\":\"{\\\"a\\\":\"}}\n\n"
      "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":2,"
      "\"delta\":{\"type\":\"input_json_delta\",\"partial_json\":\"[1]}\"}}\n\n"
      "event: message_delta\ndata: {\"type\":\"message_delta\",\"delta\":{\"stop_reason\":"
      "\"tool_use\",\"stop_sequence\":null},\"usage\":{\"output_tokens\":12}}\n\n"
      "event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n";
  const json::value v = assemble(Format::AnthropicMessages, sse, 5);
  EXPECT_EQ(v.at("id"), "msg_1");
  EXPECT_EQ(v.at("type"), "message");
  EXPECT_EQ(v.at("stop_reason"), "tool_use");
  EXPECT_EQ(v.at("usage").at("input_tokens"), 9);
  EXPECT_EQ(v.at("usage").at("output_tokens"), 12);
  const auto& content = v.at("content").as_array();
  ASSERT_EQ(content.size(), 3u);
  EXPECT_EQ(content[0].at("thinking"), "hmm");
  EXPECT_EQ(content[0].at("signature"), "sig");
  EXPECT_EQ(content[1].at("text"), "Hi there");
  EXPECT_EQ(content[2].at("name"), "f");
  EXPECT_EQ(json::serialize(content[2].at("input")), R"({"a":[1]})");
}

TEST(StreamAssembler, GarbageAndEmptyStreamsNeitherThrowNorInvent) {
  EXPECT_TRUE(assemble(Format::OpenAIChat, "").is_null());
  EXPECT_TRUE(assemble(Format::OpenAIChat, "data: {not json\n\ndata: [1,2]\n\n: c\n\n").is_null());
  // Wrong types where objects, strings and numbers belong.
  const json::value v = assemble(
      Format::OpenAIChat,
      "data: {\"choices\":[{\"index\":\"x\",\"delta\":{\"content\":5,\"tool_calls\":[7,{"
      "\"index\":0,\"function\":[]}]}},3]}\n\n");
  ASSERT_TRUE(v.is_object());
  EXPECT_EQ(v.at("choices").as_array().size(), 1u);
  const json::value m = assemble(
      Format::AnthropicMessages,
      "data: {\"type\":\"content_block_start\",\"index\":0,\"content_block\":{\"type\":"
      "\"tool_use\"}}\n\ndata: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":"
      "\"input_json_delta\",\"partial_json\":\"{cut\"}}\n\n");
  EXPECT_EQ(m.at("content").at(0).at("input"), "{cut");
}

TEST(StreamAssembler, TextBeyondTheBudgetIsDropped) {
  StreamAssembler a(Format::OpenAIChat, 4);
  a.feed("data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"abcdef\"}}]}\n\n");
  const json::value v = json::parse(a.finish());
  EXPECT_EQ(v.at("choices").at(0).at("message").at("content"), "abcd");
}

}  // namespace
}  // namespace llmgw::providers
