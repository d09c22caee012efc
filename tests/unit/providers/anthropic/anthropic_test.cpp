#include "providers/anthropic/anthropic.hpp"
#include "providers/anthropic/codec.hpp"

#include <boost/json/parse.hpp>
#include <gtest/gtest.h>

#include <stdexcept>

namespace llmgw::providers {
namespace {

namespace json = boost::json;

constexpr std::string_view kKey = "sk-ant-secret-0123456789";

core::ProviderConfig config(std::string base_url = "") {
  core::ProviderConfig c;
  c.name = "claude";
  c.type = core::ProviderType::Anthropic;
  c.base_url = std::move(base_url);
  c.api_key = kKey;
  return c;
}

CallInput chat(std::string_view body) {
  CallInput in;
  in.format = Format::OpenAIChat;
  in.body = body;
  in.upstream_model = "claude-sonnet-4-5-20250929";
  in.request_id = "r1";
  in.created = 1700000000;
  return in;
}

json::object body_of(const CallInput& in, anthropic::MessagesOptions options = {}) {
  std::string body;
  const auto refusal = anthropic::build_request(in, options, body);
  EXPECT_FALSE(refusal.has_value()) << refusal->message;
  return json::parse(body).as_object();
}

std::optional<Refusal> refusal_of(const CallInput& in) {
  std::string body;
  return anthropic::build_request(in, {}, body);
}

// Settings -------------------------------------------------------------------------------------

TEST(AnthropicAdapter, DefaultsToThePublicEndpoint) {
  const auto a = make_anthropic_adapter(config());
  EXPECT_TRUE(a->origin().tls);
  EXPECT_EQ(a->origin().host, "api.anthropic.com");
  EXPECT_EQ(a->origin().port, 443);
  EXPECT_TRUE(a->accepts(Format::AnthropicMessages));
  EXPECT_TRUE(a->accepts(Format::OpenAIChat));
  EXPECT_FALSE(a->accepts(Format::OpenAIEmbeddings));
  EXPECT_FALSE(a->errors_pass_through(Format::OpenAIChat));
}

TEST(AnthropicAdapter, RefusesUnusableSettingsWithoutQuotingTheKey) {
  auto no_key = config();
  no_key.api_key.clear();
  EXPECT_THROW(make_anthropic_adapter(no_key), std::invalid_argument);
  EXPECT_THROW(make_anthropic_adapter(config("ftp://example.com")), std::invalid_argument);
  auto broken = config();
  broken.api_key = std::string(kKey) + "\r\nx-injected: 1";
  try {
    make_anthropic_adapter(broken);
    FAIL() << "a key with a line break was accepted";
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find("api_key"), std::string::npos);
    EXPECT_EQ(std::string(e.what()).find(kKey), std::string::npos);
  }
  auto version = config();
  version.settings["anthropic_version"] = "2023-06-01\nx: y";
  EXPECT_THROW(make_anthropic_adapter(version), std::invalid_argument);
}

TEST(AnthropicAdapter, SendsTheClientBodyUncopiedWhenTheModelNeedsNoRename) {
  const auto a = make_anthropic_adapter(config());
  const std::string body = R"({"model":"claude-x","max_tokens":5,"messages":[]})";
  CallInput in;
  in.format = Format::AnthropicMessages;
  in.body = body;
  in.upstream_model = "claude-x";
  Outgoing out;
  ASSERT_FALSE(a->prepare(in, out).has_value());
  EXPECT_TRUE(out.client_body);
  EXPECT_EQ(out.target, "/v1/messages");
  in.upstream_model = "claude-y";
  ASSERT_FALSE(a->prepare(in, out).has_value());
  EXPECT_FALSE(out.client_body);
  EXPECT_EQ(out.body, R"({"model":"claude-y","max_tokens":5,"messages":[]})");
}

TEST(AnthropicAdapter, PassesAMessagesClientsBetasOn) {
  const auto a = make_anthropic_adapter(config());
  const std::string body = R"({"model":"claude-x","max_tokens":5,"messages":[]})";
  CallInput in;
  in.format = Format::AnthropicMessages;
  in.body = body;
  in.upstream_model = "claude-x";
  in.anthropic_beta = "context-management-2025-06-27,advanced-tool-use-2025-11-20";
  Outgoing out;
  ASSERT_FALSE(a->prepare(in, out).has_value());
  EXPECT_NE(out.headers.find(
                "\r\nanthropic-beta: context-management-2025-06-27,advanced-tool-use-2025-11-20\r\n"),
            std::string::npos)
      << out.headers;
  // Renamed model, same betas.
  in.upstream_model = "claude-y";
  ASSERT_FALSE(a->prepare(in, out).has_value());
  EXPECT_NE(out.headers.find("anthropic-beta: context-management"), std::string::npos);
  // None named, none sent; an OpenAI chat call carries none.
  in.anthropic_beta = {};
  ASSERT_FALSE(a->prepare(in, out).has_value());
  EXPECT_EQ(out.headers.find("anthropic-beta"), std::string::npos);
  const std::string chat_body = R"({"model":"m","messages":[{"role":"user","content":"hi"}]})";
  CallInput c = chat(chat_body);
  c.anthropic_beta = "context-management-2025-06-27";
  ASSERT_FALSE(a->prepare(c, out).has_value());
  EXPECT_EQ(out.headers.find("anthropic-beta"), std::string::npos);
  // A value that could split the request is refused, never sent.
  in.anthropic_beta = "x\r\nx-injected: 1";
  const auto refusal = a->prepare(in, out);
  ASSERT_TRUE(refusal.has_value());
  EXPECT_EQ(refusal->param, "anthropic-beta");
}

TEST(AnthropicCodec, SplicesAModelIntoABodyThatNamesNone) {
  CallInput in;
  in.format = Format::AnthropicMessages;
  in.upstream_model = "claude-y";
  std::string out;
  for (const auto& [body, want] : std::vector<std::pair<std::string, std::string>>{
           {R"({"max_tokens":5})", R"({"model":"claude-y","max_tokens":5})"},
           {"{ }", R"({"model":"claude-y" })"}}) {
    in.body = body;
    ASSERT_FALSE(anthropic::build_request(in, {}, out).has_value());
    EXPECT_EQ(out, want);
  }
  in.body = R"({"model":"a"})";
  ASSERT_FALSE(anthropic::build_request(in, {.vertex = true, .anthropic_version = "v"}, out));
  EXPECT_EQ(out, R"({"anthropic_version":"v"})");
}

// Requests -------------------------------------------------------------------------------------

TEST(AnthropicCodec, VertexBodiesNameNoModelAndCarryTheVersion) {
  CallInput in;
  in.format = Format::AnthropicMessages;
  const std::string body = R"( { "model" : "claude-x", "max_tokens":5,"messages":[]})";
  in.body = body;
  in.upstream_model = "claude-sonnet-4-5@20250929";
  anthropic::MessagesOptions vertex{.vertex = true, .anthropic_version = {}};
  EXPECT_FALSE(anthropic::body_unchanged(in, vertex));
  json::object o = body_of(in, vertex);
  EXPECT_FALSE(o.contains("model"));
  EXPECT_EQ(o.at("anthropic_version"), "vertex-2023-10-16");
  EXPECT_EQ(o.at("max_tokens"), 5);

  const std::string with_version =
      R"({"max_tokens":5,"anthropic_version":"old","messages":[],"model":"m"})";
  in.body = with_version;
  vertex.anthropic_version = "vertex-2099-01-01";
  o = body_of(in, vertex);
  EXPECT_FALSE(o.contains("model"));
  EXPECT_EQ(o.at("anthropic_version"), "vertex-2099-01-01");

  const auto c = chat(R"({"model":"m","messages":[{"role":"user","content":"Hi"}]})");
  o = body_of(c, {.vertex = true, .anthropic_version = {}});
  EXPECT_FALSE(o.contains("model"));
  EXPECT_EQ(o.begin()->key(), "anthropic_version");
  EXPECT_EQ(o.at("anthropic_version"), "vertex-2023-10-16");
}

TEST(AnthropicCodec, MaxTokensComesFromTheClientThenThePriceListThenTheDefault) {
  const std::string body = R"({"model":"m","messages":[{"role":"user","content":"Hi"}]})";
  auto in = chat(body);
  EXPECT_EQ(body_of(in).at("max_tokens"), anthropic::kDefaultMaxTokens);
  in.max_output_tokens = 64000;
  EXPECT_EQ(body_of(in).at("max_tokens"), 64000);
  const std::string given =
      R"({"model":"m","max_tokens":10,"messages":[{"role":"user","content":"Hi"}]})";
  in.body = given;
  EXPECT_EQ(body_of(in).at("max_tokens"), 10);
}

TEST(AnthropicCodec, ReasoningEffortLeavesRoomAboveTheThinkingBudget) {
  const std::string high =
      R"({"model":"m","reasoning_effort":"high","messages":[{"role":"user","content":"Hi"}]})";
  const json::object o = body_of(chat(high));
  EXPECT_EQ(o.at("thinking").at("budget_tokens"), 4096);
  EXPECT_EQ(o.at("max_tokens"), 4096 + anthropic::kDefaultMaxTokens);
  const std::string tight =
      R"({"model":"m","reasoning_effort":"low","max_tokens":1000,"messages":[{"role":"user","content":"Hi"}]})";
  const auto r = refusal_of(chat(tight));
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r->param, "reasoning_effort");
  const std::string none =
      R"({"model":"m","reasoning_effort":"none","messages":[{"role":"user","content":"Hi"}]})";
  EXPECT_FALSE(body_of(chat(none)).contains("thinking"));
}

