// Walks tests/data/providers/<type>/<case>/ (format: tests/data/providers/README.md): every
// provider's request, answer, stream and error translation against files written from the
// providers' API references.
#include "providers/adapter.hpp"
#include "providers/openai.hpp"
#include "providers/registry/registry.hpp"

#include "read_file.hpp"

#include <boost/beast/core/string.hpp>
#include <boost/json.hpp>
#include <gtest/gtest.h>

#include <filesystem>

namespace llmgw::providers {
namespace {

namespace fs = std::filesystem;
using test::read_file;
namespace json = boost::json;

const fs::path kRoot = fs::path(LLMGW_TEST_DATA_DIR) / "providers";

std::vector<std::string> find_cases() {
  std::vector<std::string> out;
  for (const auto& type : fs::directory_iterator(kRoot)) {
    if (!type.is_directory()) {
      continue;
    }
    for (const auto& c : fs::directory_iterator(type.path())) {
      // Cases without a provider (tests/data/providers/messages/) have their own runner.
      if (fs::exists(c.path() / "case.json") &&
          json::parse(read_file(c.path() / "case.json")).as_object().contains("provider")) {
        out.push_back(fs::relative(c.path(), kRoot).string());
      }
    }
  }
  std::sort(out.begin(), out.end());
  return out;
}

std::string str(const json::object& o, std::string_view key, std::string_view dflt = {}) {
  const auto* v = o.if_contains(key);
  return v != nullptr && v->is_string() ? std::string(v->as_string()) : std::string(dflt);
}

std::int64_t num(const json::object& o, std::string_view key, std::int64_t dflt) {
  const auto* v = o.if_contains(key);
  return v != nullptr && v->is_int64() ? v->as_int64() : dflt;
}

bool flag(const json::object& o, std::string_view key, bool dflt) {
  const auto* v = o.if_contains(key);
  return v != nullptr && v->is_bool() ? v->as_bool() : dflt;
}

core::ProviderConfig provider_config(const json::object& p) {
  core::ProviderConfig cfg;
  cfg.name = "golden";
  const std::string type = str(p, "type");
  if (!core::parse_provider_type(type, cfg.type)) {
    ADD_FAILURE() << "unknown provider type " << type;
  }
  cfg.base_url = str(p, "base_url");
  cfg.api_key = str(p, "api_key");
  for (const char* group : {"settings", "secrets"}) {
    if (const auto* m = p.if_contains(group); m != nullptr && m->is_object()) {
      for (const auto& [k, v] : m->as_object()) {
        (std::string_view(group) == "settings" ? cfg.settings
                                               : cfg.secrets)[std::string(k)] =
            std::string(v.as_string());
      }
    }
  }
  return cfg;
}

Format parse_format(std::string_view f) {
  if (f == "openai_embeddings") {
    return Format::OpenAIEmbeddings;
  }
  if (f == "anthropic_messages") {
    return Format::AnthropicMessages;
  }
  return Format::OpenAIChat;
}

std::optional<std::string> read_if(const fs::path& p) {
  if (!fs::exists(p)) {
    return std::nullopt;
  }
  return read_file(p);
}

const std::array<std::pair<std::string_view, std::int64_t pricing::TokenUsage::*>, 12>
    kUsageFields{{
        {"input_tokens", &pricing::TokenUsage::input_tokens},
        {"cache_read_tokens", &pricing::TokenUsage::cache_read_tokens},
        {"cache_write_5m_tokens", &pricing::TokenUsage::cache_write_5m_tokens},
        {"cache_write_1h_tokens", &pricing::TokenUsage::cache_write_1h_tokens},
        {"output_tokens", &pricing::TokenUsage::output_tokens},
        {"reasoning_tokens", &pricing::TokenUsage::reasoning_tokens},
        {"input_audio_tokens", &pricing::TokenUsage::input_audio_tokens},
        {"output_audio_tokens", &pricing::TokenUsage::output_audio_tokens},
        {"input_image_tokens", &pricing::TokenUsage::input_image_tokens},
        {"output_image_tokens", &pricing::TokenUsage::output_image_tokens},
        {"input_images", &pricing::TokenUsage::input_images},
        {"output_images", &pricing::TokenUsage::output_images},
    }};

void expect_usage(const fs::path& dir, const pricing::TokenUsage& got) {
  const auto text = read_if(dir / "usage.json");
  if (!text) {
    return;
  }
  const json::object want = json::parse(*text).as_object();
  for (const auto& [name, member] : kUsageFields) {
    EXPECT_EQ(got.*member, num(want, name, 0)) << "usage." << name;
  }
  EXPECT_EQ(got.reported, flag(want, "reported", true)) << "usage.reported";
}

/// Feeds `upstream` to a fresh translator in pieces of `step` bytes (0: all at once).
std::string run_stream(const Adapter& a, const CallInput& in, const std::string& upstream,
                       std::size_t step, bool complete,
                       std::unique_ptr<StreamTranslator>& t) {
  t = a.translate_stream(in);
  std::string pending;
  std::string out;
  if (step == 0) {
    pending = upstream;
    t->feed(pending, out);
  } else {
    for (std::size_t i = 0; i < upstream.size(); i += step) {
      pending.append(upstream, i, step);
      t->feed(pending, out);
    }
  }
  t->finish(pending, out, complete);
  return out;
}

class Golden : public ::testing::TestWithParam<std::string> {};

TEST_P(Golden, Case) {
  const fs::path dir = kRoot / GetParam();
  const json::object c = json::parse(read_file(dir / "case.json")).as_object();
  const core::ProviderConfig cfg = provider_config(c.at("provider").as_object());
  const auto adapter = make_adapter(cfg);
  ASSERT_NE(adapter, nullptr);
  const json::object call = c.contains("call") ? c.at("call").as_object() : json::object();

  const std::string client_body = read_if(dir / "client_request.json").value_or("{}");
  CallInput in;
  in.format = parse_format(str(call, "format", "openai_chat"));
  in.body = client_body;
  InspectedRequest inspected;
  if (in.format != Format::AnthropicMessages) {
    const auto endpoint =
        in.format == Format::OpenAIEmbeddings ? Endpoint::Embeddings : Endpoint::ChatCompletions;
    if (!inspect_request(endpoint, client_body, inspected)) {
      in.inspected = &inspected;
    }
  }
  const std::string upstream_model = str(call, "upstream_model", "model");
  in.upstream_model = upstream_model;
  in.stream = flag(call, "stream", inspected.stream);
  in.client_wants_usage = flag(call, "client_wants_usage", inspected.client_wants_usage);
  in.max_output_tokens = num(call, "max_output_tokens", -1);
  const std::string request_id = str(call, "request_id", "req-golden");
  in.request_id = request_id;
  in.created = num(call, "created", 1'700'000'000);
  in.now = std::chrono::system_clock::time_point(std::chrono::seconds(num(call, "now", 1'700'000'000)));

  // The request.
  Outgoing og;
  const auto refusal = adapter->prepare(in, og);
  if (const auto want = read_if(dir / "refusal.json")) {
    ASSERT_TRUE(refusal.has_value()) << "prepare() should have refused";
    const json::object r = json::parse(*want).as_object();
    EXPECT_EQ(refusal->message, str(r, "message"));
    EXPECT_EQ(refusal->param, str(r, "param"));
    return;
  }
  ASSERT_FALSE(refusal.has_value()) << refusal->message;
  if (const auto want = read_if(dir / "upstream_request.json")) {
    const json::object r = json::parse(*want).as_object();
    EXPECT_EQ(og.target, str(r, "target"));
    if (const auto* hs = r.if_contains("headers")) {
      for (const auto& [name, value] : hs->as_object()) {
        std::optional<std::string> found;
        std::string_view rest = og.headers;
        while (!rest.empty()) {
          const auto eol = rest.find("\r\n");
          ASSERT_NE(eol, std::string_view::npos) << "header block must end lines with CRLF";
          const std::string_view line = rest.substr(0, eol);
          rest.remove_prefix(eol + 2);
          const auto colon = line.find(':');
          if (colon != std::string_view::npos &&
              boost::beast::iequals(line.substr(0, colon), std::string_view(name))) {
            std::string_view v = line.substr(colon + 1);
            while (!v.empty() && v.front() == ' ') {
              v.remove_prefix(1);
            }
            found = std::string(v);
          }
        }
        if (value.is_null()) {
          EXPECT_FALSE(found.has_value()) << "header " << name << " must be absent";
        } else {
          ASSERT_TRUE(found.has_value()) << "header " << name << " missing";
          EXPECT_EQ(*found, value.as_string()) << "header " << name;
        }
      }
    }
    if (const auto* body = r.if_contains("body")) {
      const std::string_view sent = og.client_body ? in.body : std::string_view(og.body);
      boost::system::error_code ec;
      const json::value got = json::parse(sent, ec);
      ASSERT_FALSE(ec) << "upstream body is not JSON: " << sent;
      EXPECT_EQ(got, *body) << "upstream body: " << json::serialize(got);
    }
  }

  // The answer.
  std::optional<std::string> upstream = read_if(dir / "upstream_response.json");
  for (const char* ext : {"upstream_response.sse", "upstream_response.bin"}) {
    if (!upstream) {
      upstream = read_if(dir / ext);
    }
  }
  if (!upstream) {
    return;
  }
  const auto status = static_cast<unsigned>(num(c, "upstream_status", 200));
  if (status >= 400) {
    const ProviderError pe =
        adapter->translate_error(status, *upstream, str(c, "upstream_retry_after"));
    const json::object want = json::parse(read_file(dir / "client_error.json")).as_object();
    if (flag(want, "credential_refused", false)) {
      EXPECT_TRUE(pe.credential_refused);
      return;
    }
    EXPECT_FALSE(pe.credential_refused);
    EXPECT_EQ(pe.status, static_cast<unsigned>(num(want, "status", 0)));
    EXPECT_EQ(pe.retry_after, str(want, "retry_after"));
    EXPECT_EQ(json::parse(render_provider_error(in.format, pe)), want.at("body"))
        << render_provider_error(in.format, pe);
    return;
  }
  if (in.stream) {
    const bool complete = flag(c, "complete", true);
    std::unique_ptr<StreamTranslator> whole;
    std::unique_ptr<StreamTranslator> bytewise;
    const std::string a = run_stream(*adapter, in, *upstream, 0, complete, whole);
    const std::string b = run_stream(*adapter, in, *upstream, 1, complete, bytewise);
    EXPECT_EQ(a, b) << "the stream fed whole and fed byte by byte must translate alike";
    if (const auto want = read_if(dir / "client_response.sse")) {
      EXPECT_EQ(a, *want);
    }
    expect_usage(dir, whole->usage());
    EXPECT_EQ(whole->usage(), bytewise->usage());
    if (const auto want = read_if(dir / "answer.json")) {
      const json::object w = json::parse(*want).as_object();
      EXPECT_EQ(whole->model(), str(w, "model", whole->model()));
      EXPECT_EQ(whole->ended(), flag(w, "ended", true));
      EXPECT_EQ(whole->error(), str(w, "error"));
    }
    return;
  }
  std::string out;
  Answer answer;
  const bool ok = adapter->translate_answer(in, *upstream, out, answer);
  if (flag(c, "expect_invalid", false)) {
    EXPECT_FALSE(ok) << "an unreadable answer must be refused";
    return;
  }
  ASSERT_TRUE(ok);
  const std::string_view sent = answer.passthrough ? std::string_view(*upstream) : out;
  if (const auto want = read_if(dir / "client_response.json")) {
    boost::system::error_code ec;
    const json::value got = json::parse(sent, ec);
    ASSERT_FALSE(ec) << "client answer is not JSON: " << sent;
    EXPECT_EQ(got, json::parse(*want)) << json::serialize(got);
  }
  expect_usage(dir, answer.usage);
  if (const auto want = read_if(dir / "answer.json")) {
    const json::object w = json::parse(*want).as_object();
    EXPECT_EQ(answer.model, str(w, "model", answer.model));
  }
}

INSTANTIATE_TEST_SUITE_P(Providers, Golden, ::testing::ValuesIn(find_cases()),
                         [](const ::testing::TestParamInfo<std::string>& i) {
                           std::string n = i.param;
                           for (char& ch : n) {
                             if (!std::isalnum(static_cast<unsigned char>(ch))) {
                               ch = '_';
                             }
                           }
                           return n;
                         });

}  // namespace
}  // namespace llmgw::providers
