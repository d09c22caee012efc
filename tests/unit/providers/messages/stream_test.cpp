// The streamed answer: OpenAI chunks (as a provider adapter's translator writes them) →
// Anthropic's message events, checked event by event.
#include "providers/messages/messages.hpp"
#include "providers/messages/pass_through.hpp"

#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>
#include <boost/json/value.hpp>

#include <gtest/gtest.h>

#include <vector>

namespace llmgw::providers {
namespace {

namespace json = boost::json;

struct Event {
  std::string name;
  json::value data;
};

/// Splits Anthropic's stream into events, checking the exact framing
/// ("event: <type>\ndata: <json>\n\n") and that each data's type is the event's name.
std::vector<Event> events(std::string_view s) {
  std::vector<Event> out;
  while (!s.empty()) {
    const std::size_t end = s.find("\n\n");
    EXPECT_NE(end, std::string_view::npos) << s;
    if (end == std::string_view::npos) {
      break;
    }
    const std::string_view ev = s.substr(0, end);
    s.remove_prefix(end + 2);
    EXPECT_TRUE(ev.starts_with("event: ")) << ev;
    const std::size_t nl = ev.find('\n');
    EXPECT_NE(nl, std::string_view::npos) << ev;
    const std::string name(ev.substr(7, nl - 7));
    const std::string_view data = ev.substr(nl + 1);
    EXPECT_TRUE(data.starts_with("data: ")) << ev;
    boost::system::error_code ec;
    json::value v = json::parse(data.substr(6), ec);
    EXPECT_FALSE(ec) << ev;
    EXPECT_EQ(v.at("type"), json::value(name)) << ev;
    out.push_back({name, std::move(v)});
  }
  return out;
}

struct Translated {
  std::string out;
  std::unique_ptr<ChatToMessagesStream> t;
};

/// Feeds `stream` in pieces of `step` bytes (0: whole), then finishes.
Translated run(std::string_view stream, std::size_t step = 0, bool complete = true) {
  Translated r;
  r.t = std::make_unique<ChatToMessagesStream>(std::make_unique<PassThrough>(),
                                               "claude-sonnet-4-5");
  std::string in;
  if (step == 0) {
    in = stream;
    r.t->feed(in, r.out);
  } else {
    for (std::size_t i = 0; i < stream.size(); i += step) {
      in.append(stream.substr(i, step));
      r.t->feed(in, r.out);
    }
  }
  r.t->finish(in, r.out, complete);
  return r;
}

constexpr std::string_view kTextThenTwoTools =
    "data: {\"id\":\"chatcmpl-s1\",\"object\":\"chat.completion.chunk\",\"created\":1,\"model\":\"gpt-4o\","
    "\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\",\"content\":\"\"},\"finish_reason\":null}]}\n\n"
    "data: {\"id\":\"chatcmpl-s1\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"Let me \"},\"finish_reason\":null}]}\n\n"
    "data: {\"id\":\"chatcmpl-s1\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"check \\\"both\\\".\"},\"finish_reason\":null}]}\n\n"
    "data: {\"id\":\"chatcmpl-s1\",\"choices\":[{\"index\":0,\"delta\":{\"tool_calls\":[{\"index\":0,\"id\":\"call_a\","
    "\"type\":\"function\",\"function\":{\"name\":\"get_weather\",\"arguments\":\"\"}}]},\"finish_reason\":null}]}\n\n"
    "data: {\"id\":\"chatcmpl-s1\",\"choices\":[{\"index\":0,\"delta\":{\"tool_calls\":[{\"index\":0,"
    "\"function\":{\"arguments\":\"{\\\"city\\\":\"}}]},\"finish_reason\":null}]}\n\n"
    "data: {\"id\":\"chatcmpl-s1\",\"choices\":[{\"index\":0,\"delta\":{\"tool_calls\":[{\"index\":0,"
    "\"function\":{\"arguments\":\"\\\"Paris\\\"}\"}}]},\"finish_reason\":null}]}\n\n"
    "data: {\"id\":\"chatcmpl-s1\",\"choices\":[{\"index\":0,\"delta\":{\"tool_calls\":[{\"index\":1,\"id\":\"call_b\","
    "\"type\":\"function\",\"function\":{\"name\":\"get_time\",\"arguments\":\"{}\"}}]},\"finish_reason\":null}]}\n\n"
    "data: {\"id\":\"chatcmpl-s1\",\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"tool_calls\"}],\"usage\":null}\n\n"
    "data: {\"id\":\"chatcmpl-s1\",\"choices\":[],\"usage\":{\"prompt_tokens\":1200,\"completion_tokens\":42,"
    "\"total_tokens\":1242,\"prompt_tokens_details\":{\"cached_tokens\":1000}}}\n\n"
    "data: [DONE]\n\n";

void expect_event(const Event& e, std::string_view name, std::string_view data) {
  EXPECT_EQ(e.name, name);
  EXPECT_EQ(e.data, json::parse(data)) << json::serialize(e.data);
}

TEST(ChatToMessagesStream, TextThenTwoParallelToolCalls) {
  const Translated r = run(kTextThenTwoTools);
  const std::vector<Event> ev = events(r.out);
  ASSERT_EQ(ev.size(), 15u) << r.out;
  expect_event(ev[0], "message_start", R"({"type":"message_start","message":{"id":"msg_s1",
      "type":"message","role":"assistant","model":"claude-sonnet-4-5","content":[],
      "stop_reason":null,"stop_sequence":null,"usage":{"input_tokens":0,
      "cache_creation_input_tokens":0,"cache_read_input_tokens":0,"output_tokens":0}}})");
  expect_event(ev[1], "ping", R"({"type":"ping"})");
  expect_event(ev[2], "content_block_start",
               R"({"type":"content_block_start","index":0,"content_block":{"type":"text","text":""}})");
  expect_event(ev[3], "content_block_delta",
               R"({"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"Let me "}})");
  expect_event(ev[4], "content_block_delta",
               R"({"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"check \"both\"."}})");
  expect_event(ev[5], "content_block_stop", R"({"type":"content_block_stop","index":0})");
  expect_event(ev[6], "content_block_start", R"({"type":"content_block_start","index":1,
      "content_block":{"type":"tool_use","id":"call_a","name":"get_weather","input":{}}})");
  expect_event(ev[7], "content_block_delta", R"({"type":"content_block_delta","index":1,
      "delta":{"type":"input_json_delta","partial_json":"{\"city\":"}})");
  expect_event(ev[8], "content_block_delta", R"({"type":"content_block_delta","index":1,
      "delta":{"type":"input_json_delta","partial_json":"\"Paris\"}"}})");
  expect_event(ev[9], "content_block_stop", R"({"type":"content_block_stop","index":1})");
  expect_event(ev[10], "content_block_start", R"({"type":"content_block_start","index":2,
      "content_block":{"type":"tool_use","id":"call_b","name":"get_time","input":{}}})");
  expect_event(ev[11], "content_block_delta", R"({"type":"content_block_delta","index":2,
      "delta":{"type":"input_json_delta","partial_json":"{}"}})");
  expect_event(ev[12], "content_block_stop", R"({"type":"content_block_stop","index":2})");
  expect_event(ev[13], "message_delta", R"({"type":"message_delta",
      "delta":{"stop_reason":"tool_use","stop_sequence":null},
      "usage":{"input_tokens":200,"cache_creation_input_tokens":0,"cache_read_input_tokens":1000,
               "output_tokens":42}})");
  expect_event(ev[14], "message_stop", R"({"type":"message_stop"})");

  // What the inner translator knows is what the proxy reads.
  EXPECT_TRUE(r.t->ended());
  EXPECT_TRUE(r.t->error().empty());
  EXPECT_EQ(r.t->model(), "gpt-4o-2024-08-06");
  EXPECT_EQ(r.t->usage().cache_read_tokens, 1000);
  EXPECT_EQ(r.t->usage().input_tokens, 200);
  EXPECT_EQ(r.t->events(), 10u);
}

