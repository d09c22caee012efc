#include "metrics/exposition.hpp"
#include "metrics/registry.hpp"
#include "scrape.hpp"

#include <gtest/gtest.h>

namespace llmgw::metrics {
namespace {

std::string label_value(std::string_view v) {
  std::string out;
  append_label_value(out, v);
  return out;
}

TEST(Exposition, EscapesBackslashQuoteAndNewlineInLabelValues) {
  EXPECT_EQ(label_value(R"(a\b"c)"
                        "\nd"),
            R"(a\\b\"c\nd)");
  EXPECT_EQ(label_value("plain-model_1.5"), "plain-model_1.5");
  EXPECT_EQ(label_value("mod\xc3\xa8le"), "mod\xc3\xa8le");  // valid UTF-8 kept
}

TEST(Exposition, ReplacesInvalidUtf8InLabelValues) {
  EXPECT_EQ(label_value("a\xff"
                        "b"),
            "a\xEF\xBF\xBD"
            "b");
  EXPECT_EQ(label_value("\xc3"), "\xEF\xBF\xBD");  // truncated sequence
  EXPECT_EQ(label_value("\xed\xa0\x80"), "\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD");  // surrogate
  EXPECT_EQ(label_value("\xc0\xaf"), "\xEF\xBF\xBD\xEF\xBF\xBD");                  // overlong
}

TEST(Exposition, EscapesHelpText) {
  std::string out;
  append_help_text(out, "a\\b\nc\"d");
  EXPECT_EQ(out, R"(a\\b\nc"d)");
}

TEST(Exposition, RendersNanosecondsAsExactSeconds) {
  const auto s = [](std::uint64_t ns) {
    std::string out;
    append_seconds(out, ns);
    return out;
  };
  EXPECT_EQ(s(0), "0");
  EXPECT_EQ(s(1), "0.000000001");
  EXPECT_EQ(s(100'000), "0.0001");
  EXPECT_EQ(s(2'500'000'000), "2.5");
  EXPECT_EQ(s(60'000'000'000), "60");
}

TEST(Exposition, RendersMoneyAsExactDecimal) {
  const auto m = [](std::string_view text) {
    std::string out;
    append_money(out, *core::Money::parse(text));
    return out;
  };
  EXPECT_EQ(m("0"), "0");
  EXPECT_EQ(m("0.00000015"), "0.00000015");
  EXPECT_EQ(m("1.5e-07"), "0.00000015");
  EXPECT_EQ(m("12345.000000000000000000000001"), "12345.000000000000000000000001");
}

TEST(Exposition, RendersDoubles) {
  const auto d = [](double v) {
    std::string out;
    append_double(out, v);
    return out;
  };
  EXPECT_EQ(d(1), "1");
  EXPECT_EQ(d(0.25), "0.25");
  EXPECT_EQ(d(std::numeric_limits<double>::infinity()), "+Inf");
  EXPECT_EQ(d(-std::numeric_limits<double>::infinity()), "-Inf");
  EXPECT_EQ(d(std::numeric_limits<double>::quiet_NaN()), "NaN");
}

TEST(Registry, EscapesModelAndProviderNamesInEverySeries) {
  Registry reg({"1", ""});
  const TargetId t = reg.target("evil\"} 1\nllmgw_fake 2", "prov\\x");
  Shard& s = reg.add_shard();
  RequestRecord r;
  r.target = t;
  r.status = 200;
  s.observe(r);
  const std::string out = reg.render();
  EXPECT_EQ(out.find("\nllmgw_fake"), std::string::npos);
  EXPECT_EQ(
      test::sample(
          out,
          R"(llmgw_requests_total{route="other",model="evil\"} 1\nllmgw_fake 2",provider="prov\\x",status_class="2xx"})"),
      "1");
}

TEST(Registry, RendersBuildInfoStartTimeAndProbes) {
  const auto started =
      std::chrono::system_clock::time_point(std::chrono::milliseconds(1'700'000'000'250));
  Registry reg({"0.1.0", "abc123"}, started);
  reg.set_probe(Probe::UsageBufferBytes, [] { return std::optional<double>(7); });
  reg.set_probe(Probe::RedisUp, [] { return std::optional<double>(); });  // not configured
  reg.set_probe(Probe::DatabaseUp, [] { return std::optional<double>(1); });
  reg.set_probe(Probe::AuditDropped, [] { return std::optional<double>(3); });
  const std::string out = reg.render();
  EXPECT_EQ(test::sample(out, R"(llmgw_build_info{version="0.1.0",commit="abc123"})"), "1");
  EXPECT_EQ(test::sample(out, "llmgw_start_time_seconds"), "1700000000.25");
  EXPECT_EQ(test::sample(out, "llmgw_usage_buffer_bytes"), "7");
  EXPECT_EQ(test::sample(out, "llmgw_database_up"), "1");
  EXPECT_EQ(test::sample(out, "llmgw_audit_records_dropped_total"), "3");
  EXPECT_NE(out.find("# TYPE llmgw_audit_records_dropped_total counter\n"), std::string::npos);
  EXPECT_EQ(out.find("llmgw_redis_up"), std::string::npos);
  EXPECT_EQ(out.find("llmgw_audit_buffer_bytes"), std::string::npos);
  EXPECT_EQ(kContentType, "text/plain; version=0.0.4; charset=utf-8");
}

TEST(Registry, LeavesTheCommitOutWhenTheBuildDoesNotKnowIt) {
  Registry reg({"0.1.0", ""});
  EXPECT_EQ(test::sample(reg.render(), R"(llmgw_build_info{version="0.1.0"})"), "1");
}

TEST(Registry, EveryFamilyHasHelpAndTypeOnce) {
  Registry reg;
  const std::string out = reg.render();
  std::size_t types = 0;
  for (auto at = out.find("# TYPE "); at != std::string::npos; at = out.find("# TYPE ", at + 1)) {
    ++types;
    const auto name_end = out.find(' ', at + 7);
    const std::string name = out.substr(at + 7, name_end - at - 7);
    EXPECT_NE(out.find("# HELP " + name + " "), std::string::npos) << name;
    EXPECT_EQ(out.find("# TYPE " + name + " ", at + 1), std::string::npos) << name;
  }
  EXPECT_GE(types, 15u);
}

}  // namespace
}  // namespace llmgw::metrics
