#pragma once
/// Anthropic's Messages API (`POST /v1/messages`) in front of providers that take OpenAI chat:
/// the request is checked and read for limits and pricing (inspect_messages_request),
/// translated to an OpenAI chat-completions body (messages_to_chat) that the provider's adapter
/// takes as a Format::OpenAIChat call, and the OpenAI-format answer the adapter produces is
/// translated back, whole (chat_to_messages_answer) or streamed (ChatToMessagesStream).
/// A provider whose adapter accepts Format::AnthropicMessages gets the client's body as it is;
/// only inspect_messages_request runs for it.
///
/// What does not carry over (each a documented choice):
///   - `top_k`, `service_tier`, `thinking` and every `cache_control` are dropped: OpenAI chat
///     has no top_k; Anthropic's tiers are not OpenAI's; `reasoning_effort` is refused by the
///     non-reasoning models a Claude client is often routed to, so thinking is not mapped;
///     OpenAI caches prompts by itself. `thinking` and `redacted_thinking` blocks of earlier
///     assistant turns are dropped too (OpenAI takes no reasoning as input).
///   - `max_tokens` stays `max_tokens` (not `max_completion_tokens`): every OpenAI-compatible
///     server takes it; OpenAI's reasoning models need the adapter to rename it.
///   - A `system` of several text blocks becomes one system message, the texts joined by a
///     blank line; the text blocks of an assistant turn are joined by a newline.
///   - A mid-conversation system message (`role: "system"` after the first message; Claude
///     Code sends one to models it does not know) becomes an OpenAI system message in its
///     place, its text blocks joined like the top-level `system`.
///   - A tool's `defer_loading` (Anthropic's tool search) is ignored: the tool is offered like
///     any other, OpenAI having no deferred tools.
///   - `tool_result` blocks become `role: tool` messages placed before the rest of their user
///     turn; `is_error: true` prefixes the text with "Error: " (OpenAI has no error flag);
///     images in a tool result, which a tool message cannot carry, follow in that user turn.
///   - `document` blocks, Files API sources, server tools (web search, ...) and Anthropic-
///     defined tool types are refused with a message naming the block: no faithful
///     translation exists.
///   - Unknown top-level members (beta features) are ignored.
/// In answers: finish_reason stop → end_turn (OpenAI does not say whether a stop sequence
/// matched, so stop_sequence is always null), length → max_tokens, tool_calls → tool_use,
/// content_filter → refusal; a tool call whose arguments are not a JSON object gets
/// `input: {}` (the tool then reports the missing arguments to the model); reasoning_content
/// becomes a thinking block with an empty signature.

#include "providers/adapter.hpp"
#include "providers/openai.hpp"
#include "providers/stream_util.hpp"