TEST(ChatToMessagesStream, OneByteAtATimeGivesTheSameStream) {
  const Translated whole = run(kTextThenTwoTools);
  const Translated bytes = run(kTextThenTwoTools, 1);
  EXPECT_EQ(bytes.out, whole.out);
  const Translated sevens = run(kTextThenTwoTools, 7);
  EXPECT_EQ(sevens.out, whole.out);
}

TEST(ChatToMessagesStream, ReasoningBecomesAThinkingBlock) {
  const Translated r = run(
      "data: {\"id\":\"chatcmpl-r\",\"choices\":[{\"index\":0,\"delta\":{\"reasoning_content\":\"Hmm.\"}}]}\n\n"
      "data: {\"id\":\"chatcmpl-r\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"Yes.\"}}]}\n\n"
      "data: {\"id\":\"chatcmpl-r\",\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"length\"}],"
      "\"usage\":{\"prompt_tokens\":5,\"completion_tokens\":9,\"completion_tokens_details\":{\"reasoning_tokens\":4}}}\n\n"
      "data: [DONE]\n\n");
  const std::vector<Event> ev = events(r.out);
  ASSERT_EQ(ev.size(), 10u) << r.out;
  expect_event(ev[2], "content_block_start", R"({"type":"content_block_start","index":0,
      "content_block":{"type":"thinking","thinking":"","signature":""}})");
  expect_event(ev[3], "content_block_delta", R"({"type":"content_block_delta","index":0,
      "delta":{"type":"thinking_delta","thinking":"Hmm."}})");
  expect_event(ev[4], "content_block_stop", R"({"type":"content_block_stop","index":0})");
  expect_event(ev[5], "content_block_start", R"({"type":"content_block_start","index":1,
      "content_block":{"type":"text","text":""}})");
  expect_event(ev[7], "content_block_stop", R"({"type":"content_block_stop","index":1})");
  // Usage in the finish chunk itself: message_delta right away.
  expect_event(ev[8], "message_delta", R"({"type":"message_delta",
      "delta":{"stop_reason":"max_tokens","stop_sequence":null},
      "usage":{"input_tokens":5,"cache_creation_input_tokens":0,"cache_read_input_tokens":0,
               "output_tokens":9}})");
  EXPECT_EQ(ev[9].name, "message_stop");
}

