// The golden cases of tests/data/providers/messages/ (the whole translation: the client's
// Anthropic request, the OpenAI body sent on, the OpenAI answer, the Anthropic answer),
// walked until the shared golden runner takes them. A case's files follow
// tests/data/providers/README.md; `case.json` names only the call (no provider: the OpenAI
// side is what any OpenAI-chat adapter takes and produces). With LLMGW_WRITE_GOLDEN set, a
// missing client_response.sse is written from the translation (review it before committing).
#include "providers/messages/messages.hpp"
#include "providers/messages/pass_through.hpp"

#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>
#include <boost/json/value.hpp>

#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>

namespace llmgw::providers {
namespace {

namespace fs = std::filesystem;
namespace json = boost::json;

std::string read(const fs::path& p) {
  std::ifstream f(p, std::ios::binary);
  std::ostringstream s;
  s << f.rdbuf();
  return s.str();
}

json::value read_json(const fs::path& p) {
  boost::system::error_code ec;
  json::value v = json::parse(read(p), ec);
  EXPECT_FALSE(ec) << p;
  return v;
}

struct Translated {
  std::string out;
  std::unique_ptr<ChatToMessagesStream> t;
};

/// Feeds `upstream` whole (`step` 0) or `step` bytes at a time, then finishes.
Translated translate_stream(std::string_view upstream, std::string_view model, std::size_t step,
                            bool complete) {
  Translated r;
  r.t = std::make_unique<ChatToMessagesStream>(std::make_unique<PassThrough>(), model);
  std::string in;
  if (step == 0) {
    in = upstream;
    r.t->feed(in, r.out);
  } else {
    for (std::size_t i = 0; i < upstream.size(); i += step) {
      in.append(upstream.substr(i, step));
      r.t->feed(in, r.out);
    }
  }
  r.t->finish(in, r.out, complete);
  return r;
}

void check_case(const fs::path& dir) {
  SCOPED_TRACE(dir.filename().string());
  const json::value c = read_json(dir / "case.json");
  const json::object& call = c.at("call").as_object();
  const std::string upstream_model(call.at("upstream_model").as_string());
  const bool stream = call.at("stream").as_bool();
  const bool complete = !c.as_object().contains("complete") || c.at("complete").as_bool();

  const std::string request = read(dir / "client_request.json");
  InspectedRequest inspected;
  const auto bad = inspect_messages_request(request, inspected);
  ASSERT_FALSE(bad) << bad->message;
  EXPECT_EQ(inspected.stream, stream);

  std::string upstream_body;
  const auto refusal = messages_to_chat(request, upstream_model, stream, upstream_body);
  if (fs::exists(dir / "refusal.json")) {
    const json::value r = read_json(dir / "refusal.json");
    ASSERT_TRUE(refusal);
    EXPECT_EQ(json::value(refusal->message), r.at("message"));
    EXPECT_EQ(json::value(refusal->param), r.at("param"));
    return;
  }
  ASSERT_FALSE(refusal) << refusal->message;
  EXPECT_EQ(json::parse(upstream_body), read_json(dir / "upstream_request.json").at("body"))
      << upstream_body;

  if (fs::exists(dir / "upstream_response.json")) {
    std::string out;
    ASSERT_TRUE(chat_to_messages_answer(read(dir / "upstream_response.json"), inspected.model, out));
    EXPECT_EQ(json::parse(out), read_json(dir / "client_response.json")) << out;
  }
  if (fs::exists(dir / "upstream_response.sse")) {
    const std::string upstream = read(dir / "upstream_response.sse");
    const Translated whole = translate_stream(upstream, inspected.model, 0, complete);
    EXPECT_EQ(translate_stream(upstream, inspected.model, 1, complete).out, whole.out);
    const fs::path expected = dir / "client_response.sse";
    if (!fs::exists(expected) && std::getenv("LLMGW_WRITE_GOLDEN") != nullptr) {
      std::ofstream(expected, std::ios::binary) << whole.out;
    }
    ASSERT_TRUE(fs::exists(expected)) << whole.out;
    EXPECT_EQ(whole.out, read(expected));
    if (fs::exists(dir / "answer.json")) {
      const json::value a = read_json(dir / "answer.json");
      EXPECT_EQ(json::value(whole.t->ended()), a.at("ended"));
      EXPECT_EQ(json::value(whole.t->error()), a.at("error"));
    }
  }
}

TEST(MessagesGolden, EveryCasePasses) {
  const fs::path root = fs::path(LLMGW_TEST_DATA_DIR) / "providers" / "messages";
  std::size_t cases = 0;
  for (const auto& entry : fs::directory_iterator(root)) {
    if (entry.is_directory()) {
      check_case(entry.path());
      ++cases;
    }
  }
  EXPECT_GE(cases, 4u);
}

}  // namespace
}  // namespace llmgw::providers