#include <boost/json/fwd.hpp>

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace llmgw::providers {

/// Validates an Anthropic Messages request body (strict JSON, the required members and the
/// types of the optional ones; a repeated top-level key is refused) and reads what the
/// gateway needs: model, stream, max_tokens (as max_output_tokens), service_tier; choices is
/// 1. Block contents are checked no further than their `type`: a provider that takes the body
/// as it is validates the rest, and messages_to_chat refuses what it cannot translate.
/// Messages read like Anthropic's: "max_tokens: Field required", param "max_tokens".
std::optional<RequestError> inspect_messages_request(std::string_view body,
                                                     InspectedRequest& out);

/// Validates a token-counting body (`POST /v1/messages/count_tokens`: a Messages body without
/// max_tokens) like inspect_messages_request, max_tokens not required. The count produces no
/// output and is not streamed: out.max_output_tokens is 0 and out.stream false. Members a count
/// does not take (max_tokens, stream, ...) are left to the provider, which refuses them.
std::optional<RequestError> inspect_count_tokens_request(std::string_view body,
                                                         InspectedRequest& out);

/// The adapter of a count_tokens call to a provider whose adapter (`messages_adapter`, not
/// null) takes Format::AnthropicMessages at a `…/messages` route (Anthropic's API): the same
/// request (credential, headers, body with the model renamed) sent to `…/messages/count_tokens`,
/// never streamed. A 2xx answer must be `{"input_tokens": N}` and passes through, its usage
/// reported as zero tokens: counting generates nothing and costs nothing. Errors are mapped by
/// `messages_adapter`. A provider whose Messages route is another (Vertex AI's rawPredict) is
/// refused with a 400 at prepare().
std::shared_ptr<const Adapter> make_count_tokens_adapter(
    std::shared_ptr<const Adapter> messages_adapter);

/// Translates a body that passed inspect_messages_request into an OpenAI chat-completions
/// body for `model` (the provider's model name) into `out`. With `stream`, asks for a stream
/// with its usage (stream_options.include_usage: the gateway always needs usage). Returns a
/// Refusal (nothing sent) for what has no OpenAI form.
std::optional<Refusal> messages_to_chat(std::string_view body, std::string_view model,
                                        bool stream, std::string& out);

/// Translates a whole OpenAI chat completion (what the adapter's translate_answer produced)
/// into an Anthropic Message naming `model` (the model the client asked for). Returns false,
/// `out` unspecified, if `openai_answer` is not a chat completion.
bool chat_to_messages_answer(std::string_view openai_answer, std::string_view model,
                             std::string& out);

/// Turns the OpenAI chunk stream that a provider adapter's translator produces into
/// Anthropic's stream: message_start (usage 0: OpenAI reports usage only at the end), ping,
/// each content block (text, thinking from reasoning_content, one per tool call) with its
/// start, deltas and stop, then message_delta (stop_reason and the whole usage, input tokens
/// included, which the Anthropic SDKs take from it) once the finish reason and the usage have
/// both been seen, or at [DONE]. message_stop is written by finish() only when the provider's
/// stream ended properly. An error event becomes Anthropic's `event: error` and ends the
/// stream, as does an unreadable chunk or a tool call resumed after a later one began (the
/// Messages format streams one block at a time).
/// usage(), events(), ended() and model() are the inner translator's; error() is its error,
/// else the one this translation met.
class ChatToMessagesStream final : public StreamTranslator {
 public:
  /// `inner` (not null): the provider adapter's translator for the call, made for the
  /// translated OpenAI chat call; `model`: the model the client asked for.
  ChatToMessagesStream(std::unique_ptr<StreamTranslator> inner, std::string_view model);

  void feed(std::string& in, std::string& out) override;
  void finish(std::string& in, std::string& out, bool complete) override;

 private:
  enum class Block : std::uint8_t { None, Text, Thinking, Tool };

  void translate(std::string& out);
  void event(std::string_view data, std::string& out);
  void chunk(const boost::json::object& c, std::string& out);
  void tool_delta(const boost::json::object& call, std::string& out);
  void fail(std::string_view openai_type, std::string_view message, std::string& out);
  void start_message(std::string_view openai_id, std::string& out);
  void open_block(Block kind, std::string& out);
  void open_tool(std::string_view id, std::string_view name, std::string& out);
  void close_block(std::string& out);
  void message_delta(std::string& out);
  void sync();

  std::unique_ptr<StreamTranslator> inner_;
  std::string client_model_;
  std::string scratch_;  ///< the inner translator's output not yet translated
  std::string id_;       ///< msg_… once message_start is out
  bool started_ = false;
  bool failed_ = false;
  bool delta_sent_ = false;
  bool stopped_ = false;
  bool usage_seen_ = false;
  pricing::TokenUsage chunk_usage_;
  std::string stop_reason_;  ///< Anthropic's, once the finish reason is seen
  Block open_ = Block::None;
  int index_ = -1;  ///< the open (or last) block's index
  /// OpenAI tool-call index of each tool block started, in order; the last one may be open.
  std::vector<std::int64_t> tools_;
  std::string own_error_;
};

}  // namespace llmgw::providers
