// The whole answer: an OpenAI chat completion → an Anthropic Message.

#include "providers/messages/detail.hpp"
#include "providers/messages/messages.hpp"

#include "core/json.hpp"

#include <boost/json/monotonic_resource.hpp>
#include <boost/json/parse.hpp>
#include <boost/json/value.hpp>

namespace llmgw::providers {

namespace {

namespace json = boost::json;
using namespace messages_detail;

/// The text of a message's `content`: a string, or the text parts of an array.
std::string content_text(const json::value* content) {
  std::string text;
  if (content == nullptr) {
    return text;
  }
  if (const json::string* s = content->if_string()) {
    text = *s;
  } else if (const json::array* parts = content->if_array()) {
    for (const json::value& p : *parts) {
      if (const json::object* po = p.if_object()) {
        text += string_of(*po, "text");
      }
    }
  }
  return text;
}

void append_text_block(std::string& out, std::string_view type, std::string_view text,
                       bool& first) {
  out += first ? "" : ",";
  first = false;
  out += R"({"type":)";
  core::append_json_string(out, type);
  out += R"(,")";
  out += type;
  out += R"(":)";
  core::append_json_string(out, text);
  if (type == "thinking") {
    out += R"(,"signature":"")";  // OpenAI-family providers sign nothing
  }
  out += '}';
}

}  // namespace

bool chat_to_messages_answer(std::string_view openai_answer, std::string_view model,
                             std::string& out) {
  json::monotonic_resource mr;
  boost::system::error_code ec;
  json::parse_options opt;
  opt.max_depth = 64;
  const json::value doc = json::parse(openai_answer, ec, &mr, opt);
  const json::object* root = ec ? nullptr : doc.if_object();
  const json::value* choices = root != nullptr ? root->if_contains("choices") : nullptr;
  if (choices == nullptr || !choices->is_array() || choices->get_array().empty()) {
    return false;
  }
  const json::object* choice = choices->get_array().front().if_object();
  const json::value* mv = choice != nullptr ? choice->if_contains("message") : nullptr;
  const json::object* message = mv != nullptr ? mv->if_object() : nullptr;
  if (message == nullptr) {
    return false;
  }
  const std::string id = message_id(string_of(*root, "id"));

  out.clear();
  out += R"({"id":)";
  core::append_json_string(out, id);
  out += R"(,"type":"message","role":"assistant","model":)";
  core::append_json_string(out, model);
  out += R"(,"content":[)";
  bool first = true;
  std::string_view reasoning = string_of(*message, "reasoning_content");
  if (reasoning.empty()) {
    reasoning = string_of(*message, "reasoning");  // OpenRouter's, vLLM's name
  }
  if (!reasoning.empty()) {
    append_text_block(out, "thinking", reasoning, first);
  }
  const std::string text = content_text(message->if_contains("content"));
  const std::string_view refusal = string_of(*message, "refusal");
  if (!text.empty()) {
    append_text_block(out, "text", text, first);
  } else if (!refusal.empty()) {
    append_text_block(out, "text", refusal, first);
  }
  std::int64_t index = 0;
  if (const json::value* tc = message->if_contains("tool_calls"); tc != nullptr && tc->is_array()) {
    for (const json::value& call : tc->get_array()) {
      const json::object* c = call.if_object();
      const json::value* fv = c != nullptr ? c->if_contains("function") : nullptr;
      const json::object* fn = fv != nullptr ? fv->if_object() : nullptr;
      if (fn == nullptr) {
        return false;
      }
      std::string_view call_id = string_of(*c, "id");
      out += first ? "" : ",";
      first = false;
      out += R"({"type":"tool_use","id":)";
      core::append_json_string(out, call_id.empty() ? tool_id(id, index) : std::string(call_id));
      out += R"(,"name":)";
      core::append_json_string(out, string_of(*fn, "name"));
      out += R"(,"input":)";
      // Arguments that are not a JSON object (cut by max_tokens, or invented by the model)
      // become {}: the tool then reports what is missing to the model.
      const std::string_view text = string_of(*fn, "arguments");
      boost::system::error_code aec;
      const json::value args = json::parse(text, aec, &mr, opt);
      out += !aec && args.is_object() ? text : std::string_view("{}");  // the model's own bytes
      out += '}';
      ++index;
    }
  }
  out += R"(],"stop_reason":)";
  std::string_view finish = string_of(*choice, "finish_reason");
  if (finish.empty() && index > 0) {
    finish = "tool_calls";
  }
  core::append_json_string(out, text.empty() && !refusal.empty() && index == 0
                                    ? std::string_view("refusal")
                                    : stop_reason(finish));
  out += R"(,"stop_sequence":null,"usage":)";
  pricing::TokenUsage usage;
  if (const json::value* u = root->if_contains("usage"); u != nullptr && u->is_object()) {
    pricing::normalize_openai(to_json(*u), usage);
  }
  append_usage(out, usage);
  out += '}';
  return true;
}

}  // namespace llmgw::providers
