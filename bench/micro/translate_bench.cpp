// The per-call work of each provider adapter on the benchmark's own request and answers
// (bench/data/: request.json is peers.sh's request body; the answers are what its static mock
// serves for each provider): prepare (translate and sign), whole-answer translation, and the
// stream translated in the 17 pieces peers.sh's mock sends. Reports numbers only.
#include "providers/adapter.hpp"
#include "providers/openai.hpp"
#include "providers/registry/registry.hpp"

#include <benchmark/benchmark.h>

#include <fstream>
#include <sstream>

namespace {

using namespace llmgw;

std::string read(const std::string& name) {
  std::ifstream in(std::string(LLMGW_SOURCE_DIR) + "/bench/data/" + name, std::ios::binary);
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

struct Setup {
  std::shared_ptr<const providers::Adapter> adapter;
  std::string body = read("request.json");
  providers::InspectedRequest req;
  providers::CallInput in;
  std::string answer;
  std::string stream;

  Setup(core::ProviderType type, const char* model, const char* answer_file,
        const char* stream_file, bool streamed) {
    core::ProviderConfig p;
    p.name = "bench";
    p.type = type;
    p.base_url = "http://127.0.0.1:18080/v1";
    p.api_key = "sk-bench";
    if (type == core::ProviderType::Bedrock) {
      p.api_key.clear();
      p.settings["region"] = "us-east-1";
      p.settings["aws_access_key_id"] = "AKIAIOSFODNN7EXAMPLE";
      p.secrets["aws_secret_access_key"] = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY";
    }
    adapter = providers::make_adapter(p);
    if (streamed) {
      body.insert(body.size() - 1, R"(,"stream":true)");
    }
    (void)providers::inspect_request(providers::Endpoint::ChatCompletions, body, req);
    in.body = body;
    in.inspected = &req;
    in.upstream_model = model;
    in.stream = streamed;
    in.request_id = "0123456789abcdef0123456789abcdef";
    in.created = 1'700'000'000;
    in.now = std::chrono::system_clock::now();
    answer = read(answer_file);
    stream = read(stream_file);
  }
};

Setup& setup(int which, bool streamed) {
  static Setup s[6] = {
      {core::ProviderType::OpenAICompatible, "gpt-4o-mini", "openai.json", "openai_stream.sse",
       false},
      {core::ProviderType::Anthropic, "claude-haiku-4-5-20251001", "anthropic.json",
       "anthropic_stream.sse", false},
      {core::ProviderType::Bedrock, "us.anthropic.claude-haiku-4-5-20251001-v1:0", "bedrock.json",
       "bedrock_stream.bin", false},
      {core::ProviderType::OpenAICompatible, "gpt-4o-mini", "openai.json", "openai_stream.sse",
       true},
      {core::ProviderType::Anthropic, "claude-haiku-4-5-20251001", "anthropic.json",
       "anthropic_stream.sse", true},
      {core::ProviderType::Bedrock, "us.anthropic.claude-haiku-4-5-20251001-v1:0", "bedrock.json",
       "bedrock_stream.bin", true},
  };
  return s[which + (streamed ? 3 : 0)];
}

void BM_Prepare(benchmark::State& st) {
  Setup& s = setup(static_cast<int>(st.range(0)), false);
  for (auto _ : st) {
    providers::Outgoing og;
    auto r = s.adapter->prepare(s.in, og);
    benchmark::DoNotOptimize(r);
    benchmark::DoNotOptimize(og);
  }
}

void BM_Answer(benchmark::State& st) {
  Setup& s = setup(static_cast<int>(st.range(0)), false);
  for (auto _ : st) {
    std::string out;
    providers::Answer a;
    benchmark::DoNotOptimize(s.adapter->translate_answer(s.in, s.answer, out, a));
    benchmark::DoNotOptimize(out);
  }
}

void BM_Stream(benchmark::State& st) {
  Setup& s = setup(static_cast<int>(st.range(0)), true);
  constexpr std::size_t kPieces = 17;
  const std::size_t piece = (s.stream.size() + kPieces - 1) / kPieces;
  for (auto _ : st) {
    auto t = s.adapter->translate_stream(s.in);
    std::string pending;
    std::string out;
    for (std::size_t i = 0; i < s.stream.size(); i += piece) {
      pending.append(s.stream, i, piece);
      t->feed(pending, out);
    }
    t->finish(pending, out, true);
    benchmark::DoNotOptimize(out);
  }
}

// 0: openai_compatible (passthrough), 1: anthropic, 2: bedrock.
BENCHMARK(BM_Prepare)->DenseRange(0, 2);
BENCHMARK(BM_Answer)->DenseRange(0, 2);
BENCHMARK(BM_Stream)->DenseRange(0, 2);

}  // namespace

BENCHMARK_MAIN();
