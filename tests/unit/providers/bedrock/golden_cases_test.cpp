// Walks the bedrock golden cases (tests/data/providers/bedrock/, format in
// tests/data/providers/README.md) through make_bedrock_adapter. A stand-in until the shared
// runner (tests/unit/providers/golden_test.cpp) lands; it then goes.

#include "providers/bedrock/bedrock.hpp"

#include "read_file.hpp"

#include <boost/json.hpp>
#include <gtest/gtest.h>

#include <filesystem>
#include <map>

namespace llmgw::providers::bedrock {
namespace {

namespace fs = std::filesystem;
namespace json = boost::json;
using test::read_file;

const fs::path kCases = fs::path(LLMGW_TEST_DATA_DIR) / "providers" / "bedrock";

std::string lower(std::string s) {
  for (char& c : s) {
    c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  }
  return s;
}

std::string text_of(const json::object& o, std::string_view key) {
  const json::value* v = o.if_contains(key);
  return v != nullptr && v->is_string() ? std::string(v->get_string()) : std::string();
}

std::int64_t int_of(const json::object& o, std::string_view key, std::int64_t fallback) {
  const json::value* v = o.if_contains(key);
  return v != nullptr && v->is_number() ? v->to_number<std::int64_t>() : fallback;
}

bool bool_of(const json::object& o, std::string_view key, bool fallback) {
  const json::value* v = o.if_contains(key);
  return v != nullptr && v->is_bool() ? v->get_bool() : fallback;
}

core::ProviderConfig provider_of(const json::object& p) {
  core::ProviderConfig cfg;
  cfg.name = "golden";
  cfg.type = core::ProviderType::Bedrock;
  cfg.base_url = text_of(p, "base_url");
  cfg.api_key = text_of(p, "api_key");
  for (const char* field : {"settings", "secrets"}) {
    if (const json::value* m = p.if_contains(field); m != nullptr && m->is_object()) {
      for (const auto& [k, v] : m->get_object()) {
        (std::string_view(field) == "settings" ? cfg.settings : cfg.secrets)[std::string(k)] =
            std::string(v.as_string());
      }
    }
  }
  return cfg;
}

Format format_of(std::string_view f) {
  if (f == "openai_embeddings") {
    return Format::OpenAIEmbeddings;
  }
  return f == "anthropic_messages" ? Format::AnthropicMessages : Format::OpenAIChat;
}

std::map<std::string, std::string> header_lines(std::string_view headers) {
  std::map<std::string, std::string> out;
  while (!headers.empty()) {
    const std::size_t end = headers.find("\r\n");
    EXPECT_NE(end, std::string_view::npos) << "header lines end in CRLF";
    const std::string_view line = headers.substr(0, end);
    const std::size_t colon = line.find(": ");
    EXPECT_NE(colon, std::string_view::npos) << line;
    EXPECT_FALSE(out.contains(lower(std::string(line.substr(0, colon))))) << line;
    out[lower(std::string(line.substr(0, colon)))] = std::string(line.substr(colon + 2));
    headers.remove_prefix(end == std::string_view::npos ? headers.size() : end + 2);
  }
  return out;
}

pricing::TokenUsage usage_of(const json::object& u) {
  pricing::TokenUsage t;
  t.input_tokens = int_of(u, "input_tokens", 0);
  t.cache_read_tokens = int_of(u, "cache_read_tokens", 0);
  t.cache_write_5m_tokens = int_of(u, "cache_write_5m_tokens", 0);
  t.cache_write_1h_tokens = int_of(u, "cache_write_1h_tokens", 0);
  t.output_tokens = int_of(u, "output_tokens", 0);
  t.reasoning_tokens = int_of(u, "reasoning_tokens", 0);
  t.reported = bool_of(u, "reported", true);
  return t;
}

json::value parse_file(const fs::path& p) {
  boost::system::error_code ec;
  json::value v = json::parse(read_file(p), ec);
  EXPECT_FALSE(ec) << p;
  return v;
}

std::string run_stream(const Adapter& a, const CallInput& call, const std::string& bytes,
                       bool complete, std::size_t piece, std::unique_ptr<StreamTranslator>& t) {
  t = a.translate_stream(call);
  std::string in;
  std::string out;
  for (std::size_t i = 0; i < bytes.size(); i += piece) {
    in.append(bytes, i, piece);
    t->feed(in, out);
  }
  t->finish(in, out, complete);
  return out;
}

void check_case(const fs::path& dir) {
  const json::object c = parse_file(dir / "case.json").as_object();
  const json::object& call_json = c.at("call").as_object();
  const auto adapter = make_bedrock_adapter(provider_of(c.at("provider").as_object()));
  ASSERT_NE(adapter, nullptr);

  const std::string body = read_file(dir / "client_request.json");
  const std::string upstream_model = text_of(call_json, "upstream_model");
  const std::string request_id = text_of(call_json, "request_id");
  CallInput call;
  call.format = format_of(text_of(call_json, "format"));
  call.body = body;
  call.upstream_model = upstream_model;
  call.stream = bool_of(call_json, "stream", false);
  call.client_wants_usage = bool_of(call_json, "client_wants_usage", false);
  call.max_output_tokens = int_of(call_json, "max_output_tokens", -1);
  call.request_id = request_id;
  call.created = int_of(call_json, "created", 0);
  call.now =
      std::chrono::system_clock::time_point(std::chrono::seconds(int_of(call_json, "now", 0)));

  Outgoing out;
  const auto refusal = adapter->prepare(call, out);
  if (fs::exists(dir / "refusal.json")) {
    const json::object want = parse_file(dir / "refusal.json").as_object();
    ASSERT_TRUE(refusal.has_value());
    EXPECT_EQ(refusal->message, text_of(want, "message"));
    EXPECT_EQ(refusal->param, text_of(want, "param"));
    return;
  }
  ASSERT_FALSE(refusal.has_value()) << refusal->message << " (" << refusal->param << ")";
  if (fs::exists(dir / "upstream_request.json")) {
    const json::object want = parse_file(dir / "upstream_request.json").as_object();
    EXPECT_EQ(out.target, text_of(want, "target"));
    const auto headers = header_lines(out.headers);
    for (const auto& [name, value] : want.at("headers").as_object()) {
      const auto it = headers.find(lower(std::string(name)));
      if (value.is_null()) {
        EXPECT_EQ(it, headers.end()) << name;
      } else {
        ASSERT_NE(it, headers.end()) << name;
        EXPECT_EQ(it->second, value.as_string()) << name;
      }
    }
    EXPECT_FALSE(out.client_body);
    boost::system::error_code ec;
    const json::value sent = json::parse(out.body, ec);
    ASSERT_FALSE(ec) << out.body;
    EXPECT_EQ(sent, want.at("body")) << out.body;
  }

  const auto status = static_cast<unsigned>(int_of(c, "upstream_status", 200));
  const std::string response = fs::exists(dir / "upstream_response.bin")
                                   ? read_file(dir / "upstream_response.bin")
                                   : read_file(dir / "upstream_response.json");
  if (status >= 400) {
    const ProviderError e =
        adapter->translate_error(status, response, text_of(c, "upstream_retry_after"));
    const json::object want = parse_file(dir / "client_error.json").as_object();
    EXPECT_EQ(e.status, int_of(want, "status", 0));
    EXPECT_EQ(e.retry_after, text_of(want, "retry_after"));
    EXPECT_EQ(e.credential_refused, bool_of(want, "credential_refused", false));
    if (const json::value* b = want.if_contains("body")) {
      EXPECT_EQ(json::parse(render_provider_error(call.format, e)), *b)
          << render_provider_error(call.format, e);
    }
    return;
  }
  if (response.empty()) {
    return;
  }
  if (!call.stream) {
    std::string translated;
    Answer answer;
    const bool ok = adapter->translate_answer(call, response, translated, answer);
    if (bool_of(c, "expect_invalid", false)) {
      EXPECT_FALSE(ok);
      return;
    }
    ASSERT_TRUE(ok);
    EXPECT_EQ(json::parse(translated), parse_file(dir / "client_response.json")) << translated;
    if (fs::exists(dir / "usage.json")) {
      EXPECT_EQ(answer.usage, usage_of(parse_file(dir / "usage.json").as_object()));
    }
    return;
  }
  const bool complete = bool_of(c, "complete", true);
  const std::string want = read_file(dir / "client_response.sse");
  std::unique_ptr<StreamTranslator> whole;
  std::unique_ptr<StreamTranslator> bytewise;
  EXPECT_EQ(run_stream(*adapter, call, response, complete, response.size() + 1, whole), want);
  EXPECT_EQ(run_stream(*adapter, call, response, complete, 1, bytewise), want);
  for (const auto* t : {whole.get(), bytewise.get()}) {
    if (fs::exists(dir / "usage.json")) {
      EXPECT_EQ(t->usage(), usage_of(parse_file(dir / "usage.json").as_object()));
    }
    if (fs::exists(dir / "answer.json")) {
      const json::object a = parse_file(dir / "answer.json").as_object();
      EXPECT_EQ(t->model(), text_of(a, "model"));
      EXPECT_EQ(t->ended(), bool_of(a, "ended", false));
      EXPECT_EQ(t->error(), text_of(a, "error"));
    }
  }
}

TEST(BedrockGolden, EveryCasePasses) {
  std::size_t n = 0;
  for (const auto& e : fs::directory_iterator(kCases)) {
    if (!e.is_directory()) {
      continue;
    }
    SCOPED_TRACE(e.path().filename().string());
    check_case(e.path());
    ++n;
  }
  EXPECT_GE(n, 40u);
}

}  // namespace
}  // namespace llmgw::providers::bedrock
