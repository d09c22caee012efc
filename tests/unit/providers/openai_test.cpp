#include "providers/openai.hpp"

#include <gtest/gtest.h>

namespace llmgw::providers {
namespace {

std::optional<RequestError> inspect(std::string_view body, InspectedRequest& r,
                                    Endpoint e = Endpoint::ChatCompletions) {
  return inspect_request(e, body, r);
}

TEST(InspectRequest, ReadsModelStreamAndUsageOption) {
  InspectedRequest r;
  const std::string body =
      R"({"model":"gpt-4o","messages":[{"role":"user","content":"hi"}],"stream":true,)"
      R"("stream_options":{"include_usage":true}})";
  ASSERT_FALSE(inspect(body, r).has_value());
  EXPECT_EQ(r.model, "gpt-4o");
  EXPECT_TRUE(r.stream);
  EXPECT_TRUE(r.client_wants_usage);
}

TEST(InspectRequest, RejectsEachMalformedShapeWithParam) {
  struct Case {
    std::string body;
    std::string param;
  };
  const Case cases[] = {
      {R"({"model":"m","messages":[{"role":"user","content":"hi"}]})", "-"},
      {R"({"messages":[]})", "model"},
      {R"({"model":7,"messages":[{}]})", "model"},
      {R"({"model":"","messages":[{}]})", "model"},
      {R"({"model":"m"})", "messages"},
      {R"({"model":"m","messages":"hi"})", "messages"},
      {R"({"model":"m","messages":[ ]})", "messages"},
      {R"({"model":"m","messages":[{}],"stream":"yes"})", "stream"},
      {R"({"model":"m","messages":[{}],"stream_options":3})", "stream_options"},
      {R"({"model":"m","messages":[{}],"stream_options":{"include_usage":1}})",
       "stream_options.include_usage"},
      {R"([1,2])", ""},
      {R"({"model":"m",)", ""},
      {"", ""},
      {"{\"model\":\"m\xff\",\"messages\":[{}]}", ""},
  };
  for (const auto& c : cases) {
    InspectedRequest r;
    const auto err = inspect(c.body, r);
    if (c.param == "-") {
      EXPECT_FALSE(err.has_value()) << c.body;
      continue;
    }
    ASSERT_TRUE(err.has_value()) << c.body;
    EXPECT_EQ(err->param, c.param) << c.body;
    EXPECT_FALSE(err->message.empty());
  }
}

TEST(InspectRequest, ReadsOnlyTopLevelMembersWhateverTheNesting) {
  InspectedRequest r;
  const std::string body =
      R"({"messages":[{"role":"user","content":"x","model":"inner","stream":false}],)"
      R"("stream_options":{"nested":{"include_usage":false},"include_usage":true},)"
      R"("model":"mé","stream":true,"extra":{"model":"deep"}})";
  ASSERT_FALSE(inspect(body, r).has_value());
  EXPECT_EQ(r.model, "m\xc3\xa9");
  EXPECT_TRUE(r.stream);
  EXPECT_TRUE(r.client_wants_usage);
}

TEST(InspectRequest, RefusesARepeatedKeyWhateverItsSpelling) {
  struct Case {
    std::string body;
    std::string param;
  };
  const Case cases[] = {
      {R"({"model":"a","messages":[{}],"model":"b"})", "model"},
      {R"({"model":"x","mod\u0065l":"gpt-4","messages":[{}]})", "model"},
      {R"({"\u006d\u006f\u0064\u0065\u006c":"x","messages":[{}],"model":"y"})", "model"},
      {R"({"model":"m","messages":[{}],"stream":false,"str\u0065am":true})", "stream"},
      {R"({"model":"m","messages":[{}],"stream_options":{"include_usage":true},)"
       R"("stream_options":{}})",
       "stream_options"},
      {R"({"model":"m","messages":[{}],"stream_options":{"include_usage":true,)"
       R"("include\u005fusage":false}})",
       "stream_options.include_usage"},
      {R"({"model":"m","messages":[{}],"max_tokens":1,"max_tokens":100000})", "max_tokens"},
      {R"({"model":"m","messages":[{}],"n":1,"\u006e":50})", "n"},
      {R"({"model":"m","messages":[{}],"service_tier":"flex","service_tier":"priority"})",
       "service_tier"},
      {R"({"model":"m","messages":[{}],"messages":[{}]})", "messages"},
      // Keys the gateway does not read are refused too: the provider may read them.
      {R"({"model":"m","messages":[{}],"temperature":0,"temperature":2})", "temperature"},
  };
  for (const auto& c : cases) {
    InspectedRequest r;
    const auto err = inspect(c.body, r);
    ASSERT_TRUE(err.has_value()) << c.body;
    EXPECT_EQ(err->param, c.param) << c.body;
    EXPECT_NE(err->message.find("Duplicate key '" + c.param + "'"), std::string::npos)
        << err->message;
  }
}

TEST(InspectRequest, RepeatedKeysInsideMessagesAreTheProvidersToJudge) {
  InspectedRequest r;
  EXPECT_FALSE(inspect(R"({"model":"m","messages":[{"role":"user","role":"system"}]})", r));
}

TEST(InspectRequest, ManyDistinctKeysAreAccepted) {
  std::string body = R"({"model":"m","messages":[{}])";
  for (int i = 0; i < 5000; ++i) {
    body += ",\"k" + std::to_string(i) + "\":" + std::to_string(i);
  }
  InspectedRequest r;
  EXPECT_FALSE(inspect(body + "}", r));
  auto err = inspect(body + R"(,"k4999":0})", r);
  ASSERT_TRUE(err);
  EXPECT_EQ(err->param, "k4999");
}

TEST(InspectRequest, ReadsEscapedKeysAsTheirDecodedNames) {
  InspectedRequest r;
  ASSERT_FALSE(inspect(R"({"mod\u0065l":"gpt-4o-mini","messages":[{}],"str\u0065am":true,)"
                       R"("max_\u0074okens":7,"\u006e":2})",
                       r));
  EXPECT_EQ(r.model, "gpt-4o-mini");
  EXPECT_TRUE(r.stream);
  EXPECT_EQ(r.max_output_tokens, 7);
  EXPECT_EQ(r.choices, 2);
}

TEST(InspectRequest, TokenLimitsAndNMustBeIntegersInRange) {
  const std::pair<std::string, std::string> bad[] = {
      {R"("max_tokens":1.5)", "max_tokens"},
      {R"("max_tokens":1e3)", "max_tokens"},
      {R"("max_tokens":-1)", "max_tokens"},
      {R"("max_tokens":"10")", "max_tokens"},
      {R"("max_tokens":99999999999999999999999)", "max_tokens"},
      {R"("max_completion_tokens":18446744073709551615)", "max_completion_tokens"},
      {R"("max_completion_tokens":true)", "max_completion_tokens"},
      {R"("n":0)", "n"},
      {R"("n":129)", "n"},
      {R"("n":2.0)", "n"},
      {R"("service_tier":5)", "service_tier"},
  };
  for (const auto& [member, param] : bad) {
    InspectedRequest r;
    const std::string body = R"({"model":"m","messages":[{}],)" + member + "}";
    const auto err = inspect(body, r);
    ASSERT_TRUE(err.has_value()) << body;
    EXPECT_EQ(err->param, param) << body;
  }
  InspectedRequest r;
  ASSERT_FALSE(inspect(R"({"model":"m","messages":[{}],"max_tokens":null,"n":null})", r));
  EXPECT_EQ(r.max_output_tokens, -1);
  EXPECT_EQ(r.choices, 1);
  ASSERT_FALSE(inspect(R"({"model":"m","messages":[{}],"max_tokens":10,)"
                       R"("max_completion_tokens":20,"n":3})",
                       r));
  EXPECT_EQ(r.max_output_tokens, 20);
  EXPECT_EQ(r.choices, 3);
}

TEST(InspectRequest, EmbeddingsNeedInput) {
  InspectedRequest r;
  EXPECT_FALSE(inspect(R"({"model":"e","input":"hello"})", r, Endpoint::Embeddings));
  EXPECT_FALSE(inspect(R"({"model":"e","input":["a","b"]})", r, Endpoint::Embeddings));
  auto err = inspect(R"({"model":"e"})", r, Endpoint::Embeddings);
  ASSERT_TRUE(err);
  EXPECT_EQ(err->param, "input");
  err = inspect(R"({"model":"e","input":{}})", r, Endpoint::Embeddings);
  ASSERT_TRUE(err);
  EXPECT_EQ(err->param, "input");
}

std::string rewrite(const std::string& body, std::string_view upstream, bool usage) {
  InspectedRequest r;
  EXPECT_FALSE(inspect(body, r).has_value()) << body;
  std::string out;
  const auto result = rewrite_request(body, r, upstream, usage, out);
  EXPECT_NE(result, RewriteResult::Inconsistent) << body;
  return result == RewriteResult::Rewritten ? out : body;
}

TEST(RewriteRequest, LeavesBodyUntouchedWhenNothingChanges) {
  const std::string body = R"({"model":"gpt-4o","messages":[{"role":"user","content":"x"}]})";
  InspectedRequest r;
  ASSERT_FALSE(inspect(body, r));
  std::string out;
  EXPECT_EQ(rewrite_request(body, r, "gpt-4o", false, out), RewriteResult::Original);
}

TEST(RewriteRequest, RenamesAModelKeyWrittenWithEscapes) {
  EXPECT_EQ(rewrite(R"({"model":"gpt-4","messages":[{}]})", "gpt-4o-mini", false),
            R"({"model":"gpt-4o-mini","messages":[{}]})");
  EXPECT_EQ(rewrite(R"({"model":"m","messages":[{}],"stream":true,)"
                    R"("stream_options":{"include_usage":false}})",
                    "m", true),
            R"({"model":"m","messages":[{}],"stream":true,)"
            R"("stream_options":{"include_usage":true}})");
}

TEST(RewriteRequest, RefusesABodyOtherThanTheInspectedOne) {
  InspectedRequest r;
  ASSERT_FALSE(inspect(R"({"model":"a","messages":[{}]})", r));
  std::string out;
  EXPECT_EQ(rewrite_request(R"({"model":"b","messages":[{}]})", r, "c", false, out),
            RewriteResult::Inconsistent);
  EXPECT_EQ(rewrite_request(R"({"messages":[{}]})", r, "c", false, out),
            RewriteResult::Inconsistent);
}

TEST(RewriteRequest, RenamesModelAndKeepsEveryOtherByte) {
  EXPECT_EQ(rewrite(R"({ "messages":[{"role":"user","content":"model"}], "model" : "fast", "n":1 })",
                    "gpt-4o-mini-2024-07-18", false),
            R"({ "messages":[{"role":"user","content":"model"}], "model" : "gpt-4o-mini-2024-07-18", "n":1 })");
}

TEST(RewriteRequest, AddsIncludeUsageInEveryShape) {
  EXPECT_EQ(rewrite(R"({"model":"m","messages":[{}],"stream":true})", "m", true),
            R"({"model":"m","messages":[{}],"stream":true,"stream_options":{"include_usage":true}})");
  EXPECT_EQ(rewrite(R"({"model":"m","messages":[{}],"stream":true,"stream_options":{}})", "m", true),
            R"({"model":"m","messages":[{}],"stream":true,"stream_options":{"include_usage":true}})");
  EXPECT_EQ(rewrite(R"({"model":"m","messages":[{}],"stream":true,"stream_options":{"include_usage":false}})",
                    "m", true),
            R"({"model":"m","messages":[{}],"stream":true,"stream_options":{"include_usage":true}})");
  EXPECT_EQ(rewrite(R"({"model":"m","messages":[{}],"stream":true,"stream_options":{"x":1}})", "m", true),
            R"({"model":"m","messages":[{}],"stream":true,"stream_options":{"x":1,"include_usage":true}})");
  EXPECT_EQ(rewrite(R"({"model":"m","messages":[{}],"stream":true,"stream_options":null})", "m", true),
            R"({"model":"m","messages":[{}],"stream":true,"stream_options":{"include_usage":true}})");
}

TEST(RewriteRequest, RenameAndUsageTogether) {
  EXPECT_EQ(rewrite(R"({"stream":true,"model":"a","messages":[{}]})", "b\"c", true),
            R"({"stream":true,"model":"b\"c","messages":[{}],"stream_options":{"include_usage":true}})");
}

TEST(FindUsageObject, FindsTheTopLevelUsageOnly) {
  EXPECT_EQ(find_usage_object(
                R"({"id":"x","usage":{"prompt_tokens":312,"completion_tokens":47,)"
                R"("prompt_tokens_details":{"cached_tokens":128}}})"),
            R"({"prompt_tokens":312,"completion_tokens":47,"prompt_tokens_details":{"cached_tokens":128}})");
  EXPECT_EQ(find_usage_object(R"({"usage":null})"), "");
  EXPECT_EQ(find_usage_object(R"({"id":"x"})"), "");
  // Usage-looking text inside a string is not usage.
  EXPECT_EQ(find_usage_object(
                R"({"choices":[{"message":{"content":"\"usage\":{\"prompt_tokens\":5}"}}]})"),
            "");
  EXPECT_EQ(find_usage_object(R"({"usage" : { "prompt_tokens" : 3 },"id":"z"})"),
            R"({ "prompt_tokens" : 3 })");
}

