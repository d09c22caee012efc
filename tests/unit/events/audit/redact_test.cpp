#include "events/audit/record.hpp"
#include "events/audit/redact.hpp"

#include <boost/json.hpp>
#include <gtest/gtest.h>

#include <stdexcept>

namespace llmgw::audit {
namespace {

namespace json = boost::json;

json::value redacted(const Redactor& r, std::string_view body) {
  return json::parse(r.redact(body));
}

TEST(Redactor, MasksEveryMessageContentAndKeepsTheShape) {
  const Redactor r;
  const auto v = redacted(r, R"({"model":"gpt-4o","temperature":0.2,"messages":[
      {"role":"system","content":"secret plan"},
      {"role":"user","content":[{"type":"text","text":"hello"}]},
      {"role":"assistant","content":null,"tool_calls":[{"id":"c1","type":"function",
        "function":{"name":"lookup","arguments":"{\"q\":\"private\"}"}}]}],
      "tools":[{"type":"function","function":{"name":"lookup"}}]})");
  EXPECT_EQ(v.at("model"), "gpt-4o");
  EXPECT_EQ(v.at("temperature").as_double(), 0.2);
  const auto& m = v.at("messages").as_array();
  ASSERT_EQ(m.size(), 3u);
  EXPECT_EQ(m[0].at("role"), "system");
  EXPECT_EQ(m[0].at("content"), "[redacted]");
  EXPECT_EQ(m[1].at("content"), "[redacted]");
  EXPECT_EQ(m[2].at("content"), "[redacted]");
  EXPECT_EQ(m[2].at("tool_calls").at(0).at("function").at("name"), "lookup");
  EXPECT_EQ(m[2].at("tool_calls").at(0).at("function").at("arguments"), "[redacted]");
  EXPECT_EQ(v.at("tools").at(0).at("function").at("name"), "lookup");
}

TEST(Redactor, MasksAnswersOfEveryFormat) {
  const Redactor r;
  auto v = redacted(r, R"({"id":"x","choices":[{"index":0,"message":{"role":"assistant",
      "content":"the answer"},"finish_reason":"stop"}],"usage":{"prompt_tokens":3}})");
  EXPECT_EQ(v.at("choices").at(0).at("message").at("content"), "[redacted]");
  EXPECT_EQ(v.at("choices").at(0).at("finish_reason"), "stop");
  EXPECT_EQ(v.at("usage").at("prompt_tokens"), 3);
  v = redacted(r, R"({"type":"message","content":[{"type":"text","text":"hi"},
      {"type":"tool_use","id":"t","name":"f","input":{"a":1}}],"stop_reason":"end_turn"})");
  EXPECT_EQ(v.at("content").at(0).at("text"), "[redacted]");
  EXPECT_EQ(v.at("content").at(1).at("input"), "[redacted]");
  EXPECT_EQ(v.at("content").at(1).at("name"), "f");
  v = redacted(r, R"({"object":"list","data":[{"embedding":[0.1,0.2]}]})");
  EXPECT_EQ(v.at("data").at(0).at("embedding"), "[redacted]");
  // The Messages request's system prompt, and an embeddings input.
  v = redacted(r, R"({"system":[{"type":"text","text":"s"}],"input":["a","b"]})");
  EXPECT_EQ(v.at("system"), "[redacted]");
  EXPECT_EQ(v.at("input"), "[redacted]");
}

TEST(Redactor, ConfiguredPathsWithWildcards) {
  const Redactor r("a.*.b, [*].x ,top");
  EXPECT_EQ(json::serialize(redacted(r, R"({"a":{"p":{"b":1,"c":2},"q":{"b":3}},"top":[1]})")),
            R"({"a":{"p":{"b":"[redacted]","c":2},"q":{"b":"[redacted]"}},"top":"[redacted]"})");
  EXPECT_EQ(json::serialize(redacted(r, R"([{"x":1,"y":2},{"y":3}])")),
            R"([{"x":"[redacted]","y":2},{"y":3}])");
  // A path that names nothing changes nothing; a path through the wrong type neither.
  EXPECT_EQ(json::serialize(redacted(r, R"({"a":[{"b":1}]})")), R"({"a":[{"b":1}]})");
}

TEST(Redactor, ABodyThatIsNotJsonIsReplacedWhole) {
  const Redactor r;
  EXPECT_EQ(r.redact("not json {"), "\"[redacted]\"");
  EXPECT_EQ(r.redact(""), "\"[redacted]\"");
}

TEST(Redactor, RefusesMalformedPaths) {
  for (const char* bad : {"a..b", "a.", "a[*]b", "*x", "a[0]", "a]"}) {
    EXPECT_THROW(Redactor{bad}, std::invalid_argument) << bad;
  }
  EXPECT_NO_THROW(Redactor{""});
  EXPECT_NO_THROW(Redactor{"a[*][*].b"});
}

TEST(AuditRecord, RedactedModeMasksBothBodiesAndCutsAfter) {
  Record rec;
  rec.request_id = "r1";
  rec.endpoint = "chat.completions";
  rec.status = 200;
  rec.request_body = R"({"model":"m","messages":[{"role":"user","content":"private words"}]})";
  rec.response_body = R"({"choices":[{"message":{"role":"assistant","content":"more private"}}]})";
  const Redactor r;
  std::string line;
  render(line, rec, core::AuditBodies::Redacted, 1 << 20, r);
  EXPECT_EQ(line.find("private"), std::string::npos) << line;
  const auto v = json::parse(line);
  EXPECT_EQ(v.at("bodies"), "redacted");
  EXPECT_EQ(v.at("request").at("messages").at(0).at("role"), "user");
  EXPECT_EQ(v.at("response").at("choices").at(0).at("message").at("content"), "[redacted]");

  line.clear();
  render(line, rec, core::AuditBodies::Redacted, 20, r);
  const auto cut = json::parse(line);
  EXPECT_TRUE(cut.at("request").is_string());
  EXPECT_EQ(cut.at("request_cut"), true);
  EXPECT_EQ(line.find("private"), std::string::npos) << line;

  line.clear();
  render(line, rec, core::AuditBodies::Metadata, 1 << 20, r);
  EXPECT_FALSE(json::parse(line).as_object().contains("request"));
  line.clear();
  render(line, rec, core::AuditBodies::Full, 1 << 20, r);
  EXPECT_NE(line.find("private words"), std::string::npos);
}

}  // namespace
}  // namespace llmgw::audit
