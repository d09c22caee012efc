// The request side of Anthropic Messages in front of OpenAI-chat providers: the checks
// (inspect_messages_request) and the translation (messages_to_chat).
#include "providers/messages/messages.hpp"

#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>
#include <boost/json/value.hpp>

#include <gtest/gtest.h>

namespace llmgw::providers {
namespace {

namespace json = boost::json;

std::optional<RequestError> inspect(std::string_view body, InspectedRequest& out) {
  return inspect_messages_request(body, out);
}

std::optional<RequestError> inspect(std::string_view body) {
  InspectedRequest r;
  return inspect_messages_request(body, r);
}

/// The translation of `body`, parsed; fails the test when refused.
json::value chat(std::string_view body, bool stream = false) {
  std::string out;
  const auto refusal = messages_to_chat(body, "gpt-4o", stream, out);
  EXPECT_FALSE(refusal) << refusal->message;
  boost::system::error_code ec;
  json::value v = json::parse(out, ec);
  EXPECT_FALSE(ec) << out;
  return v;
}

std::optional<Refusal> refused(std::string_view body) {
  std::string out;
  return messages_to_chat(body, "gpt-4o", false, out);
}

TEST(InspectMessages, ReadsWhatTheGatewayNeeds) {
  InspectedRequest r;
  const auto e = inspect(R"({"model":"claude-sonnet-4-5","max_tokens":1024,"stream":true,
      "service_tier":"auto","system":[{"type":"text","text":"Be brief."}],
      "messages":[{"role":"user","content":"Hi"},
                  {"role":"assistant","content":[{"type":"text","text":"Hello"}]},
                  {"role":"user","content":[{"type":"image","source":{"type":"url",
                   "url":"https://x/y.png"}},{"type":"text","text":"What is it?"}]}],
      "stop_sequences":["END"],"temperature":0.5,"top_p":0.9,"top_k":40,
      "tools":[{"name":"f","input_schema":{"type":"object"}}],"tool_choice":{"type":"auto"},
      "metadata":{"user_id":"u1"},"thinking":{"type":"disabled"},"unknown_beta":{"x":1}})",
                       r);
  ASSERT_FALSE(e) << e->message;
  EXPECT_EQ(r.model, "claude-sonnet-4-5");
  EXPECT_TRUE(r.stream);
  EXPECT_EQ(r.max_output_tokens, 1024);
  EXPECT_EQ(r.choices, 1);
  EXPECT_EQ(r.service_tier, "auto");
  EXPECT_FALSE(r.client_wants_usage);
}

TEST(InspectMessages, KeysAreComparedDecoded) {
  InspectedRequest r;
  ASSERT_FALSE(inspect(R"({"mod\u0065l":"m","max_tokens":5,"messages":[{"role":"user","content":"x"}]})", r));
  EXPECT_EQ(r.model, "m");
  const auto e = inspect(
      R"({"model":"a","mod\u0065l":"b","max_tokens":5,"messages":[{"role":"user","content":"x"}]})");
  ASSERT_TRUE(e);
  EXPECT_EQ(e->param, "model");
  EXPECT_NE(e->message.find("Duplicate key 'model'"), std::string::npos);
}

