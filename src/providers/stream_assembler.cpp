#include "providers/stream_assembler.hpp"

#include "providers/stream_util.hpp"

#include <boost/json.hpp>

#include <map>

namespace llmgw::providers {

namespace json = boost::json;

namespace {

struct ToolCall {
  json::value id;
  json::value name;
  std::string arguments;
};

struct Choice {
  std::string content;
  bool has_content = false;
  std::string reasoning;
  std::string refusal;
  bool has_refusal = false;
  std::map<std::int64_t, ToolCall> tools;
  json::value finish_reason;
};

struct Block {
  json::object start;  ///< content_block_start's block
  std::string text;    ///< text, thinking, or a tool's input JSON
  std::string signature;
};

const json::value* member(const json::value& v, std::string_view name) {
  const json::object* o = v.if_object();
  return o != nullptr ? o->if_contains(name) : nullptr;
}

std::string_view string_of(const json::value* v) {
  if (v == nullptr || !v->is_string()) {
    return {};
  }
  return v->get_string();
}

}  // namespace

struct StreamAssembler::State {
  Format format;
  std::size_t max_text;
  std::size_t text_bytes = 0;
  std::string pending;
  bool any = false;
  json::value error;
  // OpenAI chat
  json::object head;  ///< id, created, model, system_fingerprint
  std::map<std::int64_t, Choice> choices;
  json::value usage;
  // Anthropic Messages
  json::object message;
  std::map<std::int64_t, Block> blocks;
  json::object delta;  ///< message_delta's stop_reason and stop_sequence
  json::object message_usage;

  /// Appends up to the text budget.
  void add(std::string& to, std::string_view s) {
    const std::size_t room = max_text > text_bytes ? max_text - text_bytes : 0;
    const std::size_t n = std::min(room, s.size());
    to.append(s.data(), n);
    text_bytes += n;
  }

  void openai_event(const json::value& ev) {
    if (const json::value* e = member(ev, "error")) {
      error = *e;
      return;
    }
    for (std::string_view k : {"id", "created", "model", "system_fingerprint"}) {
      if (const json::value* v = member(ev, k); v != nullptr && !head.contains(k)) {
        head[k] = *v;
      }
    }
    if (const json::value* u = member(ev, "usage"); u != nullptr && u->is_object()) {
      usage = *u;
    }
    const json::value* cs = member(ev, "choices");
    if (cs == nullptr || !cs->is_array()) {
      return;
    }
    for (const json::value& c : cs->get_array()) {
      const json::value* index = member(c, "index");
      Choice& ch = choices[index != nullptr && index->is_int64() ? index->get_int64() : 0];
      if (const json::value* f = member(c, "finish_reason"); f != nullptr && !f->is_null()) {
        ch.finish_reason = *f;
      }
      const json::value* d = member(c, "delta");
      if (d == nullptr) {
        continue;
      }
      if (const json::value* t = member(*d, "content"); t != nullptr && t->is_string()) {
        ch.has_content = true;
        add(ch.content, t->get_string());
      }
      add(ch.reasoning, string_of(member(*d, "reasoning_content")));
      if (const json::value* r = member(*d, "refusal"); r != nullptr && r->is_string()) {
        ch.has_refusal = true;
        add(ch.refusal, r->get_string());
      }
      const json::value* tcs = member(*d, "tool_calls");
      if (tcs == nullptr || !tcs->is_array()) {
        continue;
      }
      for (const json::value& tc : tcs->get_array()) {
        const json::value* ti = member(tc, "index");
        ToolCall& call = ch.tools[ti != nullptr && ti->is_int64() ? ti->get_int64() : 0];
        if (const json::value* id = member(tc, "id"); id != nullptr && id->is_string()) {
          call.id = *id;
        }
        if (const json::value* fn = member(tc, "function")) {
          if (const json::value* n = member(*fn, "name"); n != nullptr && n->is_string()) {
            call.name = *n;
          }
          add(call.arguments, string_of(member(*fn, "arguments")));
        }
      }
    }
  }

