#include "providers/gemini/codec.hpp"

#include "providers/gemini/gemini.hpp"
#include "providers/gemini/vertex.hpp"

#include <boost/json/parse.hpp>
#include <gtest/gtest.h>

#include <stdexcept>

namespace llmgw::providers::gemini {
namespace {

namespace json = boost::json;

json::value request_of(std::string_view openai, std::string_view model = "gemini-2.5-flash") {
  std::string out;
  const auto r = build_generate_request(openai, model, out);
  EXPECT_FALSE(r) << r->message;
  return r ? json::value() : json::parse(out);
}

CallInput call(std::string_view body = "{}") {
  CallInput in;
  in.body = body;
  in.upstream_model = "gemini-2.5-flash";
  in.request_id = "req1";
  in.created = 1700000000;
  return in;
}

TEST(GeminiCodec, ThoughtSignatureRidesInTheToolCallIdAndComesBack) {
  const std::string answer = R"({"candidates":[{"content":{"role":"model","parts":[
      {"functionCall":{"name":"get_weather","args":{"city":"Paris"}},"thoughtSignature":"c2ln+/="}]},
      "finishReason":"STOP","index":0}],"usageMetadata":{"promptTokenCount":5,"candidatesTokenCount":3}})";
  CallInput in = call();
  std::string out;
  Answer a;
  ASSERT_TRUE(translate_generate_answer(in, answer, out, a));
  const json::value v = json::parse(out);
  const auto& tc = v.at("choices").at(0).at("message").at("tool_calls").at(0);
  const std::string id(tc.at("id").as_string());
  EXPECT_EQ(id, "call_req1_0__ts__c2ln+/=");
  EXPECT_EQ(tc.at("function").at("arguments"), json::value(R"({"city":"Paris"})"));

  const std::string next = R"({"model":"m","messages":[{"role":"user","content":"Weather?"},
      {"role":"assistant","content":null,"tool_calls":[{"id":")" +
                           id + R"(","type":"function",
        "function":{"name":"get_weather","arguments":"{\"city\":\"Paris\"}"}}]},
      {"role":"tool","tool_call_id":")" +
                           id + R"(","content":"{\"temp\":21}"}]})";
  const json::value req = request_of(next);
  EXPECT_EQ(req.at("contents").at(1), json::parse(R"({"role":"model","parts":[
      {"functionCall":{"name":"get_weather","args":{"city":"Paris"}},"thoughtSignature":"c2ln+/="}]})"));
  EXPECT_EQ(req.at("contents").at(2), json::parse(R"({"role":"user","parts":[
      {"functionResponse":{"name":"get_weather","response":{"temp":21}}}]})"));
}

TEST(GeminiCodec, ToolResultNamesTheLatestCallWithItsId) {
  // Two turns reuse an id: each result takes the name of the call that precedes it.
  const json::value req = request_of(R"({"model":"m","messages":[
      {"role":"user","content":"a"},
      {"role":"assistant","tool_calls":[{"id":"x","type":"function","function":{"name":"f1","arguments":""}}]},
      {"role":"tool","tool_call_id":"x","content":"one"},
      {"role":"assistant","tool_calls":[{"id":"x","type":"function","function":{"name":"f2","arguments":"{}"}}]},
      {"role":"tool","tool_call_id":"x","content":[{"type":"text","text":"two"}]}]})");
  EXPECT_EQ(req.at("contents").at(2).at("parts").at(0).at("functionResponse"),
            json::parse(R"({"name":"f1","response":{"content":"one"}})"));
  EXPECT_EQ(req.at("contents").at(4).at("parts").at(0).at("functionResponse"),
            json::parse(R"({"name":"f2","response":{"content":"two"}})"));
  EXPECT_EQ(req.at("contents").at(1).at("parts").at(0).at("functionCall"),
            json::parse(R"({"name":"f1","args":{}})"));
}

