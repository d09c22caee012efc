// libFuzzer target: request inspection and the rewrite on arbitrary bodies. Whatever the
// bytes, inspection either refuses them or accepts them, and an accepted body always rewrites
// consistently (the locator finds the member the inspection read), and the rewritten body is
// accepted again with the new model name.
#include "providers/openai.hpp"

#include <cstdlib>

using namespace llmgw::providers;

extern "C" int LLVMFuzzerTestOneInput(const unsigned char* data, std::size_t size) {
  const std::string_view body(reinterpret_cast<const char*>(data), size);
  InspectedRequest req;
  if (inspect_request(Endpoint::ChatCompletions, body, req)) {
    return 0;
  }
  std::string out;
  const auto r = rewrite_request(body, req, "renamed-model", /*request_usage=*/req.stream, out);
  if (r == RewriteResult::Inconsistent) {
    std::abort();  // a body the inspection accepted must be the one the rewrite edits
  }
  if (r == RewriteResult::Rewritten) {
    InspectedRequest again;
    if (inspect_request(Endpoint::ChatCompletions, out, again) || again.model != "renamed-model" ||
        again.stream != req.stream || again.max_output_tokens != req.max_output_tokens ||
        again.choices != req.choices) {
      std::abort();
    }
  }
  return 0;
}
