// The streamed answer: OpenAI chat.completion.chunk events → Anthropic's message events.

#include "providers/messages/detail.hpp"
#include "providers/messages/messages.hpp"

#include "core/json.hpp"

#include <boost/json/monotonic_resource.hpp>
#include <boost/json/parse.hpp>
#include <boost/json/value.hpp>

#include <algorithm>
#include <array>

namespace llmgw::providers {

namespace {

namespace json = boost::json;
using namespace messages_detail;

/// A chunk is parsed into this much stack before the parser allocates: most chunks fit.
constexpr std::size_t kChunkArena = 4096;

/// One Anthropic event, framed as the Messages API frames it.
void append_event(std::string& out, std::string_view type, std::string_view data) {
  out += "event: ";
  out += type;
  out += "\ndata: ";
  out += data;
  out += "\n\n";
}

/// `{"type":"content_block_delta","index":N,"delta":{"type":<kind>,"<field>":<text>}}`.
void append_delta(std::string& out, int index, std::string_view kind, std::string_view field,
                  std::string_view text) {
  out += "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":";
  out += std::to_string(index);
  out += R"(,"delta":{"type":")";
  out += kind;
  out += R"(",")";
  out += field;
  out += R"(":)";
  core::append_json_string(out, text);
  out += "}}\n\n";
}

/// The status that picks Anthropic's error type for an in-stream error (0: by type alone).
unsigned error_status(std::string_view openai_type, std::string_view code) noexcept {
  if (code == "overloaded" || openai_type == "overloaded_error") {
    return 529;
  }
  return 0;
}

}  // namespace

ChatToMessagesStream::ChatToMessagesStream(std::unique_ptr<StreamTranslator> inner,
                                           std::string_view model)
    : inner_(std::move(inner)), client_model_(model) {}

void ChatToMessagesStream::feed(std::string& in, std::string& out) {
  inner_->feed(in, scratch_);
  translate(out);
  sync();
}

void ChatToMessagesStream::finish(std::string& in, std::string& out, bool complete) {
  inner_->finish(in, scratch_, complete);
  translate(out);
  scratch_.clear();  // an incomplete last event: the stream did not end properly anyway
  sync();
  if (failed_ || stopped_ || !complete || !inner_->ended() || !inner_->error().empty()) {
    return;
  }
  if (!started_) {
    start_message({}, out);
  }
  if (!delta_sent_) {
    message_delta(out);
  }
  append_event(out, "message_stop", R"({"type":"message_stop"})");
  stopped_ = true;
}

void ChatToMessagesStream::sync() {
  usage_ = inner_->usage();
  events_ = inner_->events();
  ended_ = inner_->ended();
  model_ = inner_->model();
  error_ = inner_->error().empty() ? own_error_ : inner_->error();
}

void ChatToMessagesStream::translate(std::string& out) {
  std::size_t pos = 0;
  SseEvent ev;
  while (pos < scratch_.size()) {
    const std::size_t n = next_sse_event(std::string_view(scratch_).substr(pos), ev);
    if (n == 0) {
      break;
    }
    pos += n;
    if (!failed_ && !stopped_) {
      event(ev.data, out);
    }
  }
  scratch_.erase(0, pos);
}

void ChatToMessagesStream::event(std::string_view data, std::string& out) {
  while (!data.empty() && (data.back() == ' ' || data.back() == '\r' || data.back() == '\n')) {
    data.remove_suffix(1);
  }
  if (data.empty()) {
    return;  // a keep-alive
  }
  if (data == "[DONE]") {
    if (!started_) {
      start_message({}, out);
    }
    if (!delta_sent_) {
      message_delta(out);
    }
    return;
  }
  std::array<unsigned char, kChunkArena> arena;
  json::monotonic_resource mr(arena.data(), arena.size());
  boost::system::error_code ec;
  const json::value v = json::parse(data, ec, &mr);
  const json::object* c = ec ? nullptr : v.if_object();
  if (c == nullptr) {
    return fail("upstream_error", "The provider sent a stream event that could not be read.", out);
  }
  if (const json::value* e = c->if_contains("error"); e != nullptr && !e->is_null()) {
    const json::object* eo = e->if_object();
    std::string_view type;
    std::string_view message;
    std::string_view code;
    if (eo != nullptr) {
      type = string_of(*eo, "type");
      message = string_of(*eo, "message");
      code = string_of(*eo, "code");
    } else if (const json::string* s = e->if_string()) {
      message = *s;  // {"error": "text"}
    }
    if (type.empty()) {
      type = "upstream_error";
    }
    if (message.empty()) {
      message = "The provider reported an error in the stream.";
    }
    out += render_stream_error(Format::AnthropicMessages, type, message, error_status(type, code));
    failed_ = true;
    own_error_ = type;
    return;
  }
  chunk(*c, out);
}

