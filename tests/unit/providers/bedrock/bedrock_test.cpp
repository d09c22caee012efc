// The bedrock adapter beyond its golden cases: the settings it refuses, what it signs, that no
// secret reaches a message, and inputs no golden case holds (broken client bodies, provider
// answers of the wrong shape, streams split at every offset).

#include "providers/bedrock/bedrock.hpp"
#include "providers/bedrock/converse.hpp"
#include "providers/bedrock/converse_stream.hpp"
#include "providers/bedrock/event_stream.hpp"
#include "providers/bedrock/redactor.hpp"

#include "read_file.hpp"

#include <gtest/gtest.h>

#include <filesystem>
#include <stdexcept>

namespace llmgw::providers::bedrock {
namespace {

constexpr std::string_view kSecret = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY";
constexpr std::string_view kToken = "FwoGZXIvYXdzEXAMPLEsessiontoken0123456789";
constexpr std::string_view kApiKey = "ABSKexampleBedrockApiKey0123456789";
constexpr std::string_view kChat = R"({"model":"m","messages":[{"role":"user","content":"Hi"}]})";

core::ProviderConfig signing_provider() {
  core::ProviderConfig p;
  p.name = "bedrock";
  p.type = core::ProviderType::Bedrock;
  p.settings = {{"region", "us-west-2"}, {"aws_access_key_id", "AKIDEXAMPLE"}};
  p.secrets = {{"aws_secret_access_key", std::string(kSecret)},
               {"aws_session_token", std::string(kToken)}};
  return p;
}

core::ProviderConfig api_key_provider() {
  core::ProviderConfig p;
  p.name = "bedrock";
  p.type = core::ProviderType::Bedrock;
  p.settings = {{"region", "us-east-1"}};
  p.api_key = kApiKey;
  return p;
}

CallInput chat(std::string_view body = kChat, bool stream = false) {
  CallInput in;
  in.body = body;
  in.upstream_model = "anthropic.claude-3-haiku-20240307-v1:0";
  in.stream = stream;
  in.request_id = "r1";
  in.created = 1'700'000'000;
  in.now = std::chrono::system_clock::time_point(std::chrono::seconds(1'700'000'000));
  return in;
}

/// The message of the std::invalid_argument `p` is refused with ("" if it is accepted).
std::string refusal_of(const core::ProviderConfig& p) {
  try {
    (void)make_bedrock_adapter(p);
  } catch (const std::invalid_argument& e) {
    return e.what();
  }
  return {};
}

TEST(BedrockSettings, RefusesWhatCannotWorkNamingTheSetting) {
  auto p = signing_provider();
  p.settings.erase("region");
  EXPECT_NE(refusal_of(p).find("'region'"), std::string::npos);
  p.settings["region"] = "us-east-1.evil.example\r\nX: y";
  EXPECT_NE(refusal_of(p).find("'region'"), std::string::npos);

  p = signing_provider();
  p.settings.erase("aws_access_key_id");
  EXPECT_NE(refusal_of(p).find("'aws_access_key_id'"), std::string::npos);
  p = signing_provider();
  p.secrets.erase("aws_secret_access_key");
  EXPECT_NE(refusal_of(p).find("'aws_secret_access_key'"), std::string::npos);
  p = signing_provider();
  p.api_key = kApiKey;
  EXPECT_NE(refusal_of(p).find("'api_key'"), std::string::npos);
  p = signing_provider();
  p.secrets["aws_session_token"] = "line\r\nInjected: 1";
  EXPECT_NE(refusal_of(p).find("'aws_session_token'"), std::string::npos);

  p = api_key_provider();
  p.api_key.clear();
  const std::string none = refusal_of(p);
  EXPECT_NE(none.find("'aws_access_key_id'"), std::string::npos);
  EXPECT_NE(none.find("'api_key'"), std::string::npos);
  p = api_key_provider();
  p.base_url = "ftp://example.com";
  EXPECT_NE(refusal_of(p).find("'base_url'"), std::string::npos);

  // No refusal quotes a secret.
  for (auto q : {signing_provider(), api_key_provider()}) {
    q.api_key = kApiKey;
    const std::string m = refusal_of(q);
    EXPECT_EQ(m.find(kSecret), std::string::npos);
    EXPECT_EQ(m.find(kToken), std::string::npos);
    EXPECT_EQ(m.find(kApiKey), std::string::npos);
  }
  EXPECT_EQ(refusal_of(signing_provider()), "");
  EXPECT_EQ(refusal_of(api_key_provider()), "");
}

TEST(BedrockAdapter, DefaultsToTheRegionalEndpoint) {
  const auto a = make_bedrock_adapter(signing_provider());
  EXPECT_TRUE(a->origin().tls);
  EXPECT_EQ(a->origin().host_header, "bedrock-runtime.us-west-2.amazonaws.com");
  EXPECT_EQ(a->origin().port, 443);
  EXPECT_EQ(a->stream_content_type(), "application/vnd.amazon.eventstream");
  EXPECT_TRUE(a->accepts(Format::OpenAIChat));
  EXPECT_FALSE(a->accepts(Format::AnthropicMessages));
}

TEST(BedrockAdapter, EncodesArnModelIdsAsOneSegment) {
  const auto a = make_bedrock_adapter(api_key_provider());
  auto in = chat(kChat, true);
  const std::string arn =
      "arn:aws:bedrock:us-east-1:123456789012:inference-profile/us.anthropic.claude-v1:0";
  in.upstream_model = arn;
  Outgoing out;
  ASSERT_FALSE(a->prepare(in, out).has_value());
  EXPECT_EQ(out.target,
            "/model/arn%3Aaws%3Abedrock%3Aus-east-1%3A123456789012%3Ainference-profile%2Fus."
            "anthropic.claude-v1%3A0/converse-stream");
}

TEST(BedrockAdapter, SignsTheFinalBodyAtTheCallsTime) {
  const auto a = make_bedrock_adapter(signing_provider());
  Outgoing first;
  ASSERT_FALSE(a->prepare(chat(), first).has_value());
  EXPECT_NE(first.headers.find("X-Amz-Date: 20231114T221320Z\r\n"), std::string::npos);
  EXPECT_NE(first.headers.find("X-Amz-Security-Token: " + std::string(kToken) + "\r\n"),
            std::string::npos);
  EXPECT_NE(first.headers.find("Authorization: AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20231114/"
                               "us-west-2/bedrock/aws4_request, SignedHeaders=content-type;host;"
                               "x-amz-date;x-amz-security-token, Signature="),
            std::string::npos)
      << first.headers;
  EXPECT_EQ(first.headers.find(kSecret), std::string::npos);

  Outgoing other_body;
  ASSERT_FALSE(
      a->prepare(chat(R"({"messages":[{"role":"user","content":"Hi!"}]})"), other_body)
          .has_value());
  auto later = chat();
  later.now += std::chrono::seconds(1);
  Outgoing other_time;
  ASSERT_FALSE(a->prepare(later, other_time).has_value());
  const auto authorization = [](const std::string& h) {
    const auto at = h.find("Authorization: ");
    return h.substr(at, h.find("\r\n", at) - at);
  };
  EXPECT_NE(authorization(first.headers), authorization(other_body.headers));
  EXPECT_NE(authorization(first.headers), authorization(other_time.headers));
}

TEST(BedrockAdapter, RefusesEmbeddingsAndOtherFormats) {
  const auto a = make_bedrock_adapter(api_key_provider());
  auto in = chat(R"({"model":"m","input":"x"})");
  in.format = Format::OpenAIEmbeddings;
  Outgoing out;
  const auto r = a->prepare(in, out);
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r->errc, core::Errc::BadRequest);
  in.format = Format::AnthropicMessages;
  EXPECT_TRUE(a->prepare(in, out).has_value());
}

TEST(BedrockAdapter, RefusesBrokenClientBodiesWithoutThrowing) {
  const auto a = make_bedrock_adapter(api_key_provider());
  for (const std::string_view body : {
           R"(not json)",
           R"([1,2])",
           R"({"messages":"x"})",
           R"({"messages":[1]})",
           R"({"messages":[{"content":"x"}]})",
           R"({"messages":[{"role":"user","content":5}]})",
           R"({"messages":[{"role":"user","content":[{"type":"text"}]}]})",
           R"({"messages":[{"role":"user","content":[{"type":"input_audio","input_audio":{}}]}]})",
           R"({"messages":[{"role":"user","content":[{"type":"image_url","image_url":{}}]}]})",
           R"({"messages":[{"role":"user","content":[{"type":"image_url",)"
           R"("image_url":{"url":"data:image/png,abc"}}]}]})",
           R"({"messages":[{"role":"user","content":[{"type":"image_url",)"
           R"("image_url":{"url":"s3://b/k"}}]}]})",
           R"({"messages":[{"role":"assistant","tool_calls":[{"id":"a"}]}]})",
           R"({"messages":[{"role":"assistant","tool_calls":{}}]})",
           R"({"messages":[{"role":"tool","content":"x"}]})",
           R"({"messages":[{"role":"function","content":"x"}]})",
           R"({"messages":[{"role":"system","content":"only a system prompt"}]})",
           R"({"messages":[{"role":"user","content":"   "}]})",
           R"({"messages":[{"role":"user","content":"x"}],"tools":[{"type":"custom"}]})",
           R"({"messages":[{"role":"user","content":"x"}],"tools":[{"type":"function"}]})",
           R"({"messages":[{"role":"user","content":"x"}],"tool_choice":"required"})",
           R"({"messages":[{"role":"user","content":"x"}],"tools":[],)"
           R"("tool_choice":{"type":"allowed_tools"}})",
           R"({"messages":[{"role":"user","content":"x"}],"max_tokens":1.5})",
           R"({"messages":[{"role":"user","content":"x"}],"temperature":"hot"})",
           R"({"messages":[{"role":"user","content":"x"}],"stop":[1]})",
           R"({"messages":[{"role":"user","content":"x"}],"stop":{}})",
           R"({"messages":[{"role":"user","content":"x"}],)"
           R"("response_format":{"type":"json_schema"}})",
           R"({"messages":[{"role":"user","content":"x"}],"response_format":{"type":"xml"}})",
           R"({"messages":[{"role":"user","content":"x"}],"logprobs":true})",
           R"({"messages":[{"role":"user","content":"x"}],"modalities":["text","audio"]})",
           R"({"messages":[{"role":"user","content":"x"}],"functions":[]})",
           R"({"messages":[{"role":"user","content":"x"}],"n":2.0})",
       }) {
    SCOPED_TRACE(body);
    Outgoing out;
    const auto r = a->prepare(chat(body), out);
    ASSERT_TRUE(r.has_value());
    EXPECT_FALSE(r->message.empty());
  }
  Outgoing out;
  EXPECT_FALSE(
      a->prepare(chat(R"({"messages":[{"role":"user","content":"x"}],"n":1})"), out).has_value());
  auto no_model = chat();
  no_model.upstream_model = "";
  EXPECT_TRUE(a->prepare(no_model, out).has_value());
}

TEST(BedrockAdapter, RefusesAnswersOfTheWrongShape) {
  const auto a = make_bedrock_adapter(api_key_provider());
  for (const std::string_view body : {
           "", "null", "[]", "{}", R"({"output":[]})", R"({"output":{"message":{}}})",
           R"({"output":{"message":{"content":[1]}}})",
           R"({"output":{"message":{"content":[{"text":1}]}}})",
           R"({"output":{"message":{"content":[{"toolUse":{"name":"f"}}]}}})",
           "\xff\xfe",
       }) {
    SCOPED_TRACE(body);
    std::string out;
    Answer answer;
    EXPECT_FALSE(a->translate_answer(chat(), body, out, answer));
  }
  // An answer without usage: none reported (the proxy estimates).
  std::string out;
  Answer answer;
  ASSERT_TRUE(a->translate_answer(
      chat(), R"({"output":{"message":{"role":"assistant","content":[]}},"stopReason":"x"})", out,
      answer));
  EXPECT_FALSE(answer.usage.reported);
  EXPECT_EQ(out.find("\"usage\""), std::string::npos);
  EXPECT_NE(out.find(R"("content":"")"), std::string::npos);
  EXPECT_NE(out.find(R"("finish_reason":"stop")"), std::string::npos);
}

TEST(BedrockAdapter, ErrorMessagesNeverCarryASecret) {
  auto p = signing_provider();
  const auto a = make_bedrock_adapter(p);
  const std::string body = R"({"message":"bad token )" + std::string(kToken) + " and key " +
                           std::string(kSecret) + R"("})";
  const ProviderError e = a->translate_error(400, body, "");
  EXPECT_EQ(e.status, 400u);
  EXPECT_EQ(e.message, "bad token [redacted] and key [redacted]");