TEST(InspectMessages, RefusesWithAnthropicStyleMessages) {
  struct Case {
    std::string_view body;
    std::string_view message;
    std::string_view param;
  };
  const Case cases[] = {
      {R"({"max_tokens":5,"messages":[{"role":"user","content":"x"}]})", "model: Field required",
       "model"},
      {R"({"model":7,"max_tokens":5,"messages":[{"role":"user","content":"x"}]})",
       "model: Input should be a valid string", "model"},
      {R"({"model":"m","messages":[{"role":"user","content":"x"}]})",
       "max_tokens: Field required", "max_tokens"},
      {R"({"model":"m","max_tokens":"5","messages":[{"role":"user","content":"x"}]})",
       "max_tokens: Input should be a valid integer", "max_tokens"},
      {R"({"model":"m","max_tokens":1.5,"messages":[{"role":"user","content":"x"}]})",
       "max_tokens: Input should be a valid integer", "max_tokens"},
      {R"({"model":"m","max_tokens":0,"messages":[{"role":"user","content":"x"}]})",
       "max_tokens: Input should be greater than or equal to 1", "max_tokens"},
      {R"({"model":"m","max_tokens":99999999999,"messages":[]})",
       "max_tokens: Input should be less than or equal to 2147483648", "max_tokens"},
      {R"({"model":"m","max_tokens":5})", "messages: Field required", "messages"},
      {R"({"model":"m","max_tokens":5,"messages":{}})", "messages: Input should be a valid list",
       "messages"},
      {R"({"model":"m","max_tokens":5,"messages":[]})",
       "messages: at least one message is required", "messages"},
      {R"({"model":"m","max_tokens":5,"messages":["hi"]})",
       "messages.0: Input should be a valid dictionary or object", "messages.0"},
      {R"({"model":"m","max_tokens":5,"messages":[{"content":"x"}]})",
       "messages.0.role: Field required", "messages.0.role"},
      {R"({"model":"m","max_tokens":5,"messages":[{"role":"user","content":"x"},{"role":"bot","content":"y"}]})",
       "messages.1.role: Input should be 'user', 'assistant' or 'system'", "messages.1.role"},
      {R"({"model":"m","max_tokens":5,"messages":[{"role":"user"}]})",
       "messages.0.content: Field required", "messages.0.content"},
      {R"({"model":"m","max_tokens":5,"messages":[{"role":"user","content":5}]})",
       "messages.0.content: Input should be a valid string or list", "messages.0.content"},
      {R"({"model":"m","max_tokens":5,"messages":[{"role":"user","content":[{"type":"text","text":"a"},{"text":"b"}]}]})",
       "messages.0.content.1.type: Field required", "messages.0.content.1.type"},
      {R"({"model":"m","max_tokens":5,"messages":[{"role":"user","content":[{"type":1}]}]})",
       "messages.0.content.0.type: Input should be a valid string", "messages.0.content.0.type"},
      {R"({"model":"m","max_tokens":5,"messages":[{"role":"user","content":["text"]}]})",
       "messages.0.content.0: Input should be a valid dictionary or object",
       "messages.0.content.0"},
      {R"({"model":"m","max_tokens":5,"system":5,"messages":[{"role":"user","content":"x"}]})",
       "system: Input should be a valid string or list", "system"},
      {R"({"model":"m","max_tokens":5,"system":[{"type":"image"}],"messages":[{"role":"user","content":"x"}]})",
       "system.0.type: Input should be 'text'", "system.0.type"},
      {R"({"model":"m","max_tokens":5,"stream":"yes","messages":[{"role":"user","content":"x"}]})",
       "stream: Input should be a valid boolean", "stream"},
      {R"({"model":"m","max_tokens":5,"stop_sequences":["a",1],"messages":[{"role":"user","content":"x"}]})",
       "stop_sequences.1: Input should be a valid string", "stop_sequences.1"},
      {R"({"model":"m","max_tokens":5,"temperature":"hot","messages":[{"role":"user","content":"x"}]})",
       "temperature: Input should be a valid number", "temperature"},
      {R"({"model":"m","max_tokens":5,"top_k":1.5,"messages":[{"role":"user","content":"x"}]})",
       "top_k: Input should be a valid integer", "top_k"},
      {R"({"model":"m","max_tokens":5,"tools":{},"messages":[{"role":"user","content":"x"}]})",
       "tools: Input should be a valid list", "tools"},
      {R"({"model":"m","max_tokens":5,"tool_choice":"auto","messages":[{"role":"user","content":"x"}]})",
       "tool_choice: Input should be a valid dictionary or object", "tool_choice"},
      {R"({"model":"m","max_tokens":5,"metadata":[],"messages":[{"role":"user","content":"x"}]})",
       "metadata: Input should be a valid dictionary or object", "metadata"},
      {R"({"model":"m","max_tokens":5,"service_tier":1,"messages":[{"role":"user","content":"x"}]})",
       "service_tier: Input should be a valid string", "service_tier"},
  };
  for (const Case& c : cases) {
    const auto e = inspect(c.body);
    ASSERT_TRUE(e) << c.body;
    EXPECT_EQ(e->message, c.message) << c.body;
    EXPECT_EQ(e->param, c.param) << c.body;
  }
}

