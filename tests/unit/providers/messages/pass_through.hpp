#pragma once
// A stand-in for a provider adapter's stream translator, for the Messages stream tests.

#include "providers/adapter.hpp"
#include "providers/stream_util.hpp"

#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>
#include <boost/json/value.hpp>

#include <string>

namespace llmgw::providers {

/// Stands for a provider adapter's translator: passes OpenAI SSE events through whole,
/// ends at [DONE], reads the usage chunk, and notes an error event as the adapter would.
class PassThrough final : public StreamTranslator {
 public:
  void feed(std::string& in, std::string& out) override {
    std::size_t pos = 0;
    SseEvent ev;
    while (std::size_t n = next_sse_event(std::string_view(in).substr(pos), ev)) {
      out.append(in, pos, n);
      pos += n;
      ++events_;
      if (ev.data == "[DONE]") {
        ended_ = true;
        continue;
      }
      boost::system::error_code ec;
      const boost::json::value v = boost::json::parse(ev.data, ec);
      if (ec || !v.is_object()) {
        continue;
      }
      if (v.as_object().contains("error")) {
        error_ = "server_error";
      }
      if (const boost::json::value* u = v.as_object().if_contains("usage"); u && u->is_object()) {
        pricing::normalize_openai(boost::json::serialize(*u), usage_);
      }
      model_ = "gpt-4o-2024-08-06";
    }
    in.erase(0, pos);
  }
  void finish(std::string& in, std::string& out, bool) override {
    feed(in, out);
    in.clear();
  }
};

}  // namespace llmgw::providers