  const auto k = make_bedrock_adapter(api_key_provider());
  const ProviderError f =
      k->translate_error(403, R"({"Message":"Invalid key )" + std::string(kApiKey) + R"("})", "");
  EXPECT_TRUE(f.credential_refused);
  EXPECT_EQ(f.message.find(kApiKey), std::string::npos);
  // An empty or unreadable body still gets a message.
  EXPECT_EQ(k->translate_error(424, "", "").message, "The provider answered HTTP 424.");
  EXPECT_EQ(k->translate_error(424, "", "").status, 502u);
}

TEST(Redactor, CutsAtTheFirstBlankLineAndOnACharacterBoundary) {
  const Redactor r({"s3cr3t-value", "short"});
  EXPECT_EQ(r.clean("a s3cr3t-value b\n\nThe Canonical String ... s3cr3t-value"),
            "a [redacted] b");
  EXPECT_EQ(r.clean("short words stay"), "short words stay");
  std::string long_text(Redactor::kMaxMessageBytes - 1, 'x');
  long_text += "\xc3\xa9tail";  // 'é' across the limit
  EXPECT_EQ(r.clean(long_text), std::string(Redactor::kMaxMessageBytes - 1, 'x'));
}

TEST(ConverseStream, MapsEveryStreamExceptionType) {
  EXPECT_EQ(stream_exception_type("throttlingException"),
            (std::pair<std::string, unsigned>{"rate_limit_error", 429}));
  EXPECT_EQ(stream_exception_type("serviceUnavailableException"),
            (std::pair<std::string, unsigned>{"server_error", 503}));
  EXPECT_EQ(stream_exception_type("validationException"),
            (std::pair<std::string, unsigned>{"invalid_request_error", 400}));
  EXPECT_EQ(stream_exception_type("modelStreamErrorException"),
            (std::pair<std::string, unsigned>{"upstream_error", 502}));
  EXPECT_EQ(stream_exception_type("internalServerException"),
            (std::pair<std::string, unsigned>{"upstream_error", 502}));
  EXPECT_EQ(stream_exception_type("modelTimeoutException"),
            (std::pair<std::string, unsigned>{"timeout_error", 504}));
  EXPECT_EQ(stream_exception_type("somethingNew"),
            (std::pair<std::string, unsigned>{"upstream_error", 502}));
}