TEST(AnthropicCodec, NumbersAreWrittenAsTheClientMeantThem) {
  const std::string body =
      R"({"model":"m","temperature":0.7,"top_p":1.0,"messages":[{"role":"user","content":"Hi"}],)"
      R"("tools":[{"type":"function","function":{"name":"f","parameters":{"type":"object",)"
      R"("properties":{"x":{"type":"number","minimum":0.25}}}}}]})";
  std::string out;
  ASSERT_FALSE(anthropic::build_request(chat(body), {}, out).has_value());
  EXPECT_NE(out.find(R"("temperature":0.7)"), std::string::npos) << out;
  EXPECT_NE(out.find(R"("minimum":0.25)"), std::string::npos) << out;
  const std::string huge = R"({"model":"m","temperature":1e400,"messages":[{"role":"user","content":"Hi"}]})";
  const auto r = refusal_of(chat(huge));
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r->message, "The request holds a number out of range.");
}

TEST(AnthropicCodec, AssistantToolCallsWithEmptyContentAndArguments) {
  const std::string body = R"({"model":"m","messages":[
    {"role":"user","content":"Time?"},
    {"role":"assistant","content":"","tool_calls":[{"id":"t1","type":"function","function":{"name":"now","arguments":""}}]},
    {"role":"tool","tool_call_id":"t1","content":"12:00"}]})";
  const json::object o = body_of(chat(body));
  const auto& assistant = o.at("messages").at(1).as_object();
  ASSERT_EQ(assistant.at("content").as_array().size(), 1u);
  EXPECT_EQ(assistant.at("content").at(0).at("type"), "tool_use");
  EXPECT_EQ(assistant.at("content").at(0).at("input"), json::object{});
}

