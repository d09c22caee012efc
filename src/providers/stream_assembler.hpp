#pragma once
/// A streamed answer as one message, for the audit log: fed the Server-Sent Events the client
/// received (OpenAI `chat.completion.chunk` events, or Anthropic Messages events on
/// /v1/messages), it builds the answer a non-streamed call would have had — a
/// `chat.completion` (content, reasoning, tool calls and finish reason per choice, usage) or a
/// Messages `message` (content blocks, stop reason, usage) — rather than keeping raw chunks.
/// An error event the stream carried is kept as the message's `error`.
///
/// Only the audit log's full and redacted modes feed one; it parses every event, so it costs
/// what the stream's JSON costs to parse (about 1 µs per event). Never throws on what it is
/// fed: events it cannot read are skipped.

#include "providers/adapter.hpp"

#include <memory>
#include <string>
#include <string_view>

namespace llmgw::providers {

class StreamAssembler {
 public:
  /// `format`: the client's (OpenAIChat or AnthropicMessages). Text beyond `max_text_bytes`
  /// in all is dropped (the audit record cuts its bodies anyway).
  explicit StreamAssembler(Format format, std::size_t max_text_bytes = 1u << 20);
  ~StreamAssembler();
  StreamAssembler(const StreamAssembler&) = delete;
  StreamAssembler& operator=(const StreamAssembler&) = delete;

  /// Bytes sent to the client, split anywhere.
  void feed(std::string_view bytes);
  /// The assembled message as JSON; empty when the stream held no event it could read.
  [[nodiscard]] std::string finish();

 private:
  struct State;
  std::unique_ptr<State> s_;
};

}  // namespace llmgw::providers