  void messages_event(const json::value& ev) {
    const std::string_view type = string_of(member(ev, "type"));
    const json::value* index = member(ev, "index");
    const std::int64_t at = index != nullptr && index->is_int64() ? index->get_int64() : 0;
    if (type == "message_start") {
      if (const json::value* m = member(ev, "message"); m != nullptr && m->is_object()) {
        message = m->get_object();
        if (const json::value* u = message.if_contains("usage"); u != nullptr && u->is_object()) {
          message_usage = u->get_object();
        }
      }
    } else if (type == "content_block_start") {
      if (const json::value* b = member(ev, "content_block"); b != nullptr && b->is_object()) {
        blocks[at].start = b->get_object();
      }
    } else if (type == "content_block_delta") {
      const json::value* d = member(ev, "delta");
      Block& b = blocks[at];
      const std::string_view kind = d != nullptr ? string_of(member(*d, "type")) : "";
      if (kind == "text_delta") {
        add(b.text, string_of(member(*d, "text")));
      } else if (kind == "input_json_delta") {
        add(b.text, string_of(member(*d, "partial_json")));
      } else if (kind == "thinking_delta") {
        add(b.text, string_of(member(*d, "thinking")));
      } else if (kind == "signature_delta") {
        b.signature = string_of(member(*d, "signature"));
      }
    } else if (type == "message_delta") {
      if (const json::value* d = member(ev, "delta"); d != nullptr && d->is_object()) {
        for (const auto& [k, v] : d->get_object()) {
          delta[k] = v;
        }
      }
      if (const json::value* u = member(ev, "usage"); u != nullptr && u->is_object()) {
        for (const auto& [k, v] : u->get_object()) {
          message_usage[k] = v;
        }
      }
    } else if (type == "error") {
      if (const json::value* e = member(ev, "error")) {
        error = *e;
      }
    }
  }

  json::value openai_result() {
    json::object out;
    out["id"] = head.contains("id") ? head["id"] : json::value(nullptr);
    out["object"] = "chat.completion";
    for (std::string_view k : {"created", "model", "system_fingerprint"}) {
      if (head.contains(k)) {
        out[k] = head[k];
      }
    }
    json::array cs;
    for (auto& [i, ch] : choices) {
      json::object msg;
      msg["role"] = "assistant";
      msg["content"] = ch.has_content || ch.tools.empty() ? json::value(ch.content)
                                                          : json::value(nullptr);
      if (!ch.reasoning.empty()) {
        msg["reasoning_content"] = ch.reasoning;
      }
      if (ch.has_refusal) {
        msg["refusal"] = ch.refusal;
      }
      if (!ch.tools.empty()) {
        json::array calls;
        for (auto& [ti, t] : ch.tools) {
          calls.push_back(json::object{
              {"id", t.id},
              {"type", "function"},
              {"function", json::object{{"name", t.name}, {"arguments", t.arguments}}}});
        }
        msg["tool_calls"] = std::move(calls);
      }
      cs.push_back(json::object{
          {"index", i}, {"message", std::move(msg)}, {"finish_reason", ch.finish_reason}});
    }
    out["choices"] = std::move(cs);
    if (!usage.is_null()) {
      out["usage"] = usage;
    }
    return out;
  }

  json::value messages_result() {
    json::object out = message;
    json::array content;
    for (auto& [i, b] : blocks) {
      json::object block = b.start;
      const std::string_view type = string_of(block.if_contains("type"));
      if (type == "text") {
        block["text"] = b.text;
      } else if (type == "thinking") {
        block["thinking"] = b.text;
        if (!b.signature.empty()) {
          block["signature"] = b.signature;
        }
      } else if (type == "tool_use" || type == "server_tool_use") {
        // The input as the client will parse it; a cut or broken one stays a string.
        boost::system::error_code ec;
        json::value input = json::parse(b.text, ec);
        block["input"] = !ec ? std::move(input)
                             : (b.text.empty() ? json::value(json::object{}) : json::value(b.text));
      }
      content.push_back(std::move(block));
    }
    out["content"] = std::move(content);
    for (const auto& [k, v] : delta) {
      out[k] = v;
    }
    if (!message_usage.empty()) {
      out["usage"] = message_usage;
    }
    return out;
  }
};

StreamAssembler::StreamAssembler(Format format, std::size_t max_text_bytes)
    : s_(std::make_unique<State>()) {
  s_->format = format;
  s_->max_text = max_text_bytes;
}

StreamAssembler::~StreamAssembler() = default;

void StreamAssembler::feed(std::string_view bytes) {
  State& s = *s_;
  s.pending.append(bytes);
  std::string_view in = s.pending;
  SseEvent ev;
  while (const std::size_t n = next_sse_event(in, ev)) {
    in.remove_prefix(n);
    if (ev.data.empty() || ev.data == "[DONE]") {
      continue;
    }
    boost::system::error_code ec;
    const json::value v = json::parse(ev.data, ec);
    if (ec || !v.is_object()) {
      continue;
    }
    s.any = true;
    if (s.format == Format::AnthropicMessages) {
      s.messages_event(v);
    } else {
      s.openai_event(v);
    }
  }
  s.pending.erase(0, s.pending.size() - in.size());
}

std::string StreamAssembler::finish() {
  State& s = *s_;
  if (!s.any) {
    return {};
  }
  json::value out = s.format == Format::AnthropicMessages ? s.messages_result() : s.openai_result();
  if (!s.error.is_null()) {
    out.as_object()["error"] = s.error;
  }
  return json::serialize(out);
}

}  // namespace llmgw::providers
