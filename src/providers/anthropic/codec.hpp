#pragma once
/// Anthropic's Messages API as a codec, apart from where the request goes and how it is
/// signed: the request body (an Anthropic-format call passed through with its model replaced,
/// an OpenAI chat call translated), the whole answer, the stream and the error body. Used by
/// the `anthropic` provider (anthropic.hpp) and by Vertex AI's Anthropic models, whose
/// rawPredict / streamRawPredict take the same body without `model` and with
/// `"anthropic_version": "vertex-2023-10-16"`, and answer the same way.
///
/// What an OpenAI chat call becomes, and what it cannot (each refused before anything is
/// sent, with the parameter named):
///  - system and developer messages are lifted into `system`; consecutive messages of one
///    role are merged (Anthropic requires alternating turns); role `tool` messages become
///    `tool_result` blocks of a user turn; assistant `tool_calls` become `tool_use` blocks.
///  - `max_tokens` is required by Anthropic: max_completion_tokens, else max_tokens, else
///    CallInput::max_output_tokens, else kDefaultMaxTokens.
///  - response_format `json_object` adds nothing: Anthropic has no JSON mode on this API
///    version, and OpenAI's JSON mode already requires the prompt to ask for JSON, which
///    Claude follows. `json_schema` is refused (400, param response_format) rather than
///    emulated with a forced tool: a forced tool changes the answer's shape, conflicts with
///    the client's own tools and with thinking, and a client asking for a schema should
///    learn that it is not enforced.
///  - `n` > 1, `logprobs`, audio output, a stop sequence made only of whitespace (Anthropic
///    refuses those) and legacy `functions` are refused; penalties, `seed` and `logit_bias`,
///    which only tune sampling, are dropped.
///  - `reasoning_effort` (minimal/low → 1024, medium → 2048, high → 4096) enables extended
///    thinking with that budget; thinking blocks of the answer come back as
///    `reasoning_content`.

#include "providers/adapter.hpp"

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

namespace llmgw::providers::anthropic {

/// The `anthropic-version` header when the provider's settings name none.
inline constexpr std::string_view kApiVersion = "2023-06-01";
/// The body's `anthropic_version` on Vertex AI when the caller names none.
inline constexpr std::string_view kVertexVersion = "vertex-2023-10-16";
/// `max_tokens` when neither the client nor the model's price list gives one.
inline constexpr std::int64_t kDefaultMaxTokens = 4096;

/// Where a Messages body goes.
struct MessagesOptions {
  /// Vertex AI: the model is named by the URL, so the body has no `model` and carries
  /// `anthropic_version` instead of the header.
  bool vertex = false;
  /// With `vertex`: the body's anthropic_version; empty: kVertexVersion.
  std::string_view anthropic_version;
};

/// The upstream Messages body for `in` into `body`: an Anthropic-format call is the client's
/// body with `model` replaced by in.upstream_model (spliced, not re-serialised; Vertex:
/// removed, and anthropic_version set), an OpenAI chat call is translated, an embeddings call
/// is refused. A refusal leaves `body` unspecified.
[[nodiscard]] std::optional<Refusal> build_request(const CallInput& in,
                                                   const MessagesOptions& options,
                                                   std::string& body);

/// Whether build_request would send the client's body unchanged (an Anthropic-format call
/// that already names in.upstream_model, not for Vertex): the caller may then skip the copy.
[[nodiscard]] bool body_unchanged(const CallInput& in, const MessagesOptions& options);

/// A successful whole answer (a Message object): for an Anthropic-format call it passes
/// through (answer.passthrough, `out` untouched); for an OpenAI chat call `out` receives a
/// `chat.completion`. Reads usage (pricing::normalize_anthropic) and the answering model.
/// False if `body` is not a Message.
[[nodiscard]] bool translate_answer(const CallInput& in, std::string_view body,
                                    std::string& out, Answer& answer);

/// Anthropic's error answer `{"type":"error","error":{"type","message"}}` (or a body of
/// another shape, which only the status then describes).
[[nodiscard]] ProviderError translate_error(unsigned status, std::string_view body,
                                            std::string_view retry_after);

/// The translator of a Messages event stream: passed through event by event to an
/// Anthropic-format client, translated into chat.completion.chunk events for an OpenAI one.
[[nodiscard]] std::unique_ptr<StreamTranslator> make_stream_translator(const CallInput& in);

}  // namespace llmgw::providers::anthropic
