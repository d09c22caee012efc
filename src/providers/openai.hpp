#pragma once
/// The OpenAI wire format, as the proxy needs it: request checks (a validating pass plus a
/// locator, no DOM), the two rewrites the gateway makes (model name, stream usage option),
/// usage extraction, and an SSE filter that hides the usage the gateway asked for on the
/// client's behalf. Used for `openai` and `openai_compatible` providers.

#include "core/json.hpp"

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace llmgw::providers {

/// The top-level `usage` object of a JSON response body (empty if none). OpenAI puts it last,
/// so it is looked for from the end; the full structural scan is the fallback.
/// The usage is priced by pricing::normalize_openai; this layer only finds it.
std::string_view find_usage_object(std::string_view body);

enum class Endpoint : std::uint8_t { ChatCompletions, Embeddings };

/// What the gateway reads from a request body.
struct InspectedRequest {
  std::string model;
  bool stream = false;
  bool client_wants_usage = false;  ///< stream_options.include_usage == true
  std::string service_tier;         ///< as sent ("priority", "flex", ...); empty if absent
  std::int64_t max_output_tokens = -1;  ///< max_completion_tokens, else max_tokens; -1: none
  std::int64_t choices = 1;             ///< `n`: completions asked for (each one bills output)
};

struct RequestError {
  std::string message;
  std::string param;
};

/// Validates `body` for `endpoint` (strict JSON, UTF-8, required fields and their types) and
/// reads the fields above, in one SAX pass of Boost.JSON's parser: no DOM, no second scan.
/// Keys are compared decoded (`"mod\u0065l"` is `model`); a top-level key, or a key of
/// `stream_options`, that appears twice is refused (the error's param names it), so the
/// gateway and the provider cannot read different copies of a member.
std::optional<RequestError> inspect_request(Endpoint endpoint, std::string_view body,
                                            InspectedRequest& out);

enum class RewriteResult : std::uint8_t {
  Original,      ///< the client's bytes go upstream as they are
  Rewritten,     ///< `out` holds the upstream body
  Inconsistent,  ///< the body is not the one inspect_request accepted (a bug: answer 500)
};

/// Builds the upstream body into `out` when it must differ from the client's (model renamed,
/// usage requested). `body` must have passed inspect_request into `req`.
RewriteResult rewrite_request(std::string_view body, const InspectedRequest& req,
                              std::string_view upstream_model, bool request_usage,
                              std::string& out);

/// Passes an OpenAI chat SSE stream through event by event, collecting usage. With
/// `hide_usage` (the gateway added include_usage), it drops the usage-only chunk and the
/// `"usage":null` members, so the client sees what the provider would have sent it. With
/// `read_model`, it also reads the first non-empty `model` the chunks name (Azure names the
/// model behind the deployment; its first chunk, the prompt filter results, names none).
class SseFilter {
 public:
  explicit SseFilter(bool hide_usage, bool read_model = false)
      : hide_usage_(hide_usage), read_model_(read_model) {}

  /// Moves every complete event from the front of `in` to `out` (filtered).
  void feed(std::string& in, std::string& out);
  /// End of stream: a trailing partial event is passed through unfiltered.
  void finish(std::string& in, std::string& out);

  /// The last usage object the stream carried, as JSON text (empty if none).
  [[nodiscard]] const std::string& usage_json() const noexcept { return usage_json_; }
  [[nodiscard]] bool saw_done() const noexcept { return saw_done_; }
  /// With `read_model`: the model the stream named; empty: none yet.
  [[nodiscard]] const std::string& model() const noexcept { return model_; }
  /// Events passed through (role, content, finish and [DONE] events alike): OpenAI streams
  /// about one token per content event, so this bounds the estimate when a stream ends
  /// without usage.
  [[nodiscard]] std::size_t events() const noexcept { return events_; }

 private:
  void event(std::string_view ev, std::string& out);

  bool hide_usage_;
  bool read_model_;
  std::string usage_json_;
  std::string model_;
  bool saw_done_ = false;
  std::size_t events_ = 0;
  std::string scratch_;
};

}  // namespace llmgw::providers
