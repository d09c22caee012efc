#pragma once
/// What the answer and the stream translations share (providers/messages/).

#include "pricing/usage.hpp"

#include <boost/json/value.hpp>

#include <cstdint>
#include <string>
#include <string_view>

namespace llmgw::providers::messages_detail {

/// An Anthropic message id from an OpenAI completion id ("chatcmpl-abc" → "msg_abc").
std::string message_id(std::string_view openai_id);

/// A tool_use id for a call the provider named no id for: unique within the message.
std::string tool_id(std::string_view message_id, std::int64_t index);

/// Anthropic's stop_reason for an OpenAI finish_reason.
std::string_view stop_reason(std::string_view finish_reason) noexcept;

/// Anthropic's usage object from normalised usage: input_tokens (uncached input),
/// cache_creation_input_tokens, cache_read_input_tokens, output_tokens (reasoning included,
/// as Anthropic counts thinking).
void append_usage(std::string& out, const pricing::TokenUsage& u);

/// `v` as compact JSON (core::append_json: shortest numbers, which the model sees in its
/// tool-call history); "{}" for a value holding a number JSON cannot carry.
std::string to_json(const boost::json::value& v);

/// The string member `key` of `o`; empty if absent or not a string.
inline std::string_view string_of(const boost::json::object& o, std::string_view key) {
  const boost::json::value* v = o.if_contains(key);
  const boost::json::string* s = v != nullptr ? v->if_string() : nullptr;
  return s != nullptr ? std::string_view(*s) : std::string_view();
}

}  // namespace llmgw::providers::messages_detail
