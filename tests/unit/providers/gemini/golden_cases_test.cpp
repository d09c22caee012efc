// A stand-in for the shared golden runner (tests/unit/providers/golden_test.cpp, not yet on
// this branch): walks tests/data/providers/{gemini,vertex}/*/ as tests/data/providers/README.md
// describes, building adapters with the factories instead of the registry. Delete it when
// the shared runner lands.
#include "providers/gemini/gemini.hpp"
#include "providers/gemini/vertex.hpp"

#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>
#include <gtest/gtest.h>

#include <filesystem>

#include "read_file.hpp"

namespace llmgw::providers {
namespace {

namespace fs = std::filesystem;
namespace json = boost::json;

std::string str(const json::object& o, std::string_view key) {
  const auto* v = o.if_contains(key);
  return v != nullptr && v->is_string() ? std::string(v->get_string()) : std::string();
}

json::value parse_or_null(const std::string& text) {
  boost::system::error_code ec;
  auto v = json::parse(text, ec);
  return ec ? json::value() : v;
}

std::string lower(std::string s) {
  for (char& c : s) {
    c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  }
  return s;
}

/// The value of header `name` in "Name: value\r\n" lines, or nullopt.
std::optional<std::string> header(const std::string& lines, const std::string& name) {
  std::size_t pos = 0;
  while (pos < lines.size()) {
    const std::size_t end = lines.find("\r\n", pos);
    const std::string line = lines.substr(pos, end - pos);
    const std::size_t colon = line.find(':');
    if (colon != std::string::npos && lower(line.substr(0, colon)) == lower(name)) {
      return line.substr(colon + 2);
    }
    pos = end == std::string::npos ? lines.size() : end + 2;
  }
  return std::nullopt;
}

void run_case(const fs::path& dir, const std::string& type) {
  SCOPED_TRACE(dir.string());
  const json::object c = json::parse(test::read_file(dir / "case.json")).as_object();
  const json::object& p = c.at("provider").as_object();
  core::ProviderConfig config;
  config.name = type;
  config.base_url = str(p, "base_url");
  config.api_key = str(p, "api_key");
  for (const auto* which : {"settings", "secrets"}) {
    if (const auto* m = p.if_contains(which)) {
      for (const auto& kv : m->as_object()) {
        (std::string_view(which) == "settings" ? config.settings
                                               : config.secrets)[std::string(kv.key())] =
            std::string(kv.value().as_string());
      }
    }
  }
  const auto adapter = type == "gemini" ? make_gemini_adapter(config) : make_vertex_adapter(config);

  const json::object& call = c.at("call").as_object();
  CallInput in;
  const std::string format = str(call, "format");
  in.format = format == "openai_embeddings"    ? Format::OpenAIEmbeddings
              : format == "anthropic_messages" ? Format::AnthropicMessages
                                               : Format::OpenAIChat;
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
  if (const auto* v = call.if_contains("created")) {
    in.created = v->to_number<std::int64_t>();
  }
  if (const auto* v = call.if_contains("max_output_tokens")) {
    in.max_output_tokens = v->to_number<std::int64_t>();
  }
  const std::string body = test::read_file(dir / "client_request.json");
  in.body = body;

  if (fs::exists(dir / "refusal.json")) {
    Outgoing out;
    const auto r = adapter->prepare(in, out);
    ASSERT_TRUE(r) << "expected a refusal";
    const json::object want = json::parse(test::read_file(dir / "refusal.json")).as_object();
    EXPECT_EQ(r->message, str(want, "message"));
    EXPECT_EQ(r->param, str(want, "param"));
    return;
  }
  if (fs::exists(dir / "upstream_request.json")) {
    Outgoing out;
    const auto r = adapter->prepare(in, out);
    ASSERT_FALSE(r) << r->message;
    const json::object want =
        json::parse(test::read_file(dir / "upstream_request.json")).as_object();
    EXPECT_EQ(out.target, str(want, "target"));
    if (const auto* hs = want.if_contains("headers")) {
      for (const auto& kv : hs->as_object()) {
        const auto got = header(out.headers, std::string(kv.key()));
        if (kv.value().is_null()) {
          EXPECT_FALSE(got) << kv.key();
        } else {
          EXPECT_EQ(got.value_or("<absent>"), kv.value().as_string()) << kv.key();
        }
      }
    }
    EXPECT_EQ(parse_or_null(out.body), want.at("body")) << out.body;
  }

  const unsigned status = c.if_contains("upstream_status") != nullptr
                              ? c.at("upstream_status").to_number<unsigned>()
                              : 200;
  if (status >= 400) {
    const std::string ubody = test::read_file(dir / "upstream_response.json");
    const ProviderError e = adapter->translate_error(status, ubody, str(c, "upstream_retry_after"));
    const json::object want = json::parse(test::read_file(dir / "client_error.json")).as_object();
    EXPECT_EQ(e.status, want.at("status").to_number<unsigned>());
    EXPECT_EQ(e.retry_after, str(want, "retry_after"));
    if (const auto* cr = want.if_contains("credential_refused")) {
      EXPECT_EQ(e.credential_refused, cr->as_bool());
    }
    EXPECT_EQ(json::parse(render_provider_error(in.format, e)), want.at("body"))
        << render_provider_error(in.format, e);
    return;
  }

  Answer answer;
  pricing::TokenUsage usage;
  std::string model;
  bool ended = false;
  std::string stream_error;
  if (fs::exists(dir / "upstream_response.json")) {
    std::string out;
    const bool ok =
        adapter->translate_answer(in, test::read_file(dir / "upstream_response.json"), out, answer);
    if (c.if_contains("expect_invalid") != nullptr && c.at("expect_invalid").as_bool()) {
      EXPECT_FALSE(ok);
      return;
    }
    ASSERT_TRUE(ok);
    EXPECT_EQ(parse_or_null(out), json::parse(test::read_file(dir / "client_response.json")))
        << out;
    usage = answer.usage;
    model = answer.model;
  } else if (fs::exists(dir / "upstream_response.sse")) {
    const std::string upstream = test::read_file(dir / "upstream_response.sse");
    const bool complete = c.if_contains("complete") == nullptr || c.at("complete").as_bool();
    const std::string want = test::read_file(dir / "client_response.sse");
    for (const bool bytewise : {false, true}) {
      auto t = adapter->translate_stream(in);
      std::string buf;
      std::string out;
      if (bytewise) {
        for (const char ch : upstream) {
          buf += ch;
          t->feed(buf, out);
        }
      } else {
        buf = upstream;
        t->feed(buf, out);
      }
      t->finish(buf, out, complete);
      EXPECT_EQ(out, want) << (bytewise ? "byte by byte" : "whole");
      usage = t->usage();
      model = t->model();
      ended = t->ended();
      stream_error = t->error();
    }
  } else {
    return;
  }
  if (fs::exists(dir / "usage.json")) {
    const json::object u = json::parse(test::read_file(dir / "usage.json")).as_object();
    auto n = [&](std::string_view k) {
      return u.if_contains(k) != nullptr ? u.at(k).to_number<std::int64_t>() : 0;
    };
    EXPECT_EQ(usage.input_tokens, n("input_tokens"));
    EXPECT_EQ(usage.cache_read_tokens, n("cache_read_tokens"));
    EXPECT_EQ(usage.output_tokens, n("output_tokens"));
    EXPECT_EQ(usage.reasoning_tokens, n("reasoning_tokens"));
    EXPECT_EQ(usage.reported, u.if_contains("reported") == nullptr || u.at("reported").as_bool());
  }
  if (fs::exists(dir / "answer.json")) {
    const json::object a = json::parse(test::read_file(dir / "answer.json")).as_object();
    if (a.if_contains("model") != nullptr) {
      EXPECT_EQ(model, str(a, "model"));
    }
    if (a.if_contains("ended") != nullptr) {
      EXPECT_EQ(ended, a.at("ended").as_bool());
    }
    if (a.if_contains("error") != nullptr) {
      EXPECT_EQ(stream_error, str(a, "error"));
    }
  }
}

TEST(GeminiGoldenCases, EveryCasePasses) {
  int cases = 0;
  for (const std::string type : {"gemini", "vertex"}) {
    const fs::path root = fs::path(LLMGW_TEST_DATA_DIR) / "providers" / type;
    ASSERT_TRUE(fs::exists(root)) << root;
    std::vector<fs::path> dirs;
    for (const auto& e : fs::directory_iterator(root)) {
      if (e.is_directory()) {
        dirs.push_back(e.path());
      }
    }
    std::sort(dirs.begin(), dirs.end());
    for (const auto& d : dirs) {
      run_case(d, type);
      ++cases;
    }
  }
  EXPECT_GT(cases, 20);
}

}  // namespace
}  // namespace llmgw::providers