TEST(GeminiCodec, RefusesWhatGeminiCannotTake) {
  std::string out;
  auto refusal = [&](std::string_view body) {
    const auto r = build_generate_request(body, "gemini-2.5-flash", out);
    return r ? r->param : std::string("<accepted>");
  };
  EXPECT_EQ(refusal(R"({"messages":[{"role":"tool","tool_call_id":"nope","content":"x"}]})"),
            "messages[0].tool_call_id");
  EXPECT_EQ(refusal(R"({"messages":[{"role":"system","content":"only a system prompt"}]})"),
            "messages");
  EXPECT_EQ(refusal(R"({"messages":[{"role":"user","content":"x"}],"logprobs":true})"), "logprobs");
  EXPECT_EQ(
      refusal(
          R"({"messages":[{"role":"user","content":[{"type":"file","file":{"file_id":"f"}}]}]})"),
      "messages[0].content[0].file");
  EXPECT_EQ(
      refusal(
          R"({"messages":[{"role":"user","content":"x"}],"tools":[{"type":"custom","custom":{"name":"c"}}]})"),
      "tools[0].type");
  EXPECT_EQ(
      refusal(
          R"({"messages":[{"role":"assistant","tool_calls":[{"id":"a","type":"function","function":{"name":"f","arguments":"[1]"}}]}]})"),
      "messages[0].tool_calls[0].function.arguments");
  EXPECT_EQ(refusal(R"({"messages":[{"role":"user","content":"x"}],"temperature":"hot"})"),
            "temperature");
  EXPECT_EQ(refusal("not json"), "");
}

TEST(GeminiCodec, AllowedToolsInAutoModeDeclaresOnlyTheAllowedFunctions) {
  const json::value req = request_of(R"({"messages":[{"role":"user","content":"x"}],
      "tools":[{"type":"function","function":{"name":"a"}},{"type":"function","function":{"name":"b"}}],
      "tool_choice":{"type":"allowed_tools","allowed_tools":{"mode":"auto",
        "tools":[{"type":"function","function":{"name":"b"}}]}}})");
  EXPECT_EQ(req.at("tools"), json::parse(R"([{"functionDeclarations":[{"name":"b"}]}])"));
  EXPECT_EQ(req.at("toolConfig"), json::parse(R"({"functionCallingConfig":{"mode":"AUTO"}})"));
}

TEST(GeminiCodec, ReasoningEffortIsABudgetForGemini2AndALevelAfter) {
  const std::string body =
      R"({"messages":[{"role":"user","content":"x"}],"reasoning_effort":"medium"})";
  EXPECT_EQ(request_of(body, "gemini-2.5-pro").at("generationConfig").at("thinkingConfig"),
            json::parse(R"({"thinkingBudget":8192,"includeThoughts":true})"));
  EXPECT_EQ(request_of(body, "gemini-3-pro-preview").at("generationConfig").at("thinkingConfig"),
            json::parse(R"({"thinkingLevel":"medium","includeThoughts":true})"));
  EXPECT_EQ(request_of(R"({"messages":[{"role":"user","content":"x"}],"reasoning_effort":"none"})",
                       "gemini-2.5-flash")
                .at("generationConfig")
                .at("thinkingConfig"),
            json::parse(R"({"thinkingBudget":0})"));
}

TEST(GeminiCodec, ImageUrlMimeTypeIsGuessedFromTheExtension) {
  const json::value req = request_of(R"({"messages":[{"role":"user","content":[
      {"type":"image_url","image_url":{"url":"https://example.com/a/cat.PNG?size=2"}},
      {"type":"image_url","image_url":{"url":"https://example.com/photo"}},
      {"type":"image_url","image_url":{"url":"gs://bucket/doc.pdf"}}]}]})");
  const auto& parts = req.at("contents").at(0).at("parts");
  EXPECT_EQ(parts.at(0).at("fileData").at("mimeType"), json::value("image/png"));
  EXPECT_EQ(parts.at(1).at("fileData").at("mimeType"), json::value("image/jpeg"));
  EXPECT_EQ(parts.at(2).at("fileData"),
            json::parse(R"({"mimeType":"application/pdf","fileUri":"gs://bucket/doc.pdf"})"));
}

TEST(GeminiCodec, StreamOfGarbageEndsWithAnErrorEventAndNoDone) {
  CallInput in = call();
  in.stream = true;
  auto t = make_generate_stream(in);
  std::string buf = "data: {not json\r\n\r\ndata: {\"candidates\":[]}\r\n\r\n";
  std::string out;
  t->feed(buf, out);
  t->finish(buf, out, true);
  EXPECT_EQ(t->error(), "upstream_error");
  EXPECT_NE(out.find(R"("type":"upstream_error")"), std::string::npos);
  EXPECT_EQ(out.find("[DONE]"), std::string::npos);
  EXPECT_FALSE(t->ended());
}

TEST(GeminiCodec, StreamWithHostileValuesNeverCrashes) {
  CallInput in = call();
  for (const std::string_view event :
       {R"({"candidates":[{"index":1e300}]})", R"({"candidates":[{"index":-1}]})",
        R"({"candidates":[{"index":999999999}]})", R"({"candidates":"x"})",
        R"({"candidates":[{"content":{"parts":[{"functionCall":"x"},{"text":5},7]}}]})",
        R"({"error":"x"})", R"({"error":{"code":"x"}})", R"([1,2])", R"({"usageMetadata":[]})"}) {
    auto t = make_generate_stream(in);
    std::string buf = "data: " + std::string(event) + "\n\n";
    std::string out;
    t->feed(buf, out);
    t->finish(buf, out, true);
    EXPECT_FALSE(t->ended()) << event;
  }
}

TEST(GeminiCodec, RetryDelayBecomesRetryAfterWhenTheHeaderIsAbsent) {
  const std::string body =
      R"({"error":{"code":429,"message":"Quota exceeded.","status":"RESOURCE_EXHAUSTED",
      "details":[{"@type":"type.googleapis.com/google.rpc.RetryInfo","retryDelay":"1.5s"}]}})";
  EXPECT_EQ(translate_google_error(429, body, "").retry_after, "2");
  EXPECT_EQ(translate_google_error(429, body, "7").retry_after, "7");
  EXPECT_EQ(translate_google_error(503, "<html>", "").status, 503u);
  EXPECT_EQ(translate_google_error(500, "", "").status, 502u);
  const auto key = translate_google_error(
      400,
      R"({"error":{"code":400,"message":"API key not valid. Please pass a valid API key.","status":"INVALID_ARGUMENT"}})",
      "");
  EXPECT_TRUE(key.credential_refused);
  EXPECT_EQ(key.status, 502u);
}

