// A stand-in for the parameterised golden runner (tests/unit/providers/golden_test.cpp, to
// come): walks tests/data/providers/anthropic/ and checks each case as that runner will
// (tests/data/providers/README.md). Delete it once the shared runner lands.
#include "providers/anthropic/anthropic.hpp"

#include "read_file.hpp"

#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>
#include <gtest/gtest.h>

#include <algorithm>
#include <cctype>
#include <filesystem>
#include <map>

namespace llmgw::providers {
namespace {

namespace fs = std::filesystem;
namespace json = boost::json;

const fs::path kCases = fs::path(LLMGW_TEST_DATA_DIR) / "providers" / "anthropic";

std::string lower(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return std::tolower(c); });
  return s;
}

std::map<std::string, std::string> header_map(const std::string& lines) {
  std::map<std::string, std::string> out;
  std::size_t pos = 0;
  while (pos < lines.size()) {
    const std::size_t end = lines.find("\r\n", pos);
    const std::string line = lines.substr(pos, end - pos);
    const std::size_t colon = line.find(':');
    out[lower(line.substr(0, colon))] = line.substr(colon + 2);
    pos = end == std::string::npos ? lines.size() : end + 2;
  }
  return out;
}

Format format_of(std::string_view s) {
  if (s == "anthropic_messages") {
    return Format::AnthropicMessages;
  }
  return s == "openai_embeddings" ? Format::OpenAIEmbeddings : Format::OpenAIChat;
}

std::string str(const json::object& o, std::string_view k) {
  const auto* v = o.if_contains(k);
  return v != nullptr && v->is_string() ? std::string(v->get_string()) : std::string();
}

void check_usage(const fs::path& dir, const pricing::TokenUsage& u) {
  if (!fs::exists(dir / "usage.json")) {
    return;
  }
  const auto want = json::parse(test::read_file(dir / "usage.json")).as_object();
  const std::map<std::string, std::int64_t> got{
      {"input_tokens", u.input_tokens},
      {"cache_read_tokens", u.cache_read_tokens},
      {"cache_write_5m_tokens", u.cache_write_5m_tokens},
      {"cache_write_1h_tokens", u.cache_write_1h_tokens},
      {"output_tokens", u.output_tokens},
      {"reasoning_tokens", u.reasoning_tokens}};
  for (const auto& [name, value] : got) {
    const auto* w = want.if_contains(name);
    EXPECT_EQ(value, w != nullptr ? w->to_number<std::int64_t>() : 0) << name;
  }
}

class AnthropicGolden : public testing::TestWithParam<std::string> {};