TEST(AnthropicCodec, RefusesWhatAnthropicCannotTake) {
  struct Case {
    std::string body;
    std::string param;
  };
  const std::vector<Case> cases{
      {R"({"model":"m","messages":[{"role":"system","content":"only a system prompt"}]})",
       "messages"},
      {R"({"model":"m","messages":[42]})", "messages[0]"},
      {R"({"model":"m","messages":[{"role":"wizard","content":"x"}]})", "messages[0].role"},
      {R"({"model":"m","messages":[{"role":"user","content":7}]})", "messages[0].content"},
      {R"({"model":"m","messages":[{"role":"user","content":[{"type":"input_audio"}]}]})",
       "messages[0].content[0].type"},
      {R"({"model":"m","messages":[{"role":"assistant","tool_calls":{}}]})",
       "messages[0].tool_calls"},
      {R"({"model":"m","messages":[{"role":"assistant","tool_calls":[{"id":"a","function":{"name":"f","arguments":"[1]"}}]}]})",
       "messages[0].tool_calls[0].function.arguments"},
      {R"({"model":"m","messages":[{"role":"tool","content":"x"}]})", "messages[0].tool_call_id"},
      {R"({"model":"m","logprobs":true,"messages":[{"role":"user","content":"x"}]})", "logprobs"},
      {R"({"model":"m","tools":[{"type":"web_search"}],"messages":[{"role":"user","content":"x"}]})",
       "tools[0].type"},
      {R"({"model":"m","tool_choice":"sometimes","messages":[{"role":"user","content":"x"}]})",
       "tool_choice"},
      {R"({"model":"m","stop":7,"messages":[{"role":"user","content":"x"}]})", "stop"},
      {R"({"model":"m","user":7,"messages":[{"role":"user","content":"x"}]})", "user"},
      {R"({"model":"m","messages":[{"role":"user","content":"x"}],"functions":[]})", "functions"},
  };
  for (const auto& c : cases) {
    const auto r = refusal_of(chat(c.body));
    ASSERT_TRUE(r.has_value()) << c.body;
    EXPECT_EQ(r->param, c.param) << c.body;
    EXPECT_EQ(r->errc, core::Errc::BadRequest);
  }
  const std::string n1 = R"({"model":"m","n":1,"messages":[{"role":"user","content":"x"}]})";
  EXPECT_FALSE(refusal_of(chat(n1)).has_value());
}

