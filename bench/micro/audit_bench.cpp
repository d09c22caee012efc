// The request path's cost of the audit log, per request, in each body mode: rendering the
// record (metadata; full with the benchmark's request and answer; redacted, which parses and
// masks both bodies), appending it to the I/O thread's spool, and, for a stream in full or
// redacted mode, assembling the answer from its events. Reports numbers only.
#include "events/audit/record.hpp"
#include "events/audit/redact.hpp"
#include "events/spool/spool.hpp"
#include "providers/stream_assembler.hpp"

#include <benchmark/benchmark.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

namespace {

using namespace llmgw;

std::string data_file(const char* name) {
  std::ifstream in(std::string(LLMGW_SOURCE_DIR) + "/bench/data/" + name, std::ios::binary);
  if (!in) {
    std::fprintf(stderr, "audit_bench: bench/data/%s not found\n", name);
    std::exit(1);
  }
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

struct Bodies {
  std::string request = data_file("request.json");
  std::string answer = data_file("openai.json");
  std::string stream = data_file("openai_stream.sse");
};

const Bodies& bodies() {
  static const Bodies b;
  return b;
}

audit::Record record() {
  audit::Record r;
  r.request_id = "0123456789abcdef0123456789abcdef";
  r.client_request_id = "client-req-42";
  r.time_us = 1'765'000'000'123'456;
  r.endpoint = "chat.completions";
  r.key_id = "key_0123456789abcdef";
  r.key_name = "team-a production";
  r.model_requested = "gpt-4o-mini";
  r.model = "gpt-4o-mini";
  r.provider = "openai";
  r.upstream_model = "gpt-4o-mini-2024-07-18";
  r.status = 200;
  r.total_us = 1843;
  r.overhead_us = 61;
  r.upstream_us = 1782;
  r.tokens.input = 812;
  r.tokens.cache_read = 256;
  r.tokens.output = 95;
  r.tokens.reported = true;
  r.cost_usd = "0.00018390";
  r.cost_status = "exact";
  r.request_body = bodies().request;
  r.response_body = bodies().answer;
  return r;
}

void render(benchmark::State& state, core::AuditBodies mode) {
  const audit::Record r = record();
  const audit::Redactor redactor;
  std::string line;
  for (auto _ : state) {
    line.clear();
    line.reserve(512);
    audit::render(line, r, mode, 1u << 20, redactor);
    benchmark::DoNotOptimize(line.data());
  }
  state.counters["bytes"] = static_cast<double>(line.size());
}

void BM_RenderMetadata(benchmark::State& state) { render(state, core::AuditBodies::Metadata); }
void BM_RenderFull(benchmark::State& state) { render(state, core::AuditBodies::Full); }
void BM_RenderRedacted(benchmark::State& state) { render(state, core::AuditBodies::Redacted); }
BENCHMARK(BM_RenderMetadata);
BENCHMARK(BM_RenderFull);
BENCHMARK(BM_RenderRedacted);

// One rendered record into the spool (the memcpy the I/O thread does); the consumer's drain is
// outside the timing.
void spool_append(benchmark::State& state, core::AuditBodies mode) {
  const auto dir = std::filesystem::temp_directory_path() /
                   ("llmgw-audit-bench-" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  {
    auto spool = events::Spool::open((dir / "audit-0.spool").string(), 16u << 20);
    std::string line;
    audit::render(line, record(), mode, 1u << 20, audit::Redactor());
    std::vector<std::string> out;
    std::vector<std::uint64_t> seqs;
    for (auto _ : state) {
      if (!spool->append(line)) {
        state.PauseTiming();
        std::uint64_t next = 0;
        out.clear();
        spool->read(SIZE_MAX, out, seqs, next);
        spool->consume(next);
        state.ResumeTiming();
        spool->append(line);
      }
    }
  }
  std::filesystem::remove_all(dir);
}

void BM_SpoolAppendMetadata(benchmark::State& state) {
  spool_append(state, core::AuditBodies::Metadata);
}
void BM_SpoolAppendFull(benchmark::State& state) { spool_append(state, core::AuditBodies::Full); }
BENCHMARK(BM_SpoolAppendMetadata);
BENCHMARK(BM_SpoolAppendFull);

// A stream's events assembled into the answer (full and redacted modes), fed as the proxy
// feeds them: one write to the client at a time, here 512 bytes.
void BM_AssembleStream(benchmark::State& state) {
  const std::string& sse = bodies().stream;
  for (auto _ : state) {
    providers::StreamAssembler a(providers::Format::OpenAIChat);
    for (std::size_t i = 0; i < sse.size(); i += 512) {
      a.feed(std::string_view(sse).substr(i, 512));
    }
    std::string out = a.finish();
    benchmark::DoNotOptimize(out.data());
  }
}
BENCHMARK(BM_AssembleStream);

}  // namespace

BENCHMARK_MAIN();
