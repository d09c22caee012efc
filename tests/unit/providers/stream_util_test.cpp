// Tests of what the translated providers share: the SSE reader, the chunk writer, the error
// renderings and the default status mapping.
#include "providers/adapter.hpp"
#include "providers/stream_util.hpp"

#include "core/json.hpp"

#include <gtest/gtest.h>

namespace llmgw::providers {
namespace {

TEST(SseReader, ReadsEventsWithAnyLineEnding) {
  for (std::string_view eol : {"\n", "\r\n", "\r"}) {
    std::string in = "event: message_start" + std::string(eol) + "data: {\"a\":1}" +
                     std::string(eol) + std::string(eol) + ": comment" + std::string(eol) +
                     "data: x" + std::string(eol) + "data: y" + std::string(eol) +
                     std::string(eol) + "data: partial";
    SseEvent ev;
    std::size_t n = next_sse_event(in, ev);
    ASSERT_GT(n, 0u);
    EXPECT_EQ(ev.name, "message_start");
    EXPECT_EQ(ev.data, "{\"a\":1}");
    in.erase(0, n);
    n = next_sse_event(in, ev);
    ASSERT_GT(n, 0u);
    EXPECT_EQ(ev.name, "");
    EXPECT_EQ(ev.data, "x\ny");
    in.erase(0, n);
    EXPECT_EQ(next_sse_event(in, ev), 0u);
  }
}

TEST(SseReader, ACarriageReturnAtTheEndWaitsForItsLineFeed) {
  SseEvent ev;
  EXPECT_EQ(next_sse_event("data: a\r\n\r", ev), 0u);
  EXPECT_EQ(next_sse_event("data: a\r\n\r\n", ev), 11u);
  EXPECT_EQ(ev.data, "a");
}

TEST(SseReader, FedOneByteAtATimeFindsTheSameEvents) {
  const std::string whole = "event: a\r\ndata: 1\r\n\r\nevent: b\ndata: 2\n\n";
  std::string in;
  std::vector<std::string> seen;
  SseEvent ev;
  for (char c : whole) {
    in += c;
    while (std::size_t n = next_sse_event(in, ev)) {
      seen.push_back(ev.name + "=" + ev.data);
      in.erase(0, n);
    }
  }
  EXPECT_EQ(seen, (std::vector<std::string>{"a=1", "b=2"}));
}

TEST(ChunkWriter, WritesValidOpenAIChunks) {
  ChunkWriter w("chatcmpl-1", "claude", 1700000000);
  std::string out;
  w.role(out);
  w.content(out, "Hi \"there\"");
  w.tool_start(out, 0, "call_1", "get_weather");
  w.tool_arguments(out, 0, "{\"city\":");
  w.finish(out, "tool_calls");
  pricing::TokenUsage u;
  u.input_tokens = 10;
  u.cache_read_tokens = 5;
  u.output_tokens = 7;
  u.reasoning_tokens = 3;
  w.usage(out, u);
  ChunkWriter::done(out);
  std::string_view rest = out;
  SseEvent ev;
  int events = 0;
  while (std::size_t n = next_sse_event(rest, ev)) {
    rest.remove_prefix(n);
    ++events;
    if (ev.data != "[DONE]") {
      EXPECT_TRUE(core::validate_json(ev.data)) << ev.data;
    }
  }
  EXPECT_EQ(events, 7);
  EXPECT_NE(out.find(R"("usage":{"prompt_tokens":15,"completion_tokens":10,"total_tokens":25,)"
                     R"("prompt_tokens_details":{"cached_tokens":5},)"
                     R"("completion_tokens_details":{"reasoning_tokens":3}})"),
            std::string::npos);
}

TEST(ProviderErrors, RenderInEitherFormat) {
  ProviderError e = map_status(529, "Overloaded", "7");
  EXPECT_EQ(e.status, 503u);
  EXPECT_EQ(e.retry_after, "7");
  EXPECT_EQ(render_provider_error(Format::AnthropicMessages, e),
            R"({"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}})");
  EXPECT_EQ(render_provider_error(Format::OpenAIChat, e),
            R"({"error":{"message":"Overloaded","type":"server_error","param":null,)"
            R"("code":"overloaded"}})");
  EXPECT_TRUE(map_status(401, "bad key", "").credential_refused);
  EXPECT_EQ(map_status(429, "slow down", "3").status, 429u);
  EXPECT_EQ(map_status(422, "bad", "").status, 400u);
  EXPECT_EQ(render_stream_error(Format::OpenAIChat, "upstream_error", "cut", 502),
            "data: {\"error\":{\"message\":\"cut\",\"type\":\"upstream_error\",\"param\":null,"
            "\"code\":null}}\n\n");
}

TEST(DataUrl, ReadsBase64DataUrlsOnly) {
  auto d = parse_data_url("data:image/png;base64,iVBORw0KGgo=");
  ASSERT_TRUE(d.has_value());
  EXPECT_EQ(d->mime, "image/png");
  EXPECT_EQ(d->data, "iVBORw0KGgo=");
  d = parse_data_url("DATA:image/jpeg;name=a.jpg;BASE64,/9j/");
  ASSERT_TRUE(d.has_value());
  EXPECT_EQ(d->mime, "image/jpeg");
  EXPECT_EQ(d->data, "/9j/");
  EXPECT_FALSE(parse_data_url("data:image/png,rawbytes"));
  EXPECT_FALSE(parse_data_url("data:;base64,AAAA"));
  EXPECT_FALSE(parse_data_url("data:image/png;base64,"));
  EXPECT_FALSE(parse_data_url("https://example.com/a.png"));
  EXPECT_FALSE(parse_data_url("data:image/png;base64"));
}

}  // namespace
}  // namespace llmgw::providers
