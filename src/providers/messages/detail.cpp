// What the answer and the stream translations share.

#include "providers/messages/detail.hpp"

#include "core/json.hpp"

#include <array>
#include <charconv>

namespace llmgw::providers {

namespace messages_detail {

std::string message_id(std::string_view openai_id) {
  static constexpr std::string_view kChatPrefix = "chatcmpl-";
  if (openai_id.starts_with(kChatPrefix)) {
    openai_id.remove_prefix(kChatPrefix.size());
  }
  if (openai_id.starts_with("msg_")) {
    return std::string(openai_id);
  }
  std::string id = "msg_";
  id += openai_id.empty() ? std::string_view("gateway") : openai_id;
  return id;
}

std::string tool_id(std::string_view message_id, std::int64_t index) {
  std::string id = "toolu_";
  id += message_id.starts_with("msg_") ? message_id.substr(4) : message_id;
  id += '_';
  id += std::to_string(index);
  return id;
}

std::string_view stop_reason(std::string_view finish_reason) noexcept {
  if (finish_reason == "length") {
    return "max_tokens";
  }
  if (finish_reason == "tool_calls" || finish_reason == "function_call") {
    return "tool_use";
  }
  if (finish_reason == "content_filter") {
    return "refusal";
  }
  return "end_turn";  // stop, and anything unknown
}

void append_usage(std::string& out, const pricing::TokenUsage& u) {
  out += R"({"input_tokens":)";
  out += std::to_string(u.input_tokens + u.input_audio_tokens + u.input_image_tokens);
  out += R"(,"cache_creation_input_tokens":)";
  out += std::to_string(u.cache_write_5m_tokens + u.cache_write_1h_tokens);
  out += R"(,"cache_read_input_tokens":)";
  out += std::to_string(u.cache_read_tokens);
  out += R"(,"output_tokens":)";
  out += std::to_string(u.completion_total());
  out += '}';
}

std::string to_json(const boost::json::value& v) {
  std::string out;
  return core::append_json(out, v) ? out : std::string("{}");
}

}  // namespace messages_detail

}  // namespace llmgw::providers
