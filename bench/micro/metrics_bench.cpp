// The request path's cost of metrics: one Shard::observe at the end of a request (what the
// proxy calls once per request), a single counter bump, and a scrape. Reports numbers only.
#include "metrics/registry.hpp"

#include <benchmark/benchmark.h>

#include <string>
#include <vector>

namespace {

using namespace llmgw;
using namespace std::chrono_literals;

constexpr int kTargets = 32;

std::vector<metrics::TargetId> make_targets(metrics::Registry& reg) {
  std::vector<metrics::TargetId> ids;
  for (int i = 0; i < kTargets; ++i) {
    ids.push_back(reg.target("model-" + std::to_string(i), "provider-" + std::to_string(i % 4)));
  }
  return ids;
}

// A proxied, priced chat call: 4 latencies, 3 token kinds, a cost; the target and the
// latencies change from call to call so that branch predictors and caches see variety.
void BM_ObserveProxiedRequest(benchmark::State& state) {
  metrics::Registry reg;
  const auto targets = make_targets(reg);
  metrics::Shard& shard = reg.add_shard();
  for (const auto t : targets) {
    shard.prepare(t);
  }
  metrics::RequestRecord r;
  r.route = metrics::Route::ChatCompletions;
  r.status = 200;
  r.tokens[static_cast<std::size_t>(metrics::TokenKind::InputText)] = 812;
  r.tokens[static_cast<std::size_t>(metrics::TokenKind::InputCacheRead)] = 256;
  r.tokens[static_cast<std::size_t>(metrics::TokenKind::OutputText)] = 95;
  r.cost = *core::Money::parse("0.00284");
  std::uint32_t i = 0;
  for (auto _ : state) {
    r.target = targets[i % kTargets];
    r.total = std::chrono::microseconds(200 + (i * 7919) % 900'000);
    r.upstream = r.total - 14us;
    r.overhead = std::chrono::nanoseconds(9'000 + (i * 31) % 20'000);
    r.first_token = r.total / 4;
    shard.observe(r);
    ++i;
  }
  benchmark::DoNotOptimize(shard);
}
BENCHMARK(BM_ObserveProxiedRequest);

// A request refused before a model was resolved (401, 429): one counter and one histogram.
void BM_ObserveRefusedRequest(benchmark::State& state) {
  metrics::Registry reg;
  metrics::Shard& shard = reg.add_shard();
  metrics::RequestRecord r;
  r.route = metrics::Route::ChatCompletions;
  r.status = 401;
  std::uint32_t i = 0;
  for (auto _ : state) {
    r.total = std::chrono::nanoseconds(4'000 + (i * 37) % 5'000);
    shard.observe(r);
    ++i;
  }
  benchmark::DoNotOptimize(shard);
}
BENCHMARK(BM_ObserveRefusedRequest);

void BM_CounterBump(benchmark::State& state) {
  metrics::Registry reg;
  metrics::Shard& shard = reg.add_shard();
  bool hit = false;
  for (auto _ : state) {
    shard.key_cache(hit);
    hit = !hit;
  }
  benchmark::DoNotOptimize(shard);
}
BENCHMARK(BM_CounterBump);

// A scrape of 32 targets used on each of 2 shards (the I/O threads of this machine).
void BM_Render(benchmark::State& state) {
  metrics::Registry reg;
  const auto targets = make_targets(reg);
  for (int s = 0; s < 2; ++s) {
    metrics::Shard& shard = reg.add_shard();
    for (const auto t : targets) {
      metrics::RequestRecord r;
      r.route = metrics::Route::ChatCompletions;
      r.target = t;
      r.status = 200;
      r.total = 30ms;
      r.upstream = 29ms;
      r.overhead = 12us;
      r.first_token = 5ms;
      r.tokens[0] = 100;
      r.tokens[6] = 10;
      r.cost = *core::Money::parse("0.001");
      shard.observe(r);
    }
  }
  std::string out;
  for (auto _ : state) {
    out.clear();
    reg.render(out);
    benchmark::DoNotOptimize(out.data());
  }
  state.counters["bytes"] = static_cast<double>(out.size());
}
BENCHMARK(BM_Render);

}  // namespace

BENCHMARK_MAIN();