TEST(AnthropicCodec, GarbageRequestBodiesAreRefusedNotCrashedOn) {
  for (const std::string body : {"", "[]", "{", "null", R"({"model":"m")"}) {
    auto in = chat(body);
    EXPECT_TRUE(refusal_of(in).has_value()) << body;
    in.format = Format::AnthropicMessages;
    std::string out;
    if (body == "[]" || body.empty() || body == "null") {
      EXPECT_TRUE(anthropic::build_request(in, {}, out).has_value()) << body;
    } else {
      (void)anthropic::build_request(in, {}, out);  // not validated here: only must not crash
    }
  }
}

// Answers and errors ---------------------------------------------------------------------------

TEST(AnthropicCodec, EveryTruncationOfAnAnswerIsRefused) {
  const std::string answer =
      R"({"id":"msg_1","type":"message","role":"assistant","model":"claude","content":[)"
      R"({"type":"text","text":"Hi"},{"type":"tool_use","id":"t","name":"f","input":{"a":[1,2]}}],)"
      R"("stop_reason":"tool_use","usage":{"input_tokens":3,"output_tokens":4}})";
  for (const Format f : {Format::OpenAIChat, Format::AnthropicMessages}) {
    auto in = chat("{}");
    in.format = f;
    std::string out;
    Answer a;
    ASSERT_TRUE(anthropic::translate_answer(in, answer, out, a));
    EXPECT_EQ(a.usage.output_tokens, 4);
    EXPECT_EQ(a.model, "claude");
    for (std::size_t n = 0; n < answer.size(); ++n) {
      Answer partial;
      EXPECT_FALSE(anthropic::translate_answer(in, answer.substr(0, n), out, partial)) << n;
    }
  }
}

TEST(AnthropicCodec, ErrorTypesWinOverStatusesAndKeepTheProviderMessage) {
  auto e = anthropic::translate_error(
      500, R"({"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}})", "7");
  EXPECT_EQ(e.status, 503u);
  EXPECT_EQ(e.retry_after, "7");
  e = anthropic::translate_error(
      402, R"({"type":"error","error":{"type":"billing_error","message":"Your credit balance is too low"}})",
      "");
  EXPECT_EQ(e.status, 502u);
  EXPECT_TRUE(e.credential_refused);
  e = anthropic::translate_error(413, R"({"type":"error","error":{"type":"request_too_large",)"
                                      R"("message":"Request exceeds the maximum size"}})",
                                 "");
  EXPECT_EQ(e.status, 400u);
  EXPECT_EQ(e.message, "Request exceeds the maximum size");
  e = anthropic::translate_error(504, "", "");
  EXPECT_EQ(e.status, 504u);
  EXPECT_EQ(e.type, "timeout_error");
  EXPECT_EQ(render_provider_error(Format::AnthropicMessages, e),
            R"({"type":"error","error":{"type":"timeout_error","message":"The provider answered HTTP 504."}})");
}

// Streams --------------------------------------------------------------------------------------

std::string run(const CallInput& in, const std::string& sse, bool complete,
                std::unique_ptr<StreamTranslator>* keep = nullptr) {
  auto t = anthropic::make_stream_translator(in);
  std::string buffer = sse, out;
  t->feed(buffer, out);
  t->finish(buffer, out, complete);
  if (keep != nullptr) {
    *keep = std::move(t);
  }
  return out;
}