TEST(ChatToMessagesStream, DoneWithoutFinishOrUsageStillClosesTheMessage) {
  const Translated r = run(
      "data: {\"id\":\"chatcmpl-d\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"Hi\"}}]}\n\n"
      "data: [DONE]\n\n");
  const std::vector<Event> ev = events(r.out);
  ASSERT_EQ(ev.size(), 7u) << r.out;
  EXPECT_EQ(ev[5].name, "message_delta");
  EXPECT_EQ(ev[5].data.at("delta").at("stop_reason"), json::value("end_turn"));
  EXPECT_EQ(ev[5].data.at("usage").at("output_tokens"), json::value(0));
  EXPECT_EQ(ev[6].name, "message_stop");
}

TEST(ChatToMessagesStream, EmptyAnswerIsAWholeMessage) {
  const Translated r = run("data: [DONE]\n\n");
  const std::vector<Event> ev = events(r.out);
  ASSERT_EQ(ev.size(), 4u) << r.out;
  EXPECT_EQ(ev[0].name, "message_start");
  EXPECT_EQ(ev[1].name, "ping");
  EXPECT_EQ(ev[2].name, "message_delta");
  EXPECT_EQ(ev[3].name, "message_stop");
}

TEST(ChatToMessagesStream, AzureFilterChunkAndKeepAlivesAreSkipped) {
  const Translated r = run(
      ": keep-alive\n\n"
      "data: {\"choices\":[],\"created\":0,\"id\":\"\",\"model\":\"\",\"object\":\"\","
      "\"prompt_filter_results\":[{\"prompt_index\":0}]}\n\n"
      "data: {\"id\":\"chatcmpl-az\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"Hi\"}}]}\n\n"
      "data: [DONE]\n\n");
  const std::vector<Event> ev = events(r.out);
  ASSERT_EQ(ev.size(), 7u) << r.out;
  EXPECT_EQ(ev[0].data.at("message").at("id"), json::value("msg_az"));
}

TEST(ChatToMessagesStream, ErrorEventBecomesAnthropicsError) {
  const Translated r = run(
      "data: {\"id\":\"chatcmpl-e\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"Hi\"}}]}\n\n"
      "data: {\"error\":{\"message\":\"Overloaded\",\"type\":\"server_error\",\"code\":\"overloaded\"}}\n\n"
      "data: {\"id\":\"chatcmpl-e\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"more\"}}]}\n\n"
      "data: [DONE]\n\n");
  const std::vector<Event> ev = events(r.out);
  ASSERT_EQ(ev.size(), 5u) << r.out;
  expect_event(ev[4], "error",
               R"({"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}})");
  EXPECT_EQ(r.t->error(), "server_error");
  EXPECT_TRUE(r.out.ends_with("\n\n"));
}

TEST(ChatToMessagesStream, RateLimitErrorKeepsItsType) {
  const Translated r = run(
      "data: {\"error\":{\"message\":\"Slow down\",\"type\":\"rate_limit_error\"}}\n\n");
  const std::vector<Event> ev = events(r.out);
  ASSERT_EQ(ev.size(), 1u) << r.out;
  expect_event(ev[0], "error",
               R"({"type":"error","error":{"type":"rate_limit_error","message":"Slow down"}})");
}