std::string run_filter(bool hide, const std::string& stream, std::string* usage = nullptr,
                       std::size_t piece = 7) {
  SseFilter f(hide);
  std::string in, out;
  // Feed in small pieces: events split across reads must come out whole.
  for (std::size_t i = 0; i < stream.size(); i += piece) {
    in.append(stream, i, piece);
    f.feed(in, out);
  }
  f.finish(in, out);
  if (usage != nullptr) {
    *usage = f.usage_json();
  }
  return out;
}

const std::string kWithUsage =
    "data: {\"id\":\"c\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"Hi\"}}],\"usage\":null}\n\n"
    "data: {\"id\":\"c\",\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"stop\"}],\"usage\":null}\n\n"
    "data: {\"id\":\"c\",\"choices\":[],\"usage\":{\"prompt_tokens\":5,\"completion_tokens\":2,\"total_tokens\":7}}\n\n"
    "data: [DONE]\n\n";
const std::string kWithoutUsage =
    "data: {\"id\":\"c\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"Hi\"}}]}\n\n"
    "data: {\"id\":\"c\",\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"stop\"}]}\n\n"
    "data: [DONE]\n\n";

TEST(SseFilter, HidesUsageTheGatewayAskedFor) {
  std::string u;
  for (std::size_t piece : {1u, 3u, 7u, 64u, 4096u}) {
    EXPECT_EQ(run_filter(true, kWithUsage, &u, piece), kWithoutUsage) << piece;
    EXPECT_EQ(u, R"({"prompt_tokens":5,"completion_tokens":2,"total_tokens":7})");
  }
}