TEST(InspectMessages, SystemRoleGetsAnthropicsHint) {
  const auto e = inspect(
      R"({"model":"m","max_tokens":5,"messages":[{"role":"system","content":"x"}]})");
  ASSERT_TRUE(e);
  EXPECT_NE(e->message.find("top-level `system` parameter"), std::string::npos);
  EXPECT_EQ(e->param, "messages.0.role");
}

TEST(InspectMessages, TakesSystemMessagesMidConversation) {
  // Anthropic's mid-conversation system messages (Claude Code sends one after the user turn).
  EXPECT_FALSE(inspect(R"({"model":"m","max_tokens":5,"messages":[
      {"role":"user","content":"x"},{"role":"system","content":"Be terse."}]})"));
  EXPECT_FALSE(inspect(R"({"model":"m","max_tokens":5,"messages":[
      {"role":"user","content":"x"},{"role":"assistant","content":"y"},
      {"role":"system","content":[{"type":"text","text":"Be terse."}]},
      {"role":"user","content":"z"}]})"));
}

TEST(InspectMessages, RefusesWhatIsNotJson) {
  for (std::string_view body : {"", "[]", "{", R"({"model":"m"} x)", "{\"model\":\"\xff\"}"}) {
    EXPECT_TRUE(inspect(body)) << body;
  }
  // Deep nesting is refused, not recursed into.
  std::string deep = R"({"model":"m","max_tokens":5,"messages":[{"role":"user","content":"x"}],"metadata":)";
  deep += std::string(200, '[') + std::string(200, ']') + "}";
  EXPECT_TRUE(inspect(deep));
}

TEST(InspectMessages, EveryCutOfABodyIsRefused) {
  constexpr std::string_view kBody = R"({"model":"m","max_tokens":5,"system":[{"type":"text",
      "text":"s"}],"messages":[{"role":"user","content":[{"type":"text","text":"x"}]}]})";
  ASSERT_FALSE(inspect(kBody));
  for (std::size_t n = 0; n < kBody.size(); ++n) {
    EXPECT_TRUE(inspect(kBody.substr(0, n))) << n;
  }
}

TEST(InspectMessages, NullOptionalsAreAbsent) {
  EXPECT_FALSE(inspect(R"({"model":"m","max_tokens":5,"system":null,"stream":null,"tools":null,
      "messages":[{"role":"user","content":"x"}]})"));
}

TEST(InspectMessages, ManyTopLevelKeysStayLinear) {
  std::string body = R"({"model":"m","max_tokens":5,"messages":[{"role":"user","content":"x"}])";
  for (int i = 0; i < 5000; ++i) {
    body += ",\"k" + std::to_string(i) + "\":1";
  }
  EXPECT_FALSE(inspect(body + "}"));
  const auto e = inspect(body + ",\"k4999\":2}");
  ASSERT_TRUE(e);
  EXPECT_EQ(e->param, "k4999");
}

TEST(MessagesToChat, StringSystemAndPlainTurns) {
  const json::value v = chat(R"({"model":"claude","max_tokens":300,"system":"Be brief.",
      "messages":[{"role":"user","content":"Hi"},{"role":"assistant","content":"Hello!"},
                  {"role":"user","content":[{"type":"text","text":"Again"}]}],
      "stop_sequences":["END","STOP"],"temperature":0.25,"top_p":0.5,"top_k":3,
      "metadata":{"user_id":"user-7"},"service_tier":"auto",
      "thinking":{"type":"enabled","budget_tokens":2048}})");
  const json::value expected = json::parse(R"({"model":"gpt-4o","messages":[
      {"role":"system","content":"Be brief."},{"role":"user","content":"Hi"},
      {"role":"assistant","content":"Hello!"},{"role":"user","content":"Again"}],
      "max_tokens":300,"stop":["END","STOP"],"temperature":0.25,"top_p":0.5,"user":"user-7"})");
  EXPECT_EQ(v, expected) << json::serialize(v);
}