EventMessage event(std::string_view type, std::string_view payload) {
  EventMessage m;
  m.headers.push_back({":event-type", HeaderType::String, 0, std::string(type)});
  m.headers.push_back({":content-type", HeaderType::String, 0, "application/json"});
  m.headers.push_back({":message-type", HeaderType::String, 0, "event"});
  m.payload = payload;
  return m;
}

TEST(ConverseStream, GivesTheSameOutputHoweverTheBytesAreSplit) {
  std::string stream;
  for (const auto& [type, payload] : std::initializer_list<std::pair<const char*, const char*>>{
           {"messageStart", R"({"role":"assistant"})"},
           {"contentBlockStart",
            R"({"contentBlockIndex":0,"start":{"toolUse":{"toolUseId":"t1","name":"f"}}})"},
           {"contentBlockDelta", R"({"contentBlockIndex":0,"delta":{"toolUse":{"input":"{}"}}})"},
           {"contentBlockStop", R"({"contentBlockIndex":0})"},
           {"messageStop", R"({"stopReason":"tool_use"})"},
           {"metadata", R"({"usage":{"inputTokens":3,"outputTokens":4,"totalTokens":7}})"},
       }) {
    stream += encode_event_message(event(type, payload));
  }
  const auto a = make_bedrock_adapter(api_key_provider());
  auto in = chat(kChat, true);
  in.client_wants_usage = true;
  std::string whole_in = stream;
  std::string want;
  auto whole = a->translate_stream(in);
  whole->feed(whole_in, want);
  whole->finish(whole_in, want, true);
  ASSERT_TRUE(whole->ended());
  EXPECT_TRUE(want.ends_with("data: [DONE]\n\n"));
  for (std::size_t cut = 1; cut < stream.size(); ++cut) {
    auto t = a->translate_stream(in);
    std::string buf = stream.substr(0, cut);
    std::string out;
    t->feed(buf, out);
    buf += stream.substr(cut);
    t->feed(buf, out);
    t->finish(buf, out, true);
    ASSERT_EQ(out, want) << "cut at " << cut;
    EXPECT_EQ(t->usage().output_tokens, 4);
    EXPECT_EQ(t->events(), 1u);
  }
}