void ChatToMessagesStream::chunk(const json::object& c, std::string& out) {
  const json::value* cv = c.if_contains("choices");
  const json::array* choices = cv != nullptr ? cv->if_array() : nullptr;
  const json::value* uv = c.if_contains("usage");
  const json::object* usage = uv != nullptr ? uv->if_object() : nullptr;
  if (!started_) {
    if ((choices == nullptr || choices->empty()) && usage == nullptr) {
      return;  // Azure's prompt_filter_results chunk: no id yet, nothing to say
    }
    start_message(string_of(c, "id"), out);
  }
  if (choices != nullptr) {
    for (const json::value& choice : *choices) {
      const json::object* ch = choice.if_object();
      if (ch == nullptr) {
        continue;
      }
      // One answer was asked for: another choice is not this message's.
      if (const json::value* i = ch->if_contains("index");
          i != nullptr && i->is_int64() && i->get_int64() != 0) {
        continue;
      }
      const json::value* dv = ch->if_contains("delta");
      if (const json::object* delta = dv != nullptr ? dv->if_object() : nullptr) {
        std::string_view reasoning = string_of(*delta, "reasoning_content");
        if (reasoning.empty()) {
          reasoning = string_of(*delta, "reasoning");
        }
        if (!reasoning.empty()) {
          open_block(Block::Thinking, out);
          append_delta(out, index_, "thinking_delta", "thinking", reasoning);
        }
        if (const std::string_view text = string_of(*delta, "content"); !text.empty()) {
          open_block(Block::Text, out);
          append_delta(out, index_, "text_delta", "text", text);
        }
        if (const json::value* tc = delta->if_contains("tool_calls");
            tc != nullptr && tc->is_array()) {
          for (const json::value& call : tc->get_array()) {
            if (const json::object* co = call.if_object()) {
              tool_delta(*co, out);
            }
            if (failed_) {
              return;
            }
          }
        }
      }
      if (const std::string_view finish = string_of(*ch, "finish_reason"); !finish.empty()) {
        stop_reason_ = stop_reason(finish);
        close_block(out);
      }
    }
  }
  if (usage != nullptr) {
    usage_seen_ = pricing::normalize_openai(to_json(*usage), chunk_usage_);
  }
  if (!stop_reason_.empty() && usage_seen_ && !delta_sent_) {
    message_delta(out);
  }
}

void ChatToMessagesStream::tool_delta(const json::object& call, std::string& out) {
  const std::string_view id = string_of(call, "id");
  std::int64_t index = 0;
  if (const json::value* i = call.if_contains("index"); i != nullptr && i->is_int64()) {
    index = i->get_int64();
  } else if (!id.empty() || tools_.empty()) {
    index = static_cast<std::int64_t>(tools_.size());  // no index: a new id is a new call
  } else {
    index = tools_.back();
  }
  const json::value* fv = call.if_contains("function");
  const json::object* fn = fv != nullptr ? fv->if_object() : nullptr;
  const auto known = std::find(tools_.begin(), tools_.end(), index);
  if (known == tools_.end()) {
    const std::string_view name = fn != nullptr ? string_of(*fn, "name") : std::string_view();
    open_tool(id.empty() ? tool_id(id_, index) : std::string(id), name, out);
    tools_.push_back(index);
  } else if (known + 1 != tools_.end() || open_ != Block::Tool) {
    // Anthropic streams one block at a time: a block cannot be resumed once closed.
    return fail("upstream_error",
                "The provider's stream resumed a tool call after another block began; the "
                "Messages format cannot carry it.",
                out);
  }
  if (fn != nullptr) {
    if (const std::string_view args = string_of(*fn, "arguments"); !args.empty()) {
      append_delta(out, index_, "input_json_delta", "partial_json", args);
    }
  }
}

void ChatToMessagesStream::fail(std::string_view openai_type, std::string_view message,
                                std::string& out) {
  out += render_stream_error(Format::AnthropicMessages, openai_type, message, 502);
  failed_ = true;
  own_error_ = openai_type;
}

void ChatToMessagesStream::start_message(std::string_view openai_id, std::string& out) {
  id_ = message_id(openai_id);
  out += "event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"id\":";
  core::append_json_string(out, id_);
  out += R"(,"type":"message","role":"assistant","model":)";
  core::append_json_string(out, client_model_);
  // OpenAI reports usage only at the end: message_delta carries the real counts.
  out += R"(,"content":[],"stop_reason":null,"stop_sequence":null,"usage":{"input_tokens":0,)"
         R"("cache_creation_input_tokens":0,"cache_read_input_tokens":0,"output_tokens":0}}})";
  out += "\n\n";
  append_event(out, "ping", R"({"type":"ping"})");
  started_ = true;
}

void ChatToMessagesStream::open_block(Block kind, std::string& out) {
  if (open_ == kind) {
    return;
  }
  close_block(out);
  ++index_;
  out += "event: content_block_start\ndata: {\"type\":\"content_block_start\",\"index\":";
  out += std::to_string(index_);
  out += kind == Block::Thinking
             ? R"(,"content_block":{"type":"thinking","thinking":"","signature":""}})"
             : R"(,"content_block":{"type":"text","text":""}})";
  out += "\n\n";
  open_ = kind;
}

void ChatToMessagesStream::open_tool(std::string_view id, std::string_view name,
                                     std::string& out) {
  close_block(out);
  ++index_;
  out += "event: content_block_start\ndata: {\"type\":\"content_block_start\",\"index\":";
  out += std::to_string(index_);
  out += R"(,"content_block":{"type":"tool_use","id":)";
  core::append_json_string(out, id);
  out += R"(,"name":)";
  core::append_json_string(out, name);
  out += R"(,"input":{}}})";
  out += "\n\n";
  open_ = Block::Tool;
}

void ChatToMessagesStream::close_block(std::string& out) {
  if (open_ == Block::None) {
    return;
  }
  out += "event: content_block_stop\ndata: {\"type\":\"content_block_stop\",\"index\":";
  out += std::to_string(index_);
  out += "}\n\n";
  open_ = Block::None;
}

void ChatToMessagesStream::message_delta(std::string& out) {
  close_block(out);
  std::string_view reason = stop_reason_;
  if (reason.empty()) {
    reason = tools_.empty() ? "end_turn" : "tool_use";
  }
  out += "event: message_delta\ndata: {\"type\":\"message_delta\",\"delta\":{\"stop_reason\":";
  core::append_json_string(out, reason);
  out += R"(,"stop_sequence":null},"usage":)";
  append_usage(out, usage_seen_ ? chunk_usage_ : inner_->usage());
  out += "}\n\n";
  delta_sent_ = true;
}

}  // namespace llmgw::providers