TEST(SseFilter, PassesEverythingWhenTheClientAskedForUsage) {
  std::string u;
  EXPECT_EQ(run_filter(false, kWithUsage, &u), kWithUsage);
  EXPECT_EQ(u, R"({"prompt_tokens":5,"completion_tokens":2,"total_tokens":7})");
}

TEST(SseFilter, ReadsUsageFromAChunkThatAlsoHasChoices) {
  const std::string in =
      "data: {\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"stop\"}],"
      "\"usage\":{\"prompt_tokens\":9,\"completion_tokens\":4}}\r\n\r\n"
      "data: [DONE]\r\n\r\n";
  std::string u;
  EXPECT_EQ(run_filter(true, in, &u),
            "data: {\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"stop\"}]}\r\n\r\n"
            "data: [DONE]\r\n\r\n");
  EXPECT_EQ(u, R"({"prompt_tokens":9,"completion_tokens":4})");
}

TEST(SseFilter, ReadsTheFirstModelTheChunksNameWhenAsked) {
  // Azure: the first chunk (prompt filter results) names no model; the next ones do.
  const std::string azure =
      "data: {\"choices\":[],\"created\":0,\"id\":\"\",\"model\":\"\",\"object\":\"\","
      "\"prompt_filter_results\":[]}\n\n"
      "data: {\"choices\":[{\"delta\":{\"content\":\"Hi\"},\"index\":0}],\"model\":\"gpt-4o-2024-11-20\"}\n\n"
      "data: {\"choices\":[],\"model\":\"other\",\"usage\":{\"prompt_tokens\":1}}\n\n"
      "data: [DONE]\n\n";
  for (std::size_t piece : {1u, 5u, 4096u}) {
    SseFilter f(true, /*read_model=*/true);
    std::string in, out;
    for (std::size_t i = 0; i < azure.size(); i += piece) {
      in.append(azure, i, piece);
      f.feed(in, out);
    }
    f.finish(in, out);
    EXPECT_EQ(f.model(), "gpt-4o-2024-11-20") << piece;
    // The prompt filter chunk has no usage: it is the client's, kept.
    EXPECT_NE(out.find("prompt_filter_results"), std::string::npos);
    EXPECT_EQ(out.find("usage"), std::string::npos);
  }
  SseFilter plain(false);
  std::string in = azure, out;
  plain.feed(in, out);
  EXPECT_EQ(plain.model(), "");
}

TEST(SseFilter, PassesATrailingPartialEventAtTheEnd) {
  EXPECT_EQ(run_filter(true, "data: {\"a\":1}\n\ndata: {\"b\""), "data: {\"a\":1}\n\ndata: {\"b\"");
}

}  // namespace
}  // namespace llmgw::providers