TEST(ConverseStream, ReadsNothingAfterAnError) {
  const auto a = make_bedrock_adapter(api_key_provider());
  auto t = a->translate_stream(chat(kChat, true));
  std::string in = "garbage that is not an event stream frame at all";
  std::string out;
  t->feed(in, out);
  EXPECT_TRUE(in.empty());
  EXPECT_EQ(t->error(), "upstream_error");
  const std::string after_error = out;
  in = encode_event_message(event("messageStart", R"({"role":"assistant"})"));
  t->feed(in, out);
  t->finish(in, out, true);
  EXPECT_EQ(out, after_error);
  EXPECT_FALSE(t->ended());
}

TEST(ConverseStream, EndsNothingWhenTheBodyStopsMidFrame) {
  const auto a = make_bedrock_adapter(api_key_provider());
  auto t = a->translate_stream(chat(kChat, true));
  std::string in = encode_event_message(event("messageStop", R"({"stopReason":"end_turn"})"));
  in += encode_event_message(event("metadata", R"({"usage":{"inputTokens":1}})")).substr(0, 9);
  std::string out;
  t->feed(in, out);
  t->finish(in, out, true);
  EXPECT_FALSE(t->ended());
  EXPECT_EQ(out.find("[DONE]"), std::string::npos);
}

