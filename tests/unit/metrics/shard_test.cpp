#include "metrics/registry.hpp"
#include "scrape.hpp"

#include <gtest/gtest.h>

#include <thread>
#include <vector>

namespace llmgw::metrics {
namespace {

using namespace std::chrono_literals;
using test::sample;

RequestRecord proxied(TargetId t, unsigned status, std::chrono::nanoseconds total) {
  RequestRecord r;
  r.route = Route::ChatCompletions;
  r.target = t;
  r.status = status;
  r.total = total;
  r.upstream = total / 2;
  r.overhead = 20us;
  r.tokens[static_cast<std::size_t>(TokenKind::InputText)] = 10;
  r.tokens[static_cast<std::size_t>(TokenKind::OutputReasoning)] = 3;
  r.cost = *core::Money::parse("0.000001");
  return r;
}

TEST(Shard, ThreadsWritingTheirOwnShardsSumAtScrape) {
  Registry reg({"1.2.3", ""});
  const TargetId a = reg.target("gpt-4o", "openai");
  const TargetId b = reg.target("claude", "anthropic");
  constexpr int kThreads = 4;
  constexpr int kPerThread = 20'000;
  std::vector<Shard*> shards;
  for (int i = 0; i < kThreads; ++i) {
    shards.push_back(&reg.add_shard());
  }
  std::atomic<bool> stop{false};
  // A scraper runs all along: under TSan this is the proof that a scrape races no writer.
  std::thread scraper([&] {
    while (!stop.load()) {
      (void)reg.render();
    }
  });
  std::vector<std::thread> workers;
  for (int i = 0; i < kThreads; ++i) {
    workers.emplace_back([&, i] {
      Shard& s = *shards[static_cast<std::size_t>(i)];
      for (int k = 0; k < kPerThread; ++k) {
        s.request_started();
        s.observe(proxied(k % 2 == 0 ? a : b, k % 10 == 0 ? 502 : 200, 3ms));
        s.key_cache(k % 4 != 0);
        s.request_finished();
      }
      s.refused(Refusal::Budget);
      s.upstream_error(a, UpstreamError::Timeout);
    });
  }
  for (auto& w : workers) {
    w.join();
  }
  stop = true;
  scraper.join();

  const std::string out = reg.render();
  const std::string gpt = R"(model="gpt-4o",provider="openai")";
  const std::string claude = R"(model="claude",provider="anthropic")";
  const auto chat = [](const std::string& target, std::string_view status_class) {
    return R"(llmgw_requests_total{route="chat_completions",)" + target + R"(,status_class=")" +
           std::string(status_class) + "\"}";
  };
  // Per target: half the requests, one in ten of them 502.
  constexpr int kPerTarget = kThreads * kPerThread / 2;
  EXPECT_EQ(sample(out, chat(gpt, "2xx")), std::to_string(kPerTarget - kPerTarget / 5));
  EXPECT_EQ(sample(out, chat(gpt, "5xx")), std::to_string(kPerTarget / 5));
  EXPECT_EQ(sample(out, "llmgw_request_duration_seconds_count{" + claude + "}"),
            std::to_string(kPerTarget));
  EXPECT_EQ(sample(out, "llmgw_gateway_overhead_seconds_count{" + claude + "}"),
            std::to_string(kPerTarget));
  // 40000 × 3 ms = 120 s exactly; 40000 × 20 µs = 0.8 s.
  EXPECT_EQ(sample(out, "llmgw_request_duration_seconds_sum{" + gpt + "}"), "120");
  EXPECT_EQ(sample(out, "llmgw_gateway_overhead_seconds_sum{" + gpt + "}"), "0.8");
  EXPECT_EQ(sample(out, "llmgw_tokens_total{" + gpt + R"(,direction="input",kind="text"})"),
            std::to_string(kPerTarget * 10));
  EXPECT_EQ(sample(out, "llmgw_tokens_total{" + gpt + R"(,direction="output",kind="reasoning"})"),
            std::to_string(kPerTarget * 3));
  EXPECT_EQ(sample(out, "llmgw_cost_usd_total{" + gpt + "}"), "0.04");
  EXPECT_EQ(sample(out, "llmgw_upstream_errors_total{" + gpt + R"(,type="timeout"})"),
            std::to_string(kThreads));
  EXPECT_EQ(sample(out, "llmgw_budget_refusals_total"), std::to_string(kThreads));
  EXPECT_EQ(sample(out, R"(llmgw_key_cache_lookups_total{result="miss"})"),
            std::to_string(kThreads * kPerThread / 4));
  EXPECT_EQ(sample(out, R"(llmgw_key_cache_lookups_total{result="hit"})"),
            std::to_string(kThreads * kPerThread * 3 / 4));
  EXPECT_EQ(sample(out, "llmgw_in_flight_requests"), "0");
  // Nothing measured upstream-side for the first token: no series.
  EXPECT_EQ(
      sample(out, R"(llmgw_time_to_first_token_seconds_count{model="gpt-4o",provider="openai"})"),
      std::nullopt);
}

TEST(Shard, HistogramBucketsAreCumulativeWithInfAndInclusiveBounds) {
  Registry reg({"1", ""});
  const TargetId t = reg.target("m", "p");
  Shard& s = reg.add_shard();
  for (const auto d : {std::chrono::nanoseconds(50us), std::chrono::nanoseconds(100us),
                       std::chrono::nanoseconds(101us), std::chrono::nanoseconds(2s),
                       std::chrono::nanoseconds(61s)}) {
    RequestRecord r;
    r.target = t;
    r.status = 200;
    r.total = d;
    s.observe(r);
  }
  const std::string out = reg.render();
  const auto bucket = [&](std::string_view le) {
    return sample(
        out, std::string(R"(llmgw_request_duration_seconds_bucket{model="m",provider="p",le=")") +
                 std::string(le) + "\"}");
  };
  EXPECT_EQ(bucket("0.0001"), "2");  // 50 µs and exactly 100 µs: le is inclusive
  EXPECT_EQ(bucket("0.00025"), "3");
  EXPECT_EQ(bucket("1"), "3");
  EXPECT_EQ(bucket("2.5"), "4");
  EXPECT_EQ(bucket("60"), "4");
  EXPECT_EQ(bucket("+Inf"), "5");
  EXPECT_EQ(sample(out, R"(llmgw_request_duration_seconds_count{model="m",provider="p"})"), "5");
  EXPECT_EQ(sample(out, R"(llmgw_request_duration_seconds_sum{model="m",provider="p"})"),
            "63.000251");
  // Buckets appear in increasing order, each at least the one before.
  const auto first = out.find("llmgw_request_duration_seconds_bucket");
  const auto inf = out.find(R"(le="+Inf")", first);
  ASSERT_NE(first, std::string::npos);
  ASSERT_NE(inf, std::string::npos);
  std::uint64_t prev = 0;
  for (auto at = first; at < inf; at = out.find("llmgw_request_duration_seconds_bucket", at + 1)) {
    const auto v = std::stoull(out.substr(out.find("} ", at) + 2));
    EXPECT_GE(v, prev);
    prev = v;
  }
}

TEST(Shard, UnresolvedRequestsCountUnderEmptyModelAndProvider) {
  Registry reg({"1", ""});
  Shard& s = reg.add_shard();
  RequestRecord r;
  r.route = Route::Embeddings;
  r.status = 401;
  s.observe(r);
  const std::string out = reg.render();
  EXPECT_EQ(
      sample(out,
             R"(llmgw_requests_total{route="embeddings",model="",provider="",status_class="4xx"})"),
      "1");
}

TEST(Shard, TargetIdsAreStableAcrossSnapshots) {
  Registry reg({"1", ""});
  const TargetId a = reg.target("m", "p");
  const TargetId b = reg.target("m", "q");
  EXPECT_NE(a, kNoTarget);
  EXPECT_NE(a, b);
  EXPECT_EQ(reg.target("m", "p"), a);
  // The separator keeps ("ab","c") and ("a","bc") apart.
  EXPECT_NE(reg.target("ab", "c"), reg.target("a", "bc"));
}

TEST(Shard, TargetsPastTheLimitAreCountedUnlabelled) {
  Registry reg({"1", ""});
  for (std::size_t i = 1; i < kMaxTargets; ++i) {
    ASSERT_NE(reg.target("m" + std::to_string(i), "p"), kNoTarget);
  }
  EXPECT_EQ(reg.target("one-too-many", "p"), kNoTarget);
  EXPECT_EQ(sample(reg.render(), "llmgw_metrics_targets_dropped_total"), "1");
}

TEST(MoneyCell, SumsPastSixtyFourBitsExactly) {
  MoneyCell c;
  // 10 USD is 1e25 units: more than 2^64 (1.8e19) in one add.
  const auto ten = *core::Money::parse("10");
  const auto tiny = *core::Money::parse("0.000000000000000000000001");
  c.add(ten);
  c.add(ten);
  c.add(tiny);
  EXPECT_EQ(c.load().to_string(), "20.000000000000000000000001");
}

TEST(MoneyCell, AScrapeNeverSeesATornSum) {
  MoneyCell c;
  // 2^64 - 1 units: nearly every add carries into the high half.
  const auto step = core::Money::from_units(core::Money::Rep(~std::uint64_t{0}));
  constexpr int kAdds = 200'000;
  std::thread writer([&] {
    for (int i = 0; i < kAdds; ++i) {
      c.add(step);
    }
  });
  core::Money::Rep last = 0;
  for (;;) {
    const core::Money::Rep v = c.load().units();
    ASSERT_EQ(v % step.units(), 0);  // a torn read is not a multiple of the step
    ASSERT_GE(v, last);
    last = v;
    if (v == step.units() * kAdds) {
      break;
    }
  }
  writer.join();
}

}  // namespace
}  // namespace llmgw::metrics
