// Runs Prometheus's own linter (`promtool check metrics`, Debian package `prometheus`) on a
// scrape with every family populated. Without promtool the test fails: it does not skip.
#include "metrics/registry.hpp"

#include <gtest/gtest.h>

#include <unistd.h>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>

namespace llmgw::metrics {
namespace {

using namespace std::chrono_literals;

std::string find_promtool() {
  if (const char* path = std::getenv("PATH")) {
    std::string_view rest = path;
    while (!rest.empty()) {
      const auto colon = rest.find(':');
      const std::filesystem::path candidate =
          std::filesystem::path(rest.substr(0, colon)) / "promtool";
      if (::access(candidate.c_str(), X_OK) == 0) {
        return candidate.string();
      }
      rest = colon == std::string_view::npos ? std::string_view{} : rest.substr(colon + 1);
    }
  }
  return {};
}

std::string mixed_load_scrape() {
  Registry reg({"0.1.0", "0123456789abcdef"});
  reg.set_probe(Probe::UsageBufferBytes, [] { return std::optional<double>(3); });
  reg.set_probe(Probe::AuditBufferBytes, [] { return std::optional<double>(12); });
  reg.set_probe(Probe::AuditArchiveLag, [] { return std::optional<double>(4.5); });
  reg.set_probe(Probe::RedisUp, [] { return std::optional<double>(1); });
  reg.set_probe(Probe::DatabaseUp, [] { return std::optional<double>(0); });
  reg.set_probe(Probe::UsageDropped, [] { return std::optional<double>(0); });
  reg.set_probe(Probe::AuditDropped, [] { return std::optional<double>(2); });
  const TargetId a = reg.target("gpt-4o", "openai");
  const TargetId b = reg.target("we\"ird\\name\nwith newline \xff", "azure-east");
  Shard& s1 = reg.add_shard();
  Shard& s2 = reg.add_shard();
  int i = 0;
  for (const TargetId t : {a, b, kNoTarget}) {
    for (const Route route : {Route::ChatCompletions, Route::Embeddings, Route::Messages}) {
      for (const unsigned status : {200u, 429u, 502u}) {
        RequestRecord r;
        r.route = route;
        r.target = t;
        r.status = status;
        r.total = std::chrono::milliseconds(1 + 37 * i);
        if (t != kNoTarget) {
          r.upstream = r.total - 15us;
          r.overhead = 15us;
          r.first_token = r.total / 3;
          for (std::size_t k = 0; k < kTokenKinds; ++k) {
            r.tokens[k] = static_cast<std::int64_t>(k + 1);
          }
          r.cost = *core::Money::parse("0.000123456789");
        }
        (i % 2 == 0 ? s1 : s2).observe(r);
        ++i;
      }
    }
  }
  s1.upstream_error(a, UpstreamError::Timeout);
  s2.upstream_error(b, UpstreamError::Overloaded);
  s1.refused(Refusal::KeyRequests);
  s2.refused(Refusal::Budget);
  s1.key_cache(true);
  s2.key_cache(false);
  s1.request_started();
  s2.stream_opened();
  return reg.render();
}

TEST(Promtool, ChecksARenderedScrapeClean) {
  const std::string promtool = find_promtool();
  ASSERT_FALSE(promtool.empty()) << "promtool not found on PATH: install Debian's `prometheus` "
                                    "package (scripts/install-deps.sh)";
  const std::string scrape = mixed_load_scrape();
  const auto dir =
      std::filesystem::temp_directory_path() / ("llmgw-metrics-" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  const auto file = dir / "scrape.txt";
  {
    std::ofstream f(file, std::ios::binary);
    f << scrape;
  }
  const std::string cmd = promtool + " check metrics < " + file.string() + " 2>&1";
  FILE* p = ::popen(cmd.c_str(), "r");
  ASSERT_NE(p, nullptr);
  std::string output;
  char buf[4096];
  while (const std::size_t n = std::fread(buf, 1, sizeof buf, p)) {
    output.append(buf, n);
  }
  const int status = ::pclose(p);
  std::filesystem::remove_all(dir);
  EXPECT_EQ(status, 0) << output << "\n--- scrape ---\n" << scrape;
  EXPECT_EQ(output, "") << output;
}

}  // namespace
}  // namespace llmgw::metrics
