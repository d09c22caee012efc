#pragma once
/// ConverseStream's answer (AWS event stream frames, event_stream.hpp) as an OpenAI
/// chat.completion.chunk stream. Event frames (`:message-type` event) by `:event-type`:
///   messageStart                  → the role chunk
///   contentBlockStart (toolUse)   → a tool call's first chunk (id, name)
///   contentBlockDelta             → content, tool arguments or reasoning_content chunks
///   messageStop                   → the finish chunk (stopReason mapped)
///   metadata                      → the usage (a usage chunk if the client asked for one)
/// [DONE] follows once both messageStop and metadata arrived. Event types not listed
/// (contentBlockStop, ones a newer Bedrock adds) pass nothing on. An exception frame
/// (throttlingException, modelStreamErrorException, ...) or an error frame ends the client's
/// stream with an error event of the mapped type; a frame that cannot be read (bad CRC, bad
/// lengths, garbage, an event whose JSON is broken) ends it with an "upstream_error" event.
/// Nothing is read after an error.

#include "providers/adapter.hpp"
#include "providers/bedrock/event_stream.hpp"
#include "providers/bedrock/redactor.hpp"
#include "providers/stream_util.hpp"

#include <memory>
#include <utility>
#include <vector>

namespace llmgw::providers::bedrock {

/// The OpenAI error type and the status of an in-stream exception (`:exception-type`, the
/// lower-camel member of ConverseStreamOutput: throttlingException → rate_limit_error, 429).
std::pair<std::string, unsigned> stream_exception_type(std::string_view exception_type);

class ConverseStreamTranslator final : public StreamTranslator {
 public:
  ConverseStreamTranslator(const CallInput& in, std::shared_ptr<const Redactor> redactor);

  void feed(std::string& in, std::string& out) override;
  void finish(std::string& in, std::string& out, bool complete) override;

 private:
  void on_message(const EventMessage& m, std::string& out);
  /// False if the event's payload cannot be read.
  bool on_event(std::string_view type, std::string_view payload, std::string& out);
  void fail(std::string_view type, std::string_view message, unsigned status, std::string& out);
  void unreadable(std::string_view why, std::string& out);
  /// A contentBlockDelta carrying text, translated; false for any other (the caller reads it
  /// as a document).
  bool text_delta(std::string_view payload, std::string& out);
  void role(std::string& out);
  void maybe_done(std::string& out);
  /// The OpenAI tool index of content block `block`; -1 if it is no tool call.
  [[nodiscard]] int tool_index(std::int64_t block) const noexcept;

  Format format_;
  bool client_wants_usage_;
  ChunkWriter writer_;
  EventStreamDecoder decoder_;
  std::vector<EventMessage> messages_;
  std::shared_ptr<const Redactor> redactor_;
  std::vector<std::pair<std::int64_t, int>> tools_;  ///< content block index → tool index
  bool role_sent_ = false;
  bool stopped_ = false;   ///< messageStop seen
  bool metadata_ = false;  ///< metadata seen
  bool closed_ = false;    ///< [DONE] or an error event sent: nothing more passes
};

}  // namespace llmgw::providers::bedrock