TEST(MessagesToChat, SystemBlocksJoinIntoOneMessage) {
  const json::value v = chat(R"({"model":"c","max_tokens":5,"system":[
      {"type":"text","text":"You are Claude Code."},
      {"type":"text","text":"Long instructions.","cache_control":{"type":"ephemeral"}}],
      "messages":[{"role":"user","content":"x"}]})");
  EXPECT_EQ(v.at("messages").at(0),
            json::parse(R"({"role":"system","content":"You are Claude Code.\n\nLong instructions."})"));
  // An empty system adds no message.
  const json::value empty = chat(R"({"model":"c","max_tokens":5,"system":[],
      "messages":[{"role":"user","content":"x"}]})");
  EXPECT_EQ(empty.at("messages").as_array().size(), 1u);
}

TEST(MessagesToChat, ASystemMessageMidConversationStaysInPlace) {
  const json::value v = chat(R"({"model":"c","max_tokens":5,"system":"Top.","messages":[
      {"role":"user","content":"x"},{"role":"assistant","content":"y"},
      {"role":"system","content":[{"type":"text","text":"Be terse."},
                                  {"type":"text","text":"Really.","cache_control":{"type":"ephemeral"}}]},
      {"role":"user","content":"z"},{"role":"system","content":"Last."}]})");
  const json::value expected = json::parse(R"([
      {"role":"system","content":"Top."},{"role":"user","content":"x"},
      {"role":"assistant","content":"y"},{"role":"system","content":"Be terse.\n\nReally."},
      {"role":"user","content":"z"},{"role":"system","content":"Last."}])");
  EXPECT_EQ(v.at("messages"), expected) << json::serialize(v);
  // Only text can be said there.
  const auto r = refused(R"({"model":"c","max_tokens":5,"messages":[{"role":"user","content":"x"},
      {"role":"system","content":[{"type":"image","source":{"type":"url","url":"https://a/b.png"}}]}]})");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->param, "messages.1.content.0");
}

TEST(MessagesToChat, StreamAsksForUsage) {
  const json::value v = chat(R"({"model":"c","max_tokens":5,"stream":true,
      "messages":[{"role":"user","content":"x"}]})",
                             true);
  EXPECT_EQ(v.at("stream"), json::value(true));
  EXPECT_EQ(v.at("stream_options"), json::parse(R"({"include_usage":true})"));
  const json::value whole = chat(R"({"model":"c","max_tokens":5,
      "messages":[{"role":"user","content":"x"}]})");
  EXPECT_FALSE(whole.as_object().contains("stream"));
  EXPECT_FALSE(whole.as_object().contains("stream_options"));
}

TEST(MessagesToChat, ImagesBecomeImageUrlParts) {
  const json::value v = chat(R"({"model":"c","max_tokens":5,"messages":[{"role":"user","content":[
      {"type":"image","source":{"type":"base64","media_type":"image/png","data":"iVBORw0K"}},
      {"type":"image","source":{"type":"url","url":"https://example.com/cat.jpg"}},
      {"type":"text","text":"Compare them."}]}]})");
  EXPECT_EQ(v.at("messages").at(0), json::parse(R"({"role":"user","content":[
      {"type":"image_url","image_url":{"url":"data:image/png;base64,iVBORw0K"}},
      {"type":"image_url","image_url":{"url":"https://example.com/cat.jpg"}},
      {"type":"text","text":"Compare them."}]})"));
}