TEST(GeminiCodec, EmbeddingsTakeTextOnly) {
  bool batch = false;
  std::string out;
  const auto r = build_gemini_embed_request(R"({"model":"m","input":[[1,2,3]]})", "m", batch, out);
  ASSERT_TRUE(r);
  EXPECT_EQ(r->param, "input");
  EXPECT_TRUE(build_vertex_embed_request(R"({"model":"m","input":[1,2]})", out));
}

TEST(GeminiCodec, ModelIdsArePercentEncodedForThePath) {
  EXPECT_EQ(encode_model("gemini-2.5-flash", false), "gemini-2.5-flash");
  EXPECT_EQ(encode_model("a b/c?d", false), "a%20b%2Fc%3Fd");
  EXPECT_EQ(encode_model("tunedModels/x y", true), "tunedModels/x%20y");
}

TEST(GeminiAdapters, FactoriesRefuseUnusableSettingsByName) {
  core::ProviderConfig c;
  c.type = core::ProviderType::Gemini;
  EXPECT_THROW((void)make_gemini_adapter(c), std::invalid_argument);
  c.api_key = "k";
  EXPECT_NO_THROW((void)make_gemini_adapter(c));
  EXPECT_EQ(make_gemini_adapter(c)->origin().host, "generativelanguage.googleapis.com");

  core::ProviderConfig v;
  v.type = core::ProviderType::Vertex;
  v.settings = {{"project", "p"}, {"location", "us-central1"}};
  try {
    (void)make_vertex_adapter(v);
    ADD_FAILURE() << "no credentials accepted";
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find("access_token"), std::string::npos);
  }
  v.secrets = {
      {"credentials_json",
       R"({"type":"service_account","client_email":"a@b","private_key":"SECRETKEYTEXT"})"}};
  try {
    (void)make_vertex_adapter(v);
    ADD_FAILURE() << "a bad key accepted";
  } catch (const std::invalid_argument& e) {
    EXPECT_EQ(std::string(e.what()).find("SECRETKEYTEXT"), std::string::npos);
    EXPECT_NE(std::string(e.what()).find("credentials_json"), std::string::npos);
  }
  v.secrets = {{"access_token", "ya29.x"}};
  v.settings["location"] = "global";
  const auto a = make_vertex_adapter(v);
  EXPECT_EQ(a->origin().host, "aiplatform.googleapis.com");
  EXPECT_EQ(a->credential_state(std::chrono::system_clock::now()), Adapter::CredentialState::Ready);
  v.settings["project"] = "bad/project";
  EXPECT_THROW((void)make_vertex_adapter(v), std::invalid_argument);
  v.settings = {
      {"project", "p"}, {"location", "us-central1"}, {"credentials_file", "/nonexistent/x.json"}};
  v.secrets.clear();
  EXPECT_THROW((void)make_vertex_adapter(v), std::invalid_argument);
}

}  // namespace
}  // namespace llmgw::providers::gemini