TEST(ConverseStream, SurvivesEveryFlippedByteAndEveryCut) {
  const std::string stream =
      test::read_file(std::filesystem::path(LLMGW_TEST_DATA_DIR) /
                      "providers/bedrock/stream_tools/upstream_response.bin");
  ASSERT_FALSE(stream.empty());
  const auto a = make_bedrock_adapter(api_key_provider());
  auto in = chat(kChat, true);
  in.client_wants_usage = true;
  for (std::size_t i = 0; i < stream.size(); ++i) {
    for (const bool cut : {false, true}) {
      std::string bytes = cut ? stream.substr(0, i) : stream;
      if (!cut) {
        bytes[i] = static_cast<char>(bytes[i] ^ 0x5A);
      }
      auto t = a->translate_stream(in);
      std::string out;
      t->feed(bytes, out);
      t->finish(bytes, out, true);
      // Every run ends properly, with an error event, or not at all (a cut): never two ways.
      EXPECT_FALSE(t->ended() && !t->error().empty()) << i;
      if (t->ended()) {
        EXPECT_TRUE(out.ends_with("data: [DONE]\n\n")) << i;
      }
    }
  }
}

TEST(BedrockAdapter, SurvivesEveryCutOfAnAnswer) {
  const std::string answer = test::read_file(
      std::filesystem::path(LLMGW_TEST_DATA_DIR) /
      "providers/bedrock/tools_parallel_calls/upstream_response.json");
  ASSERT_FALSE(answer.empty());
  const auto a = make_bedrock_adapter(api_key_provider());
  for (std::size_t i = 0; i < answer.size(); ++i) {
    std::string out;
    Answer result;
    (void)a->translate_answer(chat(), std::string_view(answer).substr(0, i), out, result);
    (void)a->translate_error(400, std::string_view(answer).substr(0, i), "");
  }
}

}  // namespace
}  // namespace llmgw::providers::bedrock