TEST(MessagesToChat, ToolUseRoundTrip) {
  const json::value v = chat(R"({"model":"c","max_tokens":5,
      "tools":[{"name":"get_weather","description":"Weather now","input_schema":{"type":"object",
                "properties":{"city":{"type":"string"}},"required":["city"]},
                "cache_control":{"type":"ephemeral"}},
               {"name":"get_time","input_schema":{"type":"object"}}],
      "tool_choice":{"type":"auto","disable_parallel_tool_use":true},
      "messages":[
        {"role":"user","content":"Weather and time in Paris?"},
        {"role":"assistant","content":[
          {"type":"thinking","thinking":"Use both tools.","signature":"sig"},
          {"type":"text","text":"Checking."},
          {"type":"tool_use","id":"toolu_01","name":"get_weather","input":{"city":"Paris"}},
          {"type":"tool_use","id":"call_02","name":"get_time","input":{}}]},
        {"role":"user","content":[
          {"type":"tool_result","tool_use_id":"toolu_01","content":"18C, cloudy"},
          {"type":"tool_result","tool_use_id":"call_02","is_error":true,
           "content":[{"type":"text","text":"clock offline"},{"type":"text","text":"retry later"}]},
          {"type":"text","text":"Summarise."}]}]})");
  const json::value expected = json::parse(R"({"model":"gpt-4o","messages":[
      {"role":"user","content":"Weather and time in Paris?"},
      {"role":"assistant","content":"Checking.","tool_calls":[
        {"id":"toolu_01","type":"function","function":{"name":"get_weather","arguments":"{\"city\":\"Paris\"}"}},
        {"id":"call_02","type":"function","function":{"name":"get_time","arguments":"{}"}}]},
      {"role":"tool","tool_call_id":"toolu_01","content":"18C, cloudy"},
      {"role":"tool","tool_call_id":"call_02","content":"Error: clock offline\nretry later"},
      {"role":"user","content":"Summarise."}],
      "max_tokens":5,
      "tools":[{"type":"function","function":{"name":"get_weather","description":"Weather now",
                "parameters":{"type":"object","properties":{"city":{"type":"string"}},"required":["city"]}}},
               {"type":"function","function":{"name":"get_time","parameters":{"type":"object"}}}],
      "tool_choice":"auto","parallel_tool_calls":false})");
  EXPECT_EQ(v, expected) << json::serialize(v);
}

TEST(MessagesToChat, ToolResultsComeBeforeTheRestOfTheirTurn) {
  const json::value v = chat(R"({"model":"c","max_tokens":5,"messages":[
      {"role":"user","content":"Go"},
      {"role":"assistant","content":[{"type":"tool_use","id":"t1","name":"read","input":{"p":"a.png"}}]},
      {"role":"user","content":[{"type":"text","text":"Here:"},
        {"type":"tool_result","tool_use_id":"t1","content":[
          {"type":"text","text":"an image"},
          {"type":"image","source":{"type":"base64","media_type":"image/gif","data":"R0lG"}}]},
        {"type":"tool_result","tool_use_id":"t2","is_error":true}]}]})");
  const json::value expected = json::parse(R"([
      {"role":"user","content":"Go"},
      {"role":"assistant","content":null,"tool_calls":[
        {"id":"t1","type":"function","function":{"name":"read","arguments":"{\"p\":\"a.png\"}"}}]},
      {"role":"tool","tool_call_id":"t1","content":"an image"},
      {"role":"tool","tool_call_id":"t2","content":"Error"},
      {"role":"user","content":[{"type":"text","text":"Here:"},
        {"type":"image_url","image_url":{"url":"data:image/gif;base64,R0lG"}}]}])");
  EXPECT_EQ(v.at("messages"), expected) << json::serialize(v.at("messages"));
}

TEST(MessagesToChat, ToolChoiceVariants) {
  constexpr std::string_view kHead = R"({"model":"c","max_tokens":5,
      "tools":[{"name":"f","input_schema":{"type":"object"}}],
      "messages":[{"role":"user","content":"x"}],"tool_choice":)";
  const std::pair<std::string_view, std::string_view> cases[] = {
      {R"({"type":"auto"})", R"("auto")"},
      {R"({"type":"any"})", R"("required")"},
      {R"({"type":"none"})", R"("none")"},
      {R"({"type":"tool","name":"f"})", R"({"type":"function","function":{"name":"f"}})"},
  };
  for (const auto& [in, expected] : cases) {
    const json::value v = chat(std::string(kHead) + std::string(in) + "}");
    EXPECT_EQ(v.at("tool_choice"), json::parse(expected)) << in;
    EXPECT_FALSE(v.as_object().contains("parallel_tool_calls"));
  }
  // Without tools, OpenAI refuses tool_choice: it is left out.
  const json::value v = chat(R"({"model":"c","max_tokens":5,"tool_choice":{"type":"any"},
      "messages":[{"role":"user","content":"x"}]})");
  EXPECT_FALSE(v.as_object().contains("tool_choice"));
  EXPECT_FALSE(v.as_object().contains("tools"));
}

