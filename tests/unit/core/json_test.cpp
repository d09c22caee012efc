#include "core/json.hpp"

#include <boost/json.hpp>
#include <gtest/gtest.h>

#include <array>

namespace llmgw::core {
namespace {

TEST(AppendJsonString, EscapesQuotesBackslashesAndControlCharacters) {
  std::string out;
  append_json_string(out, std::string_view("a\"b\\c\nd\x01", 8));
  EXPECT_EQ(out, R"("a\"b\\c\nd\u0001")");
}

TEST(AppendJsonString, EveryByteAtEveryOffsetDecodesToItself) {
  // The writer checks eight bytes at a time: each byte value at each position of a 1..24-byte
  // string (UTF-8 bytes included) must come back from Boost.JSON's parser unchanged.
  for (std::size_t len = 1; len <= 24; ++len) {
    for (std::size_t at = 0; at < len; ++at) {
      for (int b = 0; b < 256; ++b) {
        std::string s(len, 'x');
        s[at] = static_cast<char>(b);
        if (b >= 0x80) {
          continue;  // a lone byte >= 0x80 is not UTF-8; pairs are checked below
        }
        std::string out;
        append_json_string(out, s);
        boost::system::error_code ec;
        const auto v = boost::json::parse(out, ec);
        ASSERT_FALSE(ec) << out;
        ASSERT_EQ(v.as_string(), s) << "len " << len << " at " << at << " byte " << b;
      }
    }
  }
  std::string out;
  append_json_string(out, "caf\xc3\xa9 \xe2\x80\x94 \"q\" 12345678\t");
  EXPECT_EQ(out, "\"caf\xc3\xa9 \xe2\x80\x94 \\\"q\\\" 12345678\\t\"");
}

TEST(ValidateJson, AcceptsObjectsAndRejectsMalformedText) {
  EXPECT_TRUE(validate_json(R"({"a":[1,2,{"b":null}],"c":"\u00e9"})"));
  std::string err;
  EXPECT_FALSE(validate_json(R"({"a":1,})", &err));
  EXPECT_FALSE(err.empty());
  EXPECT_FALSE(validate_json(R"({"a":1} x)"));
  EXPECT_FALSE(validate_json(""));
}

TEST(ValidateJson, RejectsInvalidUtf8) {
  EXPECT_FALSE(validate_json("{\"a\":\"\xff\xfe\"}"));
  EXPECT_FALSE(validate_json("{\"a\":\"\xc0\xaf\"}"));  // overlong '/'
}

TEST(ValidateJson, RejectsNestingBeyondLimit) {
  std::string deep(100, '[');
  deep += std::string(100, ']');
  EXPECT_FALSE(validate_json(deep, nullptr, 64));
  EXPECT_TRUE(validate_json(deep, nullptr, 128));
}

TEST(LocateFields, FindsTopLevelMembersOnly) {
  const std::string_view body =
      R"({"messages":[{"model":"inner"}], "model" : "gpt-4o", "stream":true, "x":{"stream":1}})";
  constexpr std::array<std::string_view, 3> names{"model", "stream", "missing"};
  std::array<JsonField, 3> f;
  std::size_t end = 0;
  ASSERT_TRUE(locate_fields(body, names, f, &end));
  EXPECT_EQ(f[0].value, R"("gpt-4o")");
  EXPECT_EQ(f[0].kind(), JsonKind::String);
  EXPECT_EQ(f[1].value, "true");
  EXPECT_EQ(f[1].kind(), JsonKind::Bool);
  EXPECT_FALSE(f[2].present());
  EXPECT_EQ(body[end], '}');
  EXPECT_EQ(end, body.size() - 1);
}

TEST(LocateFields, HandlesEscapedQuotesInStrings) {
  const std::string_view body = R"({"a":"x\"}\\","model":"m"})";
  constexpr std::array<std::string_view, 1> names{"model"};
  std::array<JsonField, 1> f;
  ASSERT_TRUE(locate_fields(body, names, f));
  EXPECT_EQ(f[0].value, R"("m")");
}

TEST(LocateFields, ComparesKeysDecoded) {
  const std::string_view body =
      R"({"mod\u0065l":"m","\u0073tream":true,"a\"b":1,"\ud83d\ude00":2})";
  constexpr std::array<std::string_view, 4> names{"model", "stream", "a\"b",
                                                  "\xf0\x9f\x98\x80"};
  std::array<JsonField, 4> f;
  ASSERT_TRUE(locate_fields(body, names, f));
  EXPECT_EQ(f[0].value, R"("m")");
  EXPECT_EQ(f[1].value, "true");
  EXPECT_EQ(f[2].value, "1");
  EXPECT_EQ(f[3].value, "2");
}

TEST(LocateFields, NeverReadsPastTruncatedInput) {
  const std::string body = R"({"model":"abc","messages":[{"role":"user","content":"hi"}]})";
  constexpr std::array<std::string_view, 2> names{"model", "messages"};
  std::array<JsonField, 2> f;
  for (std::size_t n = 0; n < body.size(); ++n) {
    locate_fields(std::string_view(body).substr(0, n), names, f);  // must not crash
  }
  EXPECT_FALSE(locate_fields("[1,2]", names, f));
}

TEST(EraseField, RemovesMemberAndOneComma) {
  constexpr std::array<std::string_view, 1> names{"usage"};
  std::array<JsonField, 1> f;
  for (auto [in, out] : std::array<std::pair<std::string, std::string>, 3>{{
           {R"({"a":1,"usage":null,"b":2})", R"({"a":1,"b":2})"},
           {R"({"a":1,"usage":null})", R"({"a":1})"},
           {R"({"usage":null})", R"({})"},
       }}) {
    ASSERT_TRUE(locate_fields(in, names, f));
    erase_field(in, f[0]);
    EXPECT_EQ(in, out);
  }
}

TEST(JsonStringValue, DecodesEscapes) {
  EXPECT_EQ(json_string_value(R"("plain")"), "plain");
  EXPECT_EQ(json_string_value(R"("a\u00e9\n")"), "a\xc3\xa9\n");
  EXPECT_FALSE(json_string_value("12").has_value());
}

}  // namespace
}  // namespace llmgw::core

TEST(AppendJson, WritesCompactJsonWithShortestNumbers) {
  const auto v = boost::json::parse(R"({"a":[0.25,1e-7,-3,18446744073709551615],"b":"x\"y",)"
                                    R"("c":null,"d":true,"e":{}})");
  std::string out;
  ASSERT_TRUE(llmgw::core::append_json(out, v));
  EXPECT_EQ(out, R"({"a":[0.25,1e-07,-3,18446744073709551615],"b":"x\"y","c":null,"d":true,"e":{}})");
  EXPECT_EQ(boost::json::parse(out), v);
}

TEST(AppendJson, RefusesANumberJsonCannotCarry) {
  std::string out;
  EXPECT_FALSE(llmgw::core::append_json(out, boost::json::parse(R"({"t":[1e400]})")));
}
