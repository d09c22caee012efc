#include "providers/echo.hpp"

#include "core/json.hpp"

#include <gtest/gtest.h>

namespace llmgw::providers::echo {
namespace {

TEST(Echo, RepeatsTheLastUserMessageWithWordCounts) {
  const auto r = chat_reply(
      R"({"model":"m","messages":[{"role":"system","content":"be brief"},)"
      R"({"role":"user","content":"first"},{"role":"user","content":[{"type":"text","text":"two words"}]}]})");
  EXPECT_EQ(r.content, "two words");
  EXPECT_EQ(r.prompt_tokens, 2 + 1 + 2);
  EXPECT_EQ(r.completion_tokens, 2);
}

TEST(Echo, StreamEventsAreValidJsonAndEndWithDone) {
  const auto r = chat_reply(R"({"messages":[{"role":"user","content":"a b c"}]})");
  const auto events = chat_completion_events(r, "echo-1", "id1", 1700000000, true);
  ASSERT_GE(events.size(), 5u);
  EXPECT_EQ(events.back(), "data: [DONE]\n\n");
  std::string content;
  for (std::size_t i = 0; i + 1 < events.size(); ++i) {
    const auto& e = events[i];
    ASSERT_EQ(e.substr(0, 6), "data: ");
    ASSERT_EQ(e.substr(e.size() - 2), "\n\n");
    EXPECT_TRUE(core::validate_json(e.substr(6, e.size() - 8))) << e;
  }
  EXPECT_NE(events[events.size() - 2].find(R"("choices":[],"usage":{"prompt_tokens":3)"),
            std::string::npos);
}

TEST(Echo, ChatJsonIsDeterministicAndValid) {
  const auto r = chat_reply(R"({"messages":[{"role":"user","content":"x \"quoted\""}]})");
  const auto a = chat_completion_json(r, "m", "id", 1);
  EXPECT_EQ(a, chat_completion_json(r, "m", "id", 1));
  EXPECT_TRUE(core::validate_json(a));
  EXPECT_EQ(find_usage_object(a).substr(0, 41), R"({"prompt_tokens":2,"completion_tokens":2,)");
}

TEST(Echo, EmbeddingsAreUnitVectorsPerInput) {
  std::string err, param;
  const auto out =
      embeddings_json(R"({"model":"e","input":["a","b c"],"dimensions":8})", "e", err, param);
  ASSERT_TRUE(err.empty()) << err;
  EXPECT_TRUE(core::validate_json(out));
  EXPECT_EQ(out, embeddings_json(R"({"model":"e","input":["a","b c"],"dimensions":8})", "e", err,
                                 param));
  EXPECT_EQ(find_usage_object(out), R"({"prompt_tokens":3,"total_tokens":3})");
  EXPECT_TRUE(embeddings_json(R"({"input":[]})", "e", err, param).empty());
  EXPECT_FALSE(err.empty());
  EXPECT_EQ(param, "input");
  EXPECT_TRUE(embeddings_json(R"({"input":"a","dimensions":0})", "e", err, param).empty());
  EXPECT_EQ(param, "dimensions");
}

TEST(Echo, Base64EmbeddingsAreLittleEndianFloat32) {
  std::string err, param;
  const auto out = embeddings_json(R"({"input":"a","dimensions":2,"encoding_format":"base64"})",
                                   "e", err, param);
  ASSERT_TRUE(err.empty()) << err;
  // 2 floats = 8 bytes = 12 base64 characters with one '=' of padding.
  const auto start = out.find(R"("embedding":")") + 13;
  const auto end = out.find('"', start);
  EXPECT_EQ(end - start, 12u);
  EXPECT_EQ(out[end - 1], '=');
}

}  // namespace
}  // namespace llmgw::providers::echo