TEST_P(AnthropicGolden, Case) {
  const fs::path dir = kCases / GetParam();
  const auto c = json::parse(test::read_file(dir / "case.json")).as_object();
  const auto& p = c.at("provider").as_object();
  core::ProviderConfig config;
  config.name = "golden";
  config.type = core::ProviderType::Anthropic;
  config.base_url = str(p, "base_url");
  config.api_key = str(p, "api_key");
  if (const auto* s = p.if_contains("settings")) {
    for (const auto& kv : s->as_object()) {
      config.settings[std::string(kv.key())] = std::string(kv.value().as_string());
    }
  }
  const auto adapter = make_anthropic_adapter(config);
  const auto& call = c.at("call").as_object();
  const std::string client_request = test::read_file(dir / "client_request.json");
  CallInput in;
  in.format = format_of(str(call, "format"));
  in.body = client_request;
  const std::string upstream_model = str(call, "upstream_model");
  const std::string request_id = str(call, "request_id");
  in.upstream_model = upstream_model;
  in.request_id = request_id;
  if (const auto* v = call.if_contains("stream")) {
    in.stream = v->as_bool();
  }
  if (const auto* v = call.if_contains("client_wants_usage")) {
    in.client_wants_usage = v->as_bool();
  }
  if (const auto* v = call.if_contains("max_output_tokens")) {
    in.max_output_tokens = v->to_number<std::int64_t>();
  }
  if (const auto* v = call.if_contains("created")) {
    in.created = v->to_number<std::int64_t>();
  }

  if (fs::exists(dir / "refusal.json")) {
    Outgoing out;
    const auto refusal = adapter->prepare(in, out);
    ASSERT_TRUE(refusal.has_value());
    const auto want = json::parse(test::read_file(dir / "refusal.json")).as_object();
    EXPECT_EQ(refusal->message, str(want, "message"));
    EXPECT_EQ(refusal->param, str(want, "param"));
    return;
  }
  if (fs::exists(dir / "upstream_request.json")) {
    Outgoing out;
    const auto refusal = adapter->prepare(in, out);
    ASSERT_FALSE(refusal.has_value()) << refusal->message;
    const auto want = json::parse(test::read_file(dir / "upstream_request.json")).as_object();
    EXPECT_EQ(out.target, str(want, "target"));
    const auto headers = header_map(out.headers);
    for (const auto& kv : want.at("headers").as_object()) {
      const auto it = headers.find(lower(std::string(kv.key())));
      if (kv.value().is_null()) {
        EXPECT_EQ(it, headers.end()) << kv.key();
      } else {
        ASSERT_NE(it, headers.end()) << kv.key();
        EXPECT_EQ(it->second, kv.value().as_string()) << kv.key();
      }
    }
    const std::string& sent = out.client_body ? client_request : out.body;
    EXPECT_EQ(json::parse(sent), want.at("body")) << sent;
  }

  const auto* status_v = c.if_contains("upstream_status");
  const unsigned status = status_v != nullptr ? status_v->to_number<unsigned>() : 200;
  if (status >= 400) {
    const std::string body = test::read_file(dir / "upstream_response.json");
    const ProviderError e = adapter->translate_error(status, body, str(c, "upstream_retry_after"));
    const auto want = json::parse(test::read_file(dir / "client_error.json")).as_object();
    EXPECT_EQ(e.status, want.at("status").to_number<unsigned>());
    EXPECT_EQ(e.retry_after, str(want, "retry_after"));
    if (const auto* cr = want.if_contains("credential_refused")) {
      EXPECT_EQ(e.credential_refused, cr->as_bool());
    }
    EXPECT_EQ(json::parse(render_provider_error(in.format, e)), want.at("body"))
        << render_provider_error(in.format, e);
    return;
  }
  if (fs::exists(dir / "upstream_response.json")) {
    const std::string body = test::read_file(dir / "upstream_response.json");
    std::string out;
    Answer answer;
    const bool ok = adapter->translate_answer(in, body, out, answer);
    if (const auto* v = c.if_contains("expect_invalid"); v != nullptr && v->as_bool()) {
      EXPECT_FALSE(ok);
      return;
    }
    ASSERT_TRUE(ok);
    const std::string& client = answer.passthrough ? body : out;
    EXPECT_EQ(json::parse(client), json::parse(test::read_file(dir / "client_response.json")))
        << client;
    check_usage(dir, answer.usage);
    if (fs::exists(dir / "answer.json")) {
      const auto want = json::parse(test::read_file(dir / "answer.json")).as_object();
      EXPECT_EQ(answer.model, str(want, "model"));
    }
  }
  if (fs::exists(dir / "upstream_response.sse")) {
    const std::string sse = test::read_file(dir / "upstream_response.sse");
    const auto* complete_v = c.if_contains("complete");
    const bool complete = complete_v == nullptr || complete_v->as_bool();
    const std::string want = test::read_file(dir / "client_response.sse");
    for (const bool bytewise : {false, true}) {
      auto t = adapter->translate_stream(in);
      std::string buffer, out;
      if (bytewise) {
        for (const char ch : sse) {
          buffer += ch;
          t->feed(buffer, out);
        }
      } else {
        buffer = sse;
        t->feed(buffer, out);
      }
      t->finish(buffer, out, complete);
      EXPECT_EQ(out, want) << (bytewise ? "byte by byte" : "whole");
      check_usage(dir, t->usage());
      if (fs::exists(dir / "answer.json")) {
        const auto a = json::parse(test::read_file(dir / "answer.json")).as_object();
        if (a.contains("model")) {
          EXPECT_EQ(t->model(), str(a, "model"));
        }
        if (a.contains("ended")) {
          EXPECT_EQ(t->ended(), a.at("ended").as_bool());
        }
        if (a.contains("error")) {
          EXPECT_EQ(t->error(), a.at("error").is_null() ? "" : str(a, "error"));
        }
      }
    }
  }
}

std::vector<std::string> cases() {
  std::vector<std::string> names;
  for (const auto& e : fs::directory_iterator(kCases)) {
    if (e.is_directory()) {
      names.push_back(e.path().filename().string());
    }
  }
  std::sort(names.begin(), names.end());
  return names;
}

INSTANTIATE_TEST_SUITE_P(Cases, AnthropicGolden, testing::ValuesIn(cases()),
                         [](const auto& info) {
                           std::string n = info.param;
                           std::replace(n.begin(), n.end(), '-', '_');
                           return n;
                         });

}  // namespace
}  // namespace llmgw::providers