TEST(AnthropicStream, ARestatedCacheWriteTotalKeepsTheOneHourSplit) {
  auto in = chat("{}");
  in.format = Format::AnthropicMessages;
  const std::string sse =
      "event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"model\":\"c\",\"usage\":"
      "{\"input_tokens\":5,\"cache_creation_input_tokens\":300,\"cache_creation\":"
      "{\"ephemeral_5m_input_tokens\":100,\"ephemeral_1h_input_tokens\":200},\"output_tokens\":1}}}\n\n"
      "event: message_delta\ndata: {\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"end_turn\"},"
      "\"usage\":{\"input_tokens\":null,\"cache_creation_input_tokens\":400,\"output_tokens\":30}}\n\n"
      "event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n";
  std::unique_ptr<StreamTranslator> t;
  EXPECT_EQ(run(in, sse, true, &t), sse);
  EXPECT_TRUE(t->ended());
  EXPECT_EQ(t->usage().input_tokens, 5);
  EXPECT_EQ(t->usage().output_tokens, 30);
  EXPECT_EQ(t->usage().cache_write_1h_tokens, 200);
  EXPECT_EQ(t->usage().cache_write_5m_tokens, 200);
}

TEST(AnthropicStream, AStreamWithoutItsEndMarkerEndsNothing) {
  const std::string sse =
      "event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"model\":\"c\"}}\n\n"
      "event: message_stop\ndata: {\"type\":\"message_stop\"}";
  std::unique_ptr<StreamTranslator> t;
  // The body ended normally right after the last event's data: that ends the event too.
  const std::string out = run(chat("{}"), sse, true, &t);
  EXPECT_TRUE(t->ended());
  EXPECT_NE(out.find("data: [DONE]\n\n"), std::string::npos);
  run(chat("{}"), sse, false, &t);
  EXPECT_FALSE(t->ended());
  EXPECT_TRUE(t->error().empty());
}

TEST(AnthropicStream, AnOversizedEventEndsTheStreamWithAnError) {
  auto t = anthropic::make_stream_translator(chat("{}"));
  std::string in = "event: content_block_delta\ndata: \"" + std::string(5u << 20, 'x');
  std::string out;
  t->feed(in, out);
  EXPECT_EQ(t->error(), "upstream_error");
  EXPECT_TRUE(in.empty());
  EXPECT_NE(out.find("could not be read"), std::string::npos);
}

TEST(AnthropicStream, NeverCrashesOnTruncatedOrGarbledStreams) {
  const std::string sse =
      "event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"model\":\"c\",\"usage\":{\"input_tokens\":5,\"output_tokens\":1}}}\n\n"
      "event: content_block_start\ndata: {\"type\":\"content_block_start\",\"index\":0,\"content_block\":{\"type\":\"tool_use\",\"id\":\"t\",\"name\":\"f\",\"input\":{}}}\n\n"
      "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"input_json_delta\",\"partial_json\":\"{\\\"a\\\":1}\"}}\n\n"
      "event: message_delta\ndata: {\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"tool_use\"},\"usage\":{\"output_tokens\":9}}\n\n"
      "event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n";
  for (const Format f : {Format::OpenAIChat, Format::AnthropicMessages}) {
    auto in = chat("{}");
    in.format = f;
    for (std::size_t n = 0; n <= sse.size(); ++n) {
      std::string cut = sse.substr(0, n);
      (void)run(in, cut, true);
      (void)run(in, cut, false);
      std::string garbled = sse;
      garbled[n % sse.size()] = static_cast<char>(n * 37 % 256);
      (void)run(in, garbled, true);
    }
    std::unique_ptr<StreamTranslator> t;
    (void)run(in, sse, true, &t);
    EXPECT_TRUE(t->ended());
    EXPECT_EQ(t->usage().output_tokens, 9);
  }
}

TEST(AnthropicStream, AnErrorEventWithoutJsonStillEndsTheStream) {
  std::unique_ptr<StreamTranslator> t;
  const std::string out = run(chat("{}"), "event: error\ndata: oops\n\ndata: [DONE]\n\n", true, &t);
  EXPECT_EQ(t->error(), "upstream_error");
  EXPECT_EQ(out,
            "data: {\"error\":{\"message\":\"The provider's stream ended with an error.\","
            "\"type\":\"upstream_error\",\"param\":null,\"code\":null}}\n\n");
}

}  // namespace
}  // namespace llmgw::providers