TEST(MessagesToChat, RefusesWhatHasNoOpenAiForm) {
  const std::pair<std::string_view, std::string_view> cases[] = {
      {R"({"model":"c","max_tokens":5,"messages":[{"role":"user","content":[
          {"type":"document","source":{"type":"base64","media_type":"application/pdf","data":"JVBE"}}]}]})",
       "messages.0.content.0"},
      {R"({"model":"c","max_tokens":5,"messages":[{"role":"user","content":[
          {"type":"image","source":{"type":"file","file_id":"file_1"}}]}]})",
       "messages.0.content.0.source"},
      {R"({"model":"c","max_tokens":5,"messages":[{"role":"user","content":"x"},
          {"role":"assistant","content":[{"type":"server_tool_use","id":"s","name":"web_search","input":{}}]}]})",
       "messages.1.content.0"},
      {R"({"model":"c","max_tokens":5,"tools":[{"type":"web_search_20250305","name":"web_search"}],
          "messages":[{"role":"user","content":"x"}]})",
       "tools.0.type"},
      {R"({"model":"c","max_tokens":5,"tools":[{"name":"f"}],"messages":[{"role":"user","content":"x"}]})",
       "tools.0.input_schema"},
      {R"({"model":"c","max_tokens":5,"tools":[{"name":"f","input_schema":{}}],
          "tool_choice":{"type":"tool"},"messages":[{"role":"user","content":"x"}]})",
       "tool_choice.name"},
      {R"({"model":"c","max_tokens":5,"messages":[{"role":"user","content":[
          {"type":"tool_result","tool_use_id":"t","content":[{"type":"document"}]}]}]})",
       "messages.0.content.0.content.0"},
  };
  for (const auto& [body, param] : cases) {
    const auto r = refused(body);
    ASSERT_TRUE(r) << body;
    EXPECT_EQ(r->param, param) << r->message;
    EXPECT_EQ(r->errc, core::Errc::BadRequest);
    EXPECT_FALSE(r->message.empty());
  }
  const auto doc = refused(R"({"model":"c","max_tokens":5,"messages":[{"role":"user","content":[
      {"type":"document","source":{}}]}]})");
  ASSERT_TRUE(doc);
  EXPECT_NE(doc->message.find("'document'"), std::string::npos) << doc->message;
}

TEST(MessagesToChat, KeepsTheClientsNumbersAndText) {
  const json::value v = chat(R"({"model":"c","max_tokens":5,"messages":[
      {"role":"user","content":"caf\u00e9 \"quoted\" \\ \ud83d\ude00"},
      {"role":"assistant","content":[{"type":"tool_use","id":"t","name":"f",
        "input":{"n":1.5,"big":12345678901234,"neg":-3,"s":"\u00e9","nested":{"a":[1,null,true]}}}]},
      {"role":"user","content":[{"type":"tool_result","tool_use_id":"t","content":"ok"}]}]})");
  EXPECT_EQ(v.at("messages").at(0).at("content"), json::value("café \"quoted\" \\ \xF0\x9F\x98\x80"));
  // Numbers keep their shortest form: the model reads these arguments in its history.
  EXPECT_EQ(v.at("messages").at(1).at("tool_calls").at(0).at("function").at("arguments"),
            json::value("{\"n\":1.5,\"big\":12345678901234,\"neg\":-3,\"s\":\"\u00e9\","
                        "\"nested\":{\"a\":[1,null,true]}}"));
  std::string out;
  ASSERT_FALSE(messages_to_chat(R"({"model":"c","max_tokens":5,"temperature":0.7,"top_p":1.0,
      "messages":[{"role":"user","content":"x"}]})",
                                "m", false, out));
  EXPECT_EQ(out, R"({"model":"m","messages":[{"role":"user","content":"x"}],"max_tokens":5,)"
                 R"("temperature":0.7,"top_p":1})");
}

}  // namespace
}  // namespace llmgw::providers
