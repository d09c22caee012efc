#pragma once
/// What the translated providers share: reading Server-Sent Events (any line ending: Gemini
/// frames with CRLF), writing OpenAI `chat.completion.chunk` events, OpenAI's usage object
/// from normalised usage, and reading the base64 data URLs of image parts.

#include "pricing/usage.hpp"

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace llmgw::providers {

/// One Server-Sent Event: its `event:` name (empty if none) and its `data:` lines joined by
/// "\n". Comments (`:` lines), `id:` and `retry:` are skipped.
struct SseEvent {
  std::string name;
  std::string data;
};

/// Parses the first complete event of `in` (one ending in a blank line; lines end in "\n",
/// "\r\n" or "\r") into `ev`. Returns the bytes it spans, or 0 if `in` holds no complete
/// event yet. An event with neither name nor data (a keep-alive blank line) is returned too.
std::size_t next_sse_event(std::string_view in, SseEvent& ev);

/// A base64 data URL, `data:<mime>[;params];base64,<data>` (scheme and `;base64` in any
/// case, RFC 2397): its MIME type without parameters and its data, both non-empty.
struct DataUrl {
  std::string_view mime;
  std::string_view data;
};
std::optional<DataUrl> parse_data_url(std::string_view url) noexcept;

/// OpenAI's usage object from normalised usage: prompt_tokens (all prompt-side tokens),
/// completion_tokens (reasoning included), total_tokens, prompt_tokens_details.cached_tokens,
/// completion_tokens_details.reasoning_tokens.
void append_openai_usage(std::string& out, const pricing::TokenUsage& u);

/// A JSON string literal, quotes included, already valid JSON (for example a string value
/// located in a provider's validated event): written as it is, not decoded and escaped again.
struct JsonLiteral {
  std::string_view text;
};

/// Writes OpenAI chat.completion.chunk events ("data: {...}\n\n") for one streamed answer.
class ChunkWriter {
 public:
  ChunkWriter(std::string_view id, std::string_view model, std::int64_t created)
      : id_(id), model_(model), created_(created) {
    make_prefix();
  }

  void set_model(std::string_view model) {
    model_ = model;
    make_prefix();
  }
  [[nodiscard]] const std::string& id() const noexcept { return id_; }
  [[nodiscard]] const std::string& model() const noexcept { return model_; }

  /// The first chunk: `delta: {role: "assistant", content: ""}`.
  void role(std::string& out, int choice = 0);
  void content(std::string& out, std::string_view text, int choice = 0);
  void content(std::string& out, JsonLiteral text, int choice = 0);
  /// Thinking text, as `delta.reasoning_content` (the field DeepSeek and LiteLLM use).
  void reasoning(std::string& out, std::string_view text, int choice = 0);
  void reasoning(std::string& out, JsonLiteral text, int choice = 0);
  /// A tool call begins: its index among this answer's calls, id and function name (the
  /// arguments follow in tool_arguments).
  void tool_start(std::string& out, int tool_index, std::string_view id, std::string_view name,
                  int choice = 0);
  void tool_arguments(std::string& out, int tool_index, std::string_view fragment,
                      int choice = 0);
  void tool_arguments(std::string& out, int tool_index, JsonLiteral fragment, int choice = 0);
  void finish(std::string& out, std::string_view finish_reason, int choice = 0);
  /// The usage-only chunk (`choices: []`) OpenAI sends when include_usage is set.
  void usage(std::string& out, const pricing::TokenUsage& u);
  static void done(std::string& out) { out += "data: [DONE]\n\n"; }

 private:
  void open(std::string& out, int choice);
  void close(std::string& out);
  /// `data: {"id":…,"model":…` up to the choices, the same in every chunk: written once.
  void make_prefix();
  /// A `delta: {field: text}` chunk; `literal`: `text` is already a JSON string literal.
  void text_delta(std::string& out, std::string_view field, std::string_view text, bool literal,
                  int choice);
  void arguments(std::string& out, int tool_index, std::string_view fragment, bool literal,
                 int choice);

  std::string id_;
  std::string model_;
  std::int64_t created_;
  std::string prefix_;
};

}  // namespace llmgw::providers
