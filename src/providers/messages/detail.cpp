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

void append_json(std::string& out, const boost::json::value& v) {
  switch (v.kind()) {
    case boost::json::kind::object: {
      out += '{';
      bool first = true;
      for (const auto& member : v.get_object()) {
        if (!first) {
          out += ',';
        }
        first = false;
        core::append_json_string(out, member.key());
        out += ':';
        append_json(out, member.value());
      }
      out += '}';
      break;
    }
    case boost::json::kind::array: {
      out += '[';
      bool first = true;
      for (const auto& element : v.get_array()) {
        if (!first) {
          out += ',';
        }
        first = false;
        append_json(out, element);
      }
      out += ']';
      break;
    }
    case boost::json::kind::string: core::append_json_string(out, v.get_string()); break;
    case boost::json::kind::int64: out += std::to_string(v.get_int64()); break;
    case boost::json::kind::uint64: out += std::to_string(v.get_uint64()); break;
    case boost::json::kind::double_: {
      // Shortest round-trip form ("0.25", not Boost's "2.5E-1"); a parsed number is finite.
      std::array<char, 32> buf{};
      const auto r = std::to_chars(buf.data(), buf.data() + buf.size(), v.get_double());
      out.append(buf.data(), r.ptr);
      break;
    }
    case boost::json::kind::bool_: out += v.get_bool() ? "true" : "false"; break;
    case boost::json::kind::null: out += "null"; break;
  }
}

std::string to_json(const boost::json::value& v) {
  std::string out;
  append_json(out, v);
  return out;
}

}  // namespace messages_detail

}  // namespace llmgw::providers
