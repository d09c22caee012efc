#pragma once
/// The `echo` provider: answers locally and deterministically, in OpenAI's wire format, so a
/// fresh install can be tried without a provider account. The reply repeats the last user
/// message; token counts are whitespace-separated words (at least 1 per message).

#include "providers/adapter.hpp"
#include "providers/openai.hpp"

#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace llmgw::providers::echo {

struct ChatReply {
  std::string content;
  std::int64_t prompt_tokens = 0;
  std::int64_t completion_tokens = 0;
};

/// Builds the reply for a chat request body that `inspect_request` accepted.
ChatReply chat_reply(std::string_view body);

/// A `chat.completion` JSON body.
std::string chat_completion_json(const ChatReply& r, std::string_view model,
                                 std::string_view request_id, std::int64_t created);

/// The SSE events of a streamed reply ("data: …\n\n" each, then "data: [DONE]\n\n").
std::vector<std::string> chat_completion_events(const ChatReply& r, std::string_view model,
                                                std::string_view request_id,
                                                std::int64_t created, bool include_usage);

/// The echo provider's stream (chat_completion_events, with usage) as a provider adapter's
/// translator hands it on: passed through as it is, its usage `usage` (the reply's). What
/// ChatToMessagesStream wraps to answer an Anthropic Messages call in Anthropic's stream.
std::unique_ptr<StreamTranslator> chat_stream_translator(const pricing::TokenUsage& usage);

/// An embeddings `list` body: one deterministic unit vector per input (floats, or base64 of
/// little-endian float32 with `encoding_format: base64`), or an empty return with `error`
/// and the offending `param` set.
std::string embeddings_json(std::string_view body, std::string_view model, std::string& error,
                            std::string& param);

}  // namespace llmgw::providers::echo
