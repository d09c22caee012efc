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

TEST(InspectRequest, ARepeatedStreamOptionsReplacesTheEarlierOne) {
  InspectedRequest r;
  ASSERT_FALSE(inspect(R"({"model":"m","messages":[{}],"stream":true,)"
                       R"("stream_options":{"include_usage":true},"stream_options":{}})",
                       r)
                   .has_value());
  EXPECT_FALSE(r.client_wants_usage);  // so the gateway still asks for usage itself
}

TEST(InspectRequest, LastDuplicateMemberWinsLikeTheRewrite) {
  InspectedRequest r;
  const std::string body = R"({"model":"a","messages":[{}],"model":"b"})";
  ASSERT_FALSE(inspect(body, r).has_value());
  EXPECT_EQ(r.model, "b");
  std::string out;
  ASSERT_TRUE(rewrite_request(body, r, "c", false, out));
  EXPECT_EQ(out, R"({"model":"a","messages":[{}],"model":"c"})");
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
  if (!rewrite_request(body, r, upstream, usage, out)) {
    return body;
  }
  return out;
}

TEST(RewriteRequest, LeavesBodyUntouchedWhenNothingChanges) {
  const std::string body = R"({"model":"gpt-4o","messages":[{"role":"user","content":"x"}]})";
  InspectedRequest r;
  ASSERT_FALSE(inspect(body, r));
  std::string out;
  EXPECT_FALSE(rewrite_request(body, r, "gpt-4o", false, out));
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

TEST(SseFilter, PassesATrailingPartialEventAtTheEnd) {
  EXPECT_EQ(run_filter(true, "data: {\"a\":1}\n\ndata: {\"b\""), "data: {\"a\":1}\n\ndata: {\"b\"");
}

}  // namespace
}  // namespace llmgw::providers