TEST(ChatToMessagesStream, MalformedChunkEndsTheStreamWithAnError) {
  const Translated r = run(
      "data: {\"id\":\"chatcmpl-m\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"Hi\"}}]}\n\n"
      "data: {\"id\":\"chatcmpl-m\",\"choices\":[{\"index\":0,\"delta\n\n"
      "data: [DONE]\n\n");
  const std::vector<Event> ev = events(r.out);
  ASSERT_EQ(ev.size(), 5u) << r.out;
  EXPECT_EQ(ev[4].name, "error");
  EXPECT_EQ(ev[4].data.at("error").at("type"), json::value("api_error"));
  EXPECT_EQ(r.t->error(), "upstream_error");
  EXPECT_TRUE(r.t->ended());  // the inner stream did end; the translation did not
}

TEST(ChatToMessagesStream, StreamCutBeforeDoneHasNoMessageStop) {
  constexpr std::string_view kCut =
      "data: {\"id\":\"chatcmpl-c\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"Hi\"}}]}\n\n"
      "data: {\"id\":\"chatcmpl-c\",\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"stop\"}]}\n\n"
      "data: {\"id\":\"chatcmpl-c\",\"choi";
  for (bool complete : {true, false}) {
    const Translated r = run(kCut, 0, complete);
    const std::vector<Event> ev = events(r.out);
    ASSERT_EQ(ev.size(), 5u) << r.out;
    EXPECT_EQ(ev[4].name, "content_block_stop");
    EXPECT_FALSE(r.t->ended());
    EXPECT_TRUE(r.t->error().empty());
  }
  // [DONE] seen but the body did not end normally: no message_stop either.
  const Translated r = run(std::string(kTextThenTwoTools), 0, false);
  const std::vector<Event> ev = events(r.out);
  ASSERT_EQ(ev.size(), 14u);
  EXPECT_EQ(ev.back().name, "message_delta");
}

TEST(ChatToMessagesStream, ResumedToolCallIsRefused) {
  const Translated r = run(
      "data: {\"id\":\"chatcmpl-i\",\"choices\":[{\"index\":0,\"delta\":{\"tool_calls\":[{\"index\":0,\"id\":\"a\","
      "\"function\":{\"name\":\"f\",\"arguments\":\"{\"}}]}}]}\n\n"
      "data: {\"id\":\"chatcmpl-i\",\"choices\":[{\"index\":0,\"delta\":{\"tool_calls\":[{\"index\":1,\"id\":\"b\","
      "\"function\":{\"name\":\"g\",\"arguments\":\"{}\"}}]}}]}\n\n"
      "data: {\"id\":\"chatcmpl-i\",\"choices\":[{\"index\":0,\"delta\":{\"tool_calls\":[{\"index\":0,"
      "\"function\":{\"arguments\":\"}\"}}]}}]}\n\n"
      "data: [DONE]\n\n");
  const std::vector<Event> ev = events(r.out);
  ASSERT_FALSE(ev.empty());
  EXPECT_EQ(ev.back().name, "error");
  EXPECT_EQ(r.t->error(), "upstream_error");
}

TEST(ChatToMessagesStream, ToolCallsWithoutIdsGetTheirOwn) {
  const Translated r = run(
      "data: {\"id\":\"chatcmpl-g\",\"choices\":[{\"index\":0,\"delta\":{\"tool_calls\":[{\"index\":0,"
      "\"function\":{\"name\":\"f\",\"arguments\":\"{}\"}}]}}]}\n\n"
      "data: [DONE]\n\n");
  const std::vector<Event> ev = events(r.out);
  ASSERT_EQ(ev.size(), 7u) << r.out;
  EXPECT_EQ(ev[2].data.at("content_block").at("id"), json::value("toolu_g_0"));
  EXPECT_EQ(ev[5].data.at("delta").at("stop_reason"), json::value("tool_use"));
}

TEST(ChatToMessagesStream, EveryCutEndsWithoutMessageStop) {
  for (std::size_t n = 0; n + 1 < kTextThenTwoTools.size(); ++n) {
    const Translated r = run(kTextThenTwoTools.substr(0, n), 0, false);
    EXPECT_EQ(r.out.find("message_stop"), std::string::npos) << n;
    (void)events(r.out);
  }
}

TEST(ChatToMessagesStream, GarbageNeverCrashes) {
  for (std::string_view s :
       {std::string_view("data: [1,2]\n\n"), std::string_view("data: \"x\"\n\n"),
        std::string_view("data: {\"choices\":5}\n\ndata: [DONE]\n\n"),
        std::string_view("data: {\"choices\":[{\"delta\":{\"tool_calls\":[{\"index\":\"x\"}]}}]}\n\n"),
        std::string_view("\xff\xfe garbage\n\n"), std::string_view("event: x\n\n\n\n\n")}) {
    const Translated r = run(s, 1);
    (void)events(r.out);
  }
}

}  // namespace
}  // namespace llmgw::providers
