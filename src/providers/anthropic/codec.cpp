#include "providers/anthropic/codec.hpp"

#include "core/json.hpp"
#include "providers/stream_util.hpp"

#include <boost/json/monotonic_resource.hpp>
#include <boost/json/parse.hpp>
#include <boost/json/value.hpp>

#include <algorithm>
#include <array>
#include <charconv>
#include <cmath>
#include <utility>
#include <vector>

namespace llmgw::providers::anthropic {

namespace {

namespace json = boost::json;
using core::JsonField;
using core::JsonKind;

/// Nesting accepted in a client's body (inspect_request's limit) and in a provider's answer
/// (tool inputs nest as deep as the tool's schema).
constexpr std::size_t kRequestMaxDepth = 64;
constexpr std::size_t kAnswerMaxDepth = 128;
/// A stream event longer than this is not Anthropic's: the stream is refused, not buffered.
constexpr std::size_t kMaxEventBytes = 4u << 20;
/// Thinking budgets for OpenAI's reasoning_effort (Anthropic's minimum budget is 1024).
constexpr std::int64_t kBudgetLow = 1024;
constexpr std::int64_t kBudgetMedium = 2048;
constexpr std::int64_t kBudgetHigh = 4096;

constexpr std::string_view kProvider = "provider type anthropic";
/// The stack part of a call's JSON arena; larger documents continue on the heap.
constexpr std::size_t kArenaBytes = 8192;

// ---------------------------------------------------------------------------------------------
// JSON helpers

/// Parses into `sp`'s memory: the request and answer documents live for one call, so they are
/// parsed into a monotonic arena that starts on the stack (one free at the end instead of one
/// per string, array and object).
std::optional<json::value> parse(std::string_view text, std::size_t max_depth,
                                 json::storage_ptr sp = {}) {
  json::parse_options opt;
  opt.max_depth = max_depth;
  boost::system::error_code ec;
  json::value v = json::parse(text, ec, std::move(sp), opt);
  if (ec) {
    return std::nullopt;
  }
  return v;
}

const json::value* get(const json::object& o, std::string_view key) {
  const json::value* v = o.if_contains(key);
  return v != nullptr && !v->is_null() ? v : nullptr;
}

bool is_string(const json::value& v, std::string_view s) {
  return v.is_string() && v.get_string() == s;
}

std::string_view get_string(const json::object& o, std::string_view key) {
  const json::value* v = get(o, key);
  return v != nullptr && v->is_string() ? std::string_view(v->get_string()) : std::string_view{};
}

/// An integral number (1 and 1.0 alike), or nullopt.
std::optional<std::int64_t> as_int(const json::value& v) {
  if (v.is_int64()) {
    return v.get_int64();
  }
  if (v.is_uint64()) {
    return v.get_uint64() > static_cast<std::uint64_t>(INT64_MAX)
               ? std::nullopt
               : std::optional<std::int64_t>(static_cast<std::int64_t>(v.get_uint64()));
  }
  if (v.is_double()) {
    const double d = v.get_double();
    if (std::isfinite(d) && d == std::floor(d) && std::fabs(d) < 9.0e18) {
      return static_cast<std::int64_t>(d);
    }
  }
  return std::nullopt;
}

/// A top-level member of JSON object text (not validated: the caller has).
JsonField member(std::string_view obj, std::string_view name) {
  const std::array<std::string_view, 1> names{name};
  std::array<JsonField, 1> f;
  if (!core::locate_fields(obj, names, f)) {
    return JsonField{};
  }
  return f[0];
}

std::string member_string(std::string_view obj, std::string_view name) {
  const JsonField f = member(obj, name);
  if (f.kind() != JsonKind::String) {
    return {};
  }
  return core::json_string_value(f.value).value_or(std::string());
}

std::int64_t member_int(std::string_view obj, std::string_view name, std::int64_t fallback) {
  const JsonField f = member(obj, name);
  std::int64_t v = fallback;
  if (f.kind() == JsonKind::Number) {
    std::from_chars(f.value.data(), f.value.data() + f.value.size(), v);
  }
  return v;
}

std::string completion_id(std::string_view request_id) {
  std::string id = "chatcmpl-";
  id += request_id;
  return id;
}

// ---------------------------------------------------------------------------------------------
// Requests: an Anthropic-format call

std::optional<Refusal> splice_request(const CallInput& in, const MessagesOptions& options,
                                      std::string& body) {
  static constexpr std::array<std::string_view, 2> kNames{"model", "anthropic_version"};
  std::array<JsonField, kNames.size()> f;
  std::size_t object_end = 0;
  if (!core::locate_fields(in.body, kNames, f, &object_end)) {
    return Refusal{"The request body must be a JSON object.", ""};
  }
  body.assign(in.body);
  // Sets member `key` to `literal`: in place, or first in the object.
  auto set = [&](const JsonField& field, std::string_view key, const std::string& literal) {
    if (field.present()) {
      body.replace(field.value.data() - in.body.data(), field.value.size(), literal);
      return;
    }
    const std::size_t open = in.body.find('{');
    const bool empty = in.body.find_first_not_of(" \t\r\n", open + 1) == object_end;
    std::string member;
    core::append_json_string(member, key);
    member += ':';
    member += literal;
    if (!empty) {
      member += ',';
    }
    body.insert(open + 1, member);
  };
  if (options.vertex) {
    std::string version;
    core::append_json_string(
        version, options.anthropic_version.empty() ? kVertexVersion : options.anthropic_version);
    set(f[1], "anthropic_version", version);
    // The URL names the model on Vertex: its member goes (located again after the edit).
    core::erase_field(body, member(body, "model"));
  } else {
    std::string model;
    core::append_json_string(model, in.upstream_model);
    set(f[0], "model", model);
  }
  return std::nullopt;
}

// ---------------------------------------------------------------------------------------------
// Requests: an OpenAI chat call, translated

Refusal refuse(std::string message, std::string param) {
  return Refusal{std::move(message), std::move(param)};
}

std::string unsupported(std::string_view what) {
  std::string m(what);
  m += " is not supported by ";
  m += kProvider;
  m += ".";
  return m;
}

/// Builds the Messages body of an OpenAI chat call.
class ChatRequest {
 public:
  ChatRequest(const CallInput& in, const json::object& src) : in_(in), src_(src) {}

  std::optional<Refusal> build(const MessagesOptions& options, std::string& body) {
    if (auto r = check_unsupported()) {
      return r;
    }
    if (auto r = convert_messages()) {
      return r;
    }
    json::object req;
    if (options.vertex) {
      req["anthropic_version"] =
          options.anthropic_version.empty() ? kVertexVersion : options.anthropic_version;
    } else {
      req["model"] = in_.upstream_model;
    }
    std::int64_t max_tokens = in_.max_output_tokens > 0 ? in_.max_output_tokens : kDefaultMaxTokens;
    bool client_max = false;
    for (std::string_view name : {"max_tokens", "max_completion_tokens"}) {
      if (const json::value* v = get(src_, name)) {
        const auto n = as_int(*v);
        if (!n || *n < 0) {
          return refuse("Invalid '" + std::string(name) + "': expected a non-negative integer.",
                        std::string(name));
        }
        max_tokens = *n;  // max_completion_tokens, read last, wins
        client_max = true;
      }
    }
    std::optional<std::int64_t> budget;
    if (auto r = thinking_budget(budget)) {
      return r;
    }
    if (budget) {
      if (client_max && max_tokens <= *budget) {
        return refuse("reasoning_effort needs a max_tokens above the thinking budget of " +
                          std::to_string(*budget) + " tokens for " + std::string(kProvider) + ".",
                      "reasoning_effort");
      }
      if (!client_max && max_tokens <= *budget) {
        max_tokens = *budget + kDefaultMaxTokens;
      }
    }
    req["max_tokens"] = max_tokens;
    if (!system_.empty()) {
      if (system_.size() == 1 && !system_[0].as_object().contains("cache_control")) {
        req["system"] = system_[0].as_object().at("text");
      } else {
        req["system"] = std::move(system_);
      }
    }
    for (auto& m : messages_) {
      simplify(m.as_object());
    }
    req["messages"] = std::move(messages_);
    if (auto r = stop_sequences(req)) {
      return r;
    }
    for (std::string_view name : {"temperature", "top_p"}) {
      if (const json::value* v = get(src_, name)) {
        if (!v->is_number()) {
          return refuse("Invalid type for '" + std::string(name) + "': expected a number.",
                        std::string(name));
        }
        req[name] = *v;
      }
    }
    if (auto r = tools(req)) {
      return r;
    }
    if (budget) {
      req["thinking"] = json::object{{"type", "enabled"}, {"budget_tokens", *budget}};
    }
    if (const json::value* u = get(src_, "user")) {
      if (!u->is_string()) {
        return refuse("Invalid type for 'user': expected a string.", "user");
      }
      if (!u->get_string().empty()) {
        req["metadata"] = json::object{{"user_id", *u}};
      }
    }
    if (in_.stream) {
      req["stream"] = true;
    }
    body.clear();
    if (!core::append_json(body, req)) {
      return refuse("The request holds a number out of range.", "");
    }
    return std::nullopt;
  }

 private:
  std::optional<Refusal> check_unsupported() const {
    if (const json::value* n = get(src_, "n")) {
      const auto v = as_int(*n);
      if (!v || *v > 1) {
        return refuse(unsupported("n > 1"), "n");
      }
    }
    if (const json::value* v = get(src_, "logprobs");
        v != nullptr && v->is_bool() && v->get_bool()) {
      return refuse(unsupported("logprobs"), "logprobs");
    }
    if (get(src_, "audio") != nullptr) {
      return refuse(unsupported("Audio output"), "audio");
    }
    if (const json::value* m = get(src_, "modalities"); m != nullptr && m->is_array()) {
      for (const auto& x : m->get_array()) {
        if (x.is_string() && x.get_string() == "audio") {
          return refuse(unsupported("Audio output"), "modalities");
        }
      }
    }
    if (get(src_, "functions") != nullptr || get(src_, "function_call") != nullptr) {
      return refuse("'functions' and 'function_call' are deprecated and not supported by " +
                        std::string(kProvider) + "; use 'tools' and 'tool_choice'.",
                    get(src_, "functions") != nullptr ? "functions" : "function_call");
    }
    if (const json::value* rf = get(src_, "response_format")) {
      if (!rf->is_object()) {
        return refuse("Invalid type for 'response_format': expected an object.",
                      "response_format");
      }
      const std::string_view type = get_string(rf->get_object(), "type");
      // json_object: nothing to add (see codec.hpp); json_schema cannot be enforced.
      if (type == "json_schema") {
        return refuse("response_format json_schema is not supported by " +
                          std::string(kProvider) +
                          " (it has no structured output mode); use json_object and describe "
                          "the schema in the prompt, or a tool.",
                      "response_format");
      }
      if (type != "text" && type != "json_object") {
        return refuse("Invalid 'response_format.type': expected 'text', 'json_object' or "
                      "'json_schema'.",
                      "response_format.type");
      }
    }
    return std::nullopt;
  }

  std::optional<Refusal> thinking_budget(std::optional<std::int64_t>& budget) const {
    const json::value* v = get(src_, "reasoning_effort");
    if (v == nullptr) {
      return std::nullopt;
    }
    const std::string_view e = v->is_string() ? std::string_view(v->get_string()) : "";
    if (e == "none") {
      return std::nullopt;
    }
    if (e == "minimal" || e == "low") {
      budget = kBudgetLow;
    } else if (e == "medium") {
      budget = kBudgetMedium;
    } else if (e == "high") {
      budget = kBudgetHigh;
    } else {
      return refuse("Invalid 'reasoning_effort': expected 'none', 'minimal', 'low', 'medium' or "
                    "'high'.",
                    "reasoning_effort");
    }
    return std::nullopt;
  }

  std::optional<Refusal> stop_sequences(json::object& req) const {
    const json::value* stop = get(src_, "stop");
    if (stop == nullptr) {
      return std::nullopt;
    }
    json::array seqs;
    auto add = [&](const json::value& s) -> bool {
      if (!s.is_string()) {
        return false;
      }
      seqs.push_back(s);
      return true;
    };
    if (stop->is_string()) {
      add(*stop);
    } else if (stop->is_array()) {
      for (const auto& s : stop->get_array()) {
        if (!add(s)) {
          return refuse("Invalid type for 'stop': expected a string or an array of strings.",
                        "stop");
        }
      }
    } else {
      return refuse("Invalid type for 'stop': expected a string or an array of strings.", "stop");
    }
    for (const auto& s : seqs) {
      if (s.get_string().find_first_not_of(" \t\r\n") == json::string::npos) {
        return refuse("A stop sequence made only of whitespace is not supported by " +
                          std::string(kProvider) + ".",
                      "stop");
      }
    }
    if (!seqs.empty()) {
      req["stop_sequences"] = std::move(seqs);
    }
    return std::nullopt;
  }

  std::optional<Refusal> tools(json::object& req) const {
    bool has_tools = false;
    if (const json::value* tools = get(src_, "tools")) {
      if (!tools->is_array()) {
        return refuse("Invalid type for 'tools': expected an array.", "tools");
      }
      json::array out;
      std::size_t i = 0;
      for (const auto& t : tools->get_array()) {
        const std::string at = "tools[" + std::to_string(i++) + "]";
        const json::object* to = t.if_object();
        if (to == nullptr || get_string(*to, "type") != "function") {
          return refuse(unsupported("A tool that is not of type 'function'"), at + ".type");
        }
        const json::value* fn = get(*to, "function");
        if (fn == nullptr || !fn->is_object() || get_string(fn->get_object(), "name").empty()) {
          return refuse("Missing required parameter: '" + at + ".function.name'.",
                        at + ".function.name");
        }
        const json::object& f = fn->get_object();
        json::object tool{{"name", f.at("name")}};
        if (const json::value* d = get(f, "description"); d != nullptr && d->is_string()) {
          tool["description"] = *d;
        }
        if (const json::value* p = get(f, "parameters"); p != nullptr && p->is_object()) {
          tool["input_schema"] = *p;
        } else {
          // OpenAI allows a function without parameters; Anthropic requires an object schema.
          tool["input_schema"] = json::object{{"type", "object"}, {"properties", json::object{}}};
        }
        if (const json::value* cc = get(*to, "cache_control"); cc != nullptr && cc->is_object()) {
          tool["cache_control"] = *cc;
        }
        out.push_back(std::move(tool));
      }
      has_tools = !out.empty();
      if (has_tools) {
        req["tools"] = std::move(out);
      }
    }
    json::object choice;
    if (const json::value* tc = get(src_, "tool_choice")) {
      if (tc->is_string()) {
        const std::string_view s = tc->get_string();
        if (s == "auto") {
          choice["type"] = "auto";
        } else if (s == "none") {
          choice["type"] = "none";
        } else if (s == "required") {
          choice["type"] = "any";
        } else {
          return refuse("Invalid 'tool_choice': expected 'none', 'auto', 'required' or a "
                        "function.",
                        "tool_choice");
        }
      } else if (tc->is_object()) {
        const json::value* fn = get(tc->get_object(), "function");
        const std::string_view name =
            fn != nullptr && fn->is_object() ? get_string(fn->get_object(), "name") : "";
        if (name.empty()) {
          return refuse("Missing required parameter: 'tool_choice.function.name'.",
                        "tool_choice.function.name");
        }
        choice["type"] = "tool";
        choice["name"] = name;
      } else {
        return refuse("Invalid type for 'tool_choice': expected a string or an object.",
                      "tool_choice");
      }
    }
    if (!has_tools) {
      // Nothing to choose from: "auto" and "none" mean the same as no tool_choice; a forced
      // choice goes up and Anthropic says what is wrong.
      const auto* t = choice.if_contains("type");
      if (t == nullptr || is_string(*t, "auto") || is_string(*t, "none")) {
        return std::nullopt;
      }
    }
    if (const json::value* p = get(src_, "parallel_tool_calls");
        p != nullptr && p->is_bool() && !p->get_bool() && has_tools) {
      if (choice.empty()) {
        choice["type"] = "auto";
      }
      if (!is_string(choice["type"], "none")) {
        choice["disable_parallel_tool_use"] = true;
      }
    }
    if (!choice.empty()) {
      req["tool_choice"] = std::move(choice);
    }
    return std::nullopt;
  }

  // Messages -----------------------------------------------------------------------------------

  std::optional<Refusal> convert_messages() {
    const json::value* msgs = get(src_, "messages");
    if (msgs == nullptr || !msgs->is_array()) {
      return refuse("Missing required parameter: 'messages'.", "messages");
    }
    std::size_t i = 0;
    for (const auto& m : msgs->get_array()) {
      const std::string at = "messages[" + std::to_string(i++) + "]";
      const json::object* mo = m.if_object();
      if (mo == nullptr) {
        return refuse("Invalid type for '" + at + "': expected an object.", at);
      }
      const std::string_view role = get_string(*mo, "role");
      std::optional<Refusal> r;
      if (role == "system" || role == "developer") {
        r = system_message(*mo, at);
      } else if (role == "user") {
        json::array blocks;
        r = user_content(get(*mo, "content"), at + ".content", blocks);
        push("user", std::move(blocks));
      } else if (role == "assistant") {
        r = assistant_message(*mo, at);
      } else if (role == "tool") {
        r = tool_message(*mo, at);
      } else if (role == "function") {
        r = refuse("Messages of role 'function' are deprecated and not supported by " +
                       std::string(kProvider) + "; use 'tool'.",
                   at + ".role");
      } else {
        r = refuse("Invalid '" + at + ".role': expected 'system', 'developer', 'user', "
                   "'assistant' or 'tool'.",
                   at + ".role");
      }
      if (r) {
        return r;
      }
    }
    if (messages_.empty()) {
      return refuse("'messages' must hold at least one user or assistant message with content "
                    "for " + std::string(kProvider) + ".",
                    "messages");
    }
    return std::nullopt;
  }

  /// Appends `blocks` as a turn of `role`, merged into the previous turn of the same role
  /// (Anthropic requires turns to alternate).
  void push(std::string_view role, json::array blocks) {
    if (blocks.empty()) {
      return;
    }
    if (!messages_.empty()) {
      json::object& last = messages_.back().as_object();
      if (is_string(last.at("role"), role)) {
        json::array& content = last.at("content").as_array();
        for (auto& b : blocks) {
          content.push_back(std::move(b));
        }
        return;
      }
    }
    messages_.push_back(json::object{{"role", role}, {"content", std::move(blocks)}});
  }

  /// A turn of one plain text block is written as a string, as clients usually do.
  static void simplify(json::object& message) {
    json::array& content = message.at("content").as_array();
    if (content.size() == 1) {
      const json::object& b = content[0].as_object();
      if (is_string(b.at("type"), "text") && b.size() == 2) {
        json::value text = b.at("text");
        message["content"] = std::move(text);
      }
    }
  }

  static json::object text_block(const json::value& text, const json::object* part) {
    json::object b{{"type", "text"}, {"text", text}};
    if (part != nullptr) {
      if (const json::value* cc = get(*part, "cache_control"); cc != nullptr && cc->is_object()) {
        b["cache_control"] = *cc;
      }
    }
    return b;
  }

  /// Text (and refusal) parts, or a string, into text blocks; empty texts are
  /// dropped (Anthropic refuses empty text blocks).
  static std::optional<Refusal> text_parts(const json::value* content, const std::string& at,
                                           json::array& blocks) {
    if (content == nullptr) {
      return std::nullopt;
    }
    if (content->is_string()) {
      if (!content->get_string().empty()) {
        blocks.push_back(text_block(*content, nullptr));
      }
      return std::nullopt;
    }
    if (!content->is_array()) {
      return refuse("Invalid type for '" + at + "': expected a string or an array of parts.", at);
    }
    std::size_t j = 0;
    for (const auto& p : content->get_array()) {
      const std::string pat = at + "[" + std::to_string(j++) + "]";
      const json::object* po = p.if_object();
      const std::string_view type = po != nullptr ? get_string(*po, "type") : "";
      const json::value* text = nullptr;
      if (type == "text") {
        text = get(*po, "text");
      } else if (type == "refusal") {
        text = get(*po, "refusal");
      } else {
        return refuse("Invalid '" + pat + ".type': expected 'text' here.", pat + ".type");
      }
      if (text == nullptr || !text->is_string()) {
        return refuse("Missing required parameter: '" + pat + ".text'.", pat + ".text");
      }
      if (!text->get_string().empty()) {
        blocks.push_back(text_block(*text, po));
      }
    }
    return std::nullopt;
  }

  std::optional<Refusal> system_message(const json::object& m, const std::string& at) {
    return text_parts(get(m, "content"), at + ".content", system_);
  }

  /// A data URL "data:<media type>;base64,<data>" into a base64 source.
  static std::optional<json::object> data_url_source(std::string_view url) {
    const auto d = parse_data_url(url);
    if (!d) {
      return std::nullopt;
    }
    return json::object{{"type", "base64"}, {"media_type", d->mime}, {"data", d->data}};
  }

  static std::optional<Refusal> user_content(const json::value* content, const std::string& at,
                                             json::array& blocks) {
    if (content == nullptr || content->is_string()) {
      return text_parts(content, at, blocks);
    }
    if (!content->is_array()) {
      return refuse("Invalid type for '" + at + "': expected a string or an array of parts.", at);
    }
    std::size_t j = 0;
    for (const auto& p : content->get_array()) {
      const std::string pat = at + "[" + std::to_string(j++) + "]";
      const json::object* po = p.if_object();
      const std::string_view type = po != nullptr ? get_string(*po, "type") : "";
      if (type == "text") {
        const json::value* text = get(*po, "text");
        if (text == nullptr || !text->is_string()) {
          return refuse("Missing required parameter: '" + pat + ".text'.", pat + ".text");
        }
        if (!text->get_string().empty()) {
          blocks.push_back(text_block(*text, po));
        }
      } else if (type == "image_url") {
        const json::value* iu = get(*po, "image_url");
        std::string_view url;
        if (iu != nullptr && iu->is_string()) {
          url = iu->get_string();
        } else if (iu != nullptr && iu->is_object()) {
          url = get_string(iu->get_object(), "url");
        }
        json::object block{{"type", "image"}};
        if (url.starts_with("https://") || url.starts_with("http://")) {
          block["source"] = json::object{{"type", "url"}, {"url", url}};
        } else if (auto src = data_url_source(url)) {
          block["source"] = std::move(*src);
        } else {
          return refuse("Invalid '" + pat + ".image_url.url': expected an http(s) URL or a "
                        "base64 data URL (data:<media type>;base64,...).",
                        pat + ".image_url.url");
        }
        if (const json::value* cc = get(*po, "cache_control"); cc != nullptr && cc->is_object()) {
          block["cache_control"] = *cc;
        }
        blocks.push_back(std::move(block));
      } else if (type == "file") {
        const json::value* file = get(*po, "file");
        const std::string_view data =
            file != nullptr && file->is_object() ? get_string(file->get_object(), "file_data") : "";
        auto src = data_url_source(data);
        if (!src) {
          return refuse(unsupported("A file part without base64 file_data (file_id)"),
                        pat + ".file");
        }
        blocks.push_back(json::object{{"type", "document"}, {"source", std::move(*src)}});
      } else if (type == "input_audio") {
        return refuse(unsupported("Audio input"), pat + ".type");
      } else {
        return refuse("Invalid '" + pat + ".type': expected 'text', 'image_url' or 'file'.",
                      pat + ".type");
      }
    }
    return std::nullopt;
  }

  std::optional<Refusal> assistant_message(const json::object& m, const std::string& at) {
    json::array blocks;
    if (auto r = text_parts(get(m, "content"), at + ".content", blocks)) {
      return r;
    }
    if (const json::value* calls = get(m, "tool_calls")) {
      if (!calls->is_array()) {
        return refuse("Invalid type for '" + at + ".tool_calls': expected an array.",
                      at + ".tool_calls");
      }
      std::size_t j = 0;
      for (const auto& c : calls->get_array()) {
        const std::string cat = at + ".tool_calls[" + std::to_string(j++) + "]";
        const json::object* co = c.if_object();
        const json::value* fn = co != nullptr ? get(*co, "function") : nullptr;
        const json::object* fo = fn != nullptr ? fn->if_object() : nullptr;
        const std::string_view id = co != nullptr ? get_string(*co, "id") : "";
        const std::string_view name = fo != nullptr ? get_string(*fo, "name") : "";
        if (id.empty() || name.empty()) {
          return refuse("Missing required parameter: '" + cat + ".id' or '" + cat +
                            ".function.name'.",
                        cat);
        }
        json::value input = json::object{};
        const json::value* args = get(*fo, "arguments");
        if (args != nullptr && args->is_string()) {
          const std::string_view text = args->get_string();
          if (text.find_first_not_of(" \t\r\n") != std::string_view::npos) {
            auto parsed = parse(text, kRequestMaxDepth);
            if (!parsed || !parsed->is_object()) {
              return refuse("Invalid '" + cat + ".function.arguments': " + std::string(kProvider) +
                                " needs a JSON object here.",
                            cat + ".function.arguments");
            }
            input = std::move(*parsed);
          }
        } else if (args != nullptr && args->is_object()) {
          input = *args;
        } else if (args != nullptr) {
          return refuse("Invalid type for '" + cat + ".function.arguments': expected a string.",
                        cat + ".function.arguments");
        }
        blocks.push_back(json::object{
            {"type", "tool_use"}, {"id", id}, {"name", name}, {"input", std::move(input)}});
      }
    }
    push("assistant", std::move(blocks));
    return std::nullopt;
  }

  std::optional<Refusal> tool_message(const json::object& m, const std::string& at) {
    const std::string_view id = get_string(m, "tool_call_id");
    if (id.empty()) {
      return refuse("Missing required parameter: '" + at + ".tool_call_id'.",
                    at + ".tool_call_id");
    }
    json::object result{{"type", "tool_result"}, {"tool_use_id", id}};
    const json::value* content = get(m, "content");
    if (content != nullptr && content->is_string()) {
      result["content"] = *content;
    } else if (content != nullptr) {
      json::array parts;
      if (auto r = text_parts(content, at + ".content", parts)) {
        return r;
      }
      result["content"] = std::move(parts);
    }
    json::array blocks;
    blocks.push_back(std::move(result));
    push("user", std::move(blocks));
    return std::nullopt;
  }

  const CallInput& in_;
  const json::object& src_;
  json::array system_;
  json::array messages_;
};

// ---------------------------------------------------------------------------------------------
// Answers and usage

std::string_view finish_reason(std::string_view stop_reason) {
  if (stop_reason == "max_tokens" || stop_reason == "model_context_window_exceeded") {
    return "length";
  }
  if (stop_reason == "tool_use") {
    return "tool_calls";
  }
  if (stop_reason == "refusal") {
    return "content_filter";
  }
  return "stop";  // end_turn, stop_sequence, pause_turn, none
}

/// A non-negative integer member located in JSON text.
bool located_int(const JsonField& f, std::int64_t& to) {
  if (f.kind() != JsonKind::Number) {
    return false;
  }
  std::int64_t v = 0;
  const auto [p, ec] = std::from_chars(f.value.data(), f.value.data() + f.value.size(), v);
  if (ec != std::errc{} || p != f.value.data() + f.value.size() || v < 0) {
    return false;
  }
  to = v;
  return true;
}

/// Merges a message_delta's usage into the stream's (message_start's): output_tokens is
/// cumulative (the last wins); input and cache counts replace message_start's only where the
/// delta restates them (null or absent: not restated).
void merge_delta_usage(std::string_view usage_obj, pricing::TokenUsage& u) {
  static constexpr std::array<std::string_view, 5> kNames{
      "input_tokens", "output_tokens", "cache_creation_input_tokens", "cache_read_input_tokens",
      "cache_creation"};
  std::array<JsonField, kNames.size()> f;
  if (!core::locate_fields(usage_obj, kNames, f)) {
    return;
  }
  bool any = located_int(f[0], u.input_tokens);
  any |= located_int(f[1], u.output_tokens);
  any |= located_int(f[3], u.cache_read_tokens);
  std::int64_t w5 = -1, w1h = -1, total = -1;
  if (f[4].kind() == JsonKind::Object) {
    static constexpr std::array<std::string_view, 2> kTtl{"ephemeral_5m_input_tokens",
                                                          "ephemeral_1h_input_tokens"};
    std::array<JsonField, kTtl.size()> g;
    if (core::locate_fields(f[4].value, kTtl, g)) {
      located_int(g[0], w5);
      located_int(g[1], w1h);
    }
  }
  if (w5 >= 0 || w1h >= 0) {
    u.cache_write_5m_tokens = std::max<std::int64_t>(w5, 0);
    u.cache_write_1h_tokens = std::max<std::int64_t>(w1h, 0);
    any = true;
  } else if (located_int(f[2], total)) {
    if (total != u.cache_write_5m_tokens + u.cache_write_1h_tokens) {
      // A new total without its split: message_start's 1-hour part stands, the rest is 5m.
      u.cache_write_1h_tokens = std::min(u.cache_write_1h_tokens, total);
      u.cache_write_5m_tokens = total - u.cache_write_1h_tokens;
    }
    any = true;
  }
  if (any) {
    u.reported = true;
  }
}

bool passthrough_answer(std::string_view body, Answer& answer) {
  if (!core::validate_json(body, nullptr, kAnswerMaxDepth)) {
    return false;
  }
  static constexpr std::array<std::string_view, 4> kNames{"type", "model", "usage", "content"};
  std::array<JsonField, kNames.size()> f;
  if (!core::locate_fields(body, kNames, f) || f[3].kind() != JsonKind::Array) {
    return false;
  }
  if (f[0].kind() == JsonKind::String && core::json_string_value(f[0].value) != "message") {
    return false;
  }
  if (f[1].kind() == JsonKind::String) {
    answer.model = core::json_string_value(f[1].value).value_or(std::string());
  }
  if (f[2].kind() == JsonKind::Object) {
    pricing::normalize_anthropic(f[2].value, answer.usage);
  }
  answer.passthrough = true;
  return true;
}

bool chat_answer(const CallInput& in, std::string_view body, std::string& out, Answer& answer) {
  alignas(16) unsigned char arena[kArenaBytes];
  json::monotonic_resource mr(arena, sizeof arena);
  const auto parsed = parse(body, kAnswerMaxDepth, &mr);
  if (!parsed || !parsed->is_object()) {
    return false;
  }
  const json::object& msg = parsed->get_object();
  const json::value* content = get(msg, "content");
  if (content == nullptr || !content->is_array() ||
      (get(msg, "type") != nullptr && get_string(msg, "type") != "message")) {
    return false;
  }
  std::string text, reasoning, calls;
  bool has_text = false;
  int tool_index = 0;
  for (const auto& b : content->get_array()) {
    const json::object* bo = b.if_object();
    if (bo == nullptr) {
      return false;
    }
    const std::string_view type = get_string(*bo, "type");
    if (type == "text") {
      text += get_string(*bo, "text");
      has_text = true;
    } else if (type == "thinking") {
      reasoning += get_string(*bo, "thinking");
    } else if (type == "tool_use") {
      const json::value* input = get(*bo, "input");
      std::string args;
      if (input == nullptr) {
        args = "{}";
      } else if (!core::append_json(args, *input)) {
        return false;
      }
      calls += tool_index++ == 0 ? "" : ",";
      calls += R"({"id":)";
      core::append_json_string(calls, get_string(*bo, "id"));
      calls += R"(,"type":"function","function":{"name":)";
      core::append_json_string(calls, get_string(*bo, "name"));
      calls += R"(,"arguments":)";
      core::append_json_string(calls, args);
      calls += "}}";
    }
    // redacted_thinking and server tool blocks have no OpenAI form.
  }
  answer.model = get_string(msg, "model");
  if (const json::value* u = get(msg, "usage"); u != nullptr && u->is_object()) {
    // The usage object's own bytes: normalize_anthropic reads the text.
    const JsonField uf = member(body, "usage");
    pricing::normalize_anthropic(uf.value, answer.usage);
  }
  out.clear();
  out += R"({"id":)";
  core::append_json_string(out, completion_id(in.request_id));
  out += R"(,"object":"chat.completion","created":)";
  out += std::to_string(in.created);
  out += R"(,"model":)";
  core::append_json_string(out, answer.model.empty() ? in.upstream_model : answer.model);
  out += R"(,"choices":[{"index":0,"message":{"role":"assistant","content":)";
  if (has_text || tool_index == 0) {
    core::append_json_string(out, text);
  } else {
    out += "null";
  }
  if (!reasoning.empty()) {
    out += R"(,"reasoning_content":)";
    core::append_json_string(out, reasoning);
  }
  if (tool_index > 0) {
    out += R"(,"tool_calls":[)";
    out += calls;
    out += "]";
  }
  out += R"(,"refusal":null},"logprobs":null,"finish_reason":)";
  core::append_json_string(out, finish_reason(get_string(msg, "stop_reason")));
  out += "}]";
  if (answer.usage.reported) {
    out += R"(,"usage":)";
    append_openai_usage(out, answer.usage);
  }
  out += "}";
  return true;
}

// ---------------------------------------------------------------------------------------------
// Errors

/// What Anthropic's error type says, over its status: the type is the more precise of the two
/// (an overload can come as 500 with overloaded_error, a stream error has no status).
ProviderError error_for(unsigned status, std::string_view type, std::string message,
                        std::string_view retry_after) {
  unsigned as = status;
  if (type == "invalid_request_error" || type == "not_found_error" ||
      type == "request_too_large") {
    as = 400;
  } else if (type == "authentication_error") {
    as = 401;
  } else if (type == "permission_error") {
    as = 403;
  } else if (type == "rate_limit_error") {
    as = 429;
  } else if (type == "overloaded_error") {
    as = 529;
  } else if (type == "timeout_error") {
    as = 504;
  } else if (type == "api_error") {
    as = 500;
  }
  ProviderError e = map_status(as, std::move(message), retry_after);
  if (type == "billing_error" || as == 402) {
    // The gateway's own account cannot pay: the operator must act, the client cannot.
    e = map_status(403, std::move(e.message), retry_after);
  }
  return e;
}

// ---------------------------------------------------------------------------------------------
// Streams

/// The shared event loop: SSE framing, the size bound, errors, usage and the end marker.
class MessagesStream : public StreamTranslator {
 public:
  explicit MessagesStream(const CallInput& in) : format_(in.format) {}

  void feed(std::string& in, std::string& out) override {
    std::size_t pos = 0;
    while (!stopped_) {
      const std::size_t n = next_sse_event(std::string_view(in).substr(pos), ev_);
      if (n == 0) {
        break;
      }
      const std::string_view raw = std::string_view(in).substr(pos, n);
      pos += n;
      event(raw, out);
    }
    in.erase(0, pos);
    if (!stopped_ && in.size() > kMaxEventBytes) {
      fail(out);
    }
    if (stopped_) {
      in.clear();  // the stream has ended: what follows is not read
    }
  }

  void finish(std::string& in, std::string& out, bool complete) override {
    feed(in, out);
    if (!stopped_ && complete && in.find_first_not_of(" \t\r\n") != std::string::npos) {
      in += "\n\n";  // the body's end also ends its last event
      feed(in, out);
    }
    in.clear();
  }

 protected:
  virtual void on_event(std::string_view type, std::string_view raw, std::string& out) = 0;

  /// The event's JSON data (validated), or empty if it is not JSON: the stream then fails.
  std::string_view data(std::string& out) {
    if (!core::validate_json(ev_.data, nullptr, kAnswerMaxDepth) ||
        ev_.data.find_first_not_of(" \t\r\n") == std::string::npos ||
        ev_.data[ev_.data.find_first_not_of(" \t\r\n")] != '{') {
      fail(out);
      return {};
    }
    return ev_.data;
  }

  /// A stream that cannot be read ends with an error event; what follows is not read.
  void fail(std::string& out) {
    out += render_stream_error(format_, "upstream_error",
                               "The provider's stream could not be read.", 502);
    error_ = "upstream_error";
    stopped_ = true;
  }

  void message_start(std::string_view d) {
    const JsonField m = member(d, "message");
    if (m.kind() != JsonKind::Object) {
      return;
    }
    model_ = member_string(m.value, "model");
    const JsonField u = member(m.value, "usage");
    if (u.kind() == JsonKind::Object) {
      pricing::normalize_anthropic(u.value, usage_);
    }
  }

  void message_delta_usage(std::string_view d) {
    const JsonField u = member(d, "usage");
    if (u.kind() == JsonKind::Object) {
      merge_delta_usage(u.value, usage_);
    }
  }

  /// An `error` event: passed on in the client's format (`raw` for an Anthropic client), and
  /// the stream ends.
  void provider_error(std::string_view raw, std::string& out) {
    std::string type, message;
    if (core::validate_json(ev_.data)) {
      const JsonField e = member(ev_.data, "error");
      if (e.kind() == JsonKind::Object) {
        type = member_string(e.value, "type");
        message = member_string(e.value, "message");
      }
    }
    if (message.empty()) {
      message = "The provider's stream ended with an error.";
    }
    const ProviderError e = error_for(0, type, message, "");
    if (format_ == Format::AnthropicMessages) {
      out += raw;
    } else {
      out += render_stream_error(format_, e.type, e.message, e.status);
    }
    error_ = e.type.empty() ? "upstream_error" : e.type;
    stopped_ = true;
  }

 private:
  void event(std::string_view raw, std::string& out) {
    std::string type = ev_.name;
    if (type.empty()) {
      if (ev_.data.empty()) {
        return;  // a keep-alive, or lines that are no SSE field
      }
      // Anthropic names every event; unnamed data is read by its own `type`, or is garbage.
      if (core::validate_json(ev_.data)) {
        type = member_string(ev_.data, "type");
      }
      if (type.empty()) {
        fail(out);
        return;
      }
    }
    if (type == "error") {
      provider_error(raw, out);
      return;
    }
    on_event(type, raw, out);
  }

  Format format_;
  SseEvent ev_;

 protected:
  bool stopped_ = false;
};

/// An Anthropic-format client: each event passes through as the provider framed it.
class PassthroughStream final : public MessagesStream {
 public:
  using MessagesStream::MessagesStream;

 private:
  void on_event(std::string_view type, std::string_view raw, std::string& out) override {
    if (type == "message_start" || type == "message_delta") {
      const std::string_view d = data(out);
      if (d.empty()) {
        return;
      }
      if (type == "message_start") {
        message_start(d);
      } else {
        message_delta_usage(d);
      }
    } else if (type == "content_block_delta") {
      ++events_;
    } else if (type == "message_stop") {
      ended_ = true;
      stopped_ = true;
    }
    out += raw;
  }
};

/// An OpenAI chat client: chat.completion.chunk events.
class ChatStream final : public MessagesStream {
 public:
  explicit ChatStream(const CallInput& in)
      : MessagesStream(in),
        writer_(completion_id(in.request_id), in.upstream_model, in.created),
        wants_usage_(in.client_wants_usage) {}

 private:
  void on_event(std::string_view type, std::string_view /*raw*/, std::string& out) override {
    if (type != "message_start" && type != "content_block_start" &&
        type != "content_block_delta" && type != "message_delta" && type != "message_stop") {
      return;  // ping, content_block_stop, and event types added after this code
    }
    const std::string_view d = data(out);
    if (d.empty()) {
      return;
    }
    if (type == "message_start") {
      message_start(d);
      if (!model_.empty()) {
        writer_.set_model(model_);
      }
      start(out);
    } else if (type == "content_block_start") {
      block_start(d, out);
    } else if (type == "content_block_delta") {
      block_delta(d, out);
    } else if (type == "message_delta") {
      message_delta_usage(d);
      const JsonField delta = member(d, "delta");
      if (delta.kind() == JsonKind::Object) {
        start(out);
        writer_.finish(out, finish_reason(member_string(delta.value, "stop_reason")));
        finished_ = true;
      }
    } else {  // message_stop
      start(out);
      if (!finished_) {
        writer_.finish(out, "stop");
      }
      if (wants_usage_) {
        writer_.usage(out, usage_);
      }
      ChunkWriter::done(out);
      ended_ = true;
      stopped_ = true;
    }
  }

  void start(std::string& out) {
    if (!started_) {
      writer_.role(out);
      started_ = true;
    }
  }

  void block_start(std::string_view d, std::string& out) {
    const JsonField block = member(d, "content_block");
    if (block.kind() != JsonKind::Object) {
      return;
    }
    const std::string type = member_string(block.value, "type");
    start(out);
    if (type == "tool_use") {
      const int tool = next_tool_++;
      tools_.emplace_back(member_int(d, "index", -1), tool);
      writer_.tool_start(out, tool, member_string(block.value, "id"),
                         member_string(block.value, "name"));
    } else if (type == "text") {
      if (const std::string text = member_string(block.value, "text"); !text.empty()) {
        writer_.content(out, text);
        ++events_;
      }
    } else if (type == "thinking") {
      if (const std::string text = member_string(block.value, "thinking"); !text.empty()) {
        writer_.reasoning(out, text);
        ++events_;
      }
    }
  }

  void block_delta(std::string_view d, std::string& out) {
    const JsonField delta = member(d, "delta");
    if (delta.kind() != JsonKind::Object) {
      return;
    }
    // One pass over the delta finds its type and every value a type can carry; a string value
    // goes to the client as the provider wrote it (validated JSON), not decoded and re-escaped.
    static constexpr std::array<std::string_view, 4> kNames{"type", "text", "thinking",
                                                            "partial_json"};
    std::array<JsonField, kNames.size()> f;
    if (!core::locate_fields(delta.value, kNames, f) || f[0].kind() != JsonKind::String) {
      return;
    }
    std::string_view type = f[0].value;  // the literal, quotes included
    std::string unescaped;
    if (type.find('\\') != std::string_view::npos) {
      unescaped = '"' + core::json_string_value(type).value_or(std::string()) + '"';
      type = unescaped;
    }
    start(out);
    if (type == R"("text_delta")" && f[1].kind() == JsonKind::String) {
      writer_.content(out, JsonLiteral{f[1].value});
      ++events_;
    } else if (type == R"("thinking_delta")" && f[2].kind() == JsonKind::String) {
      writer_.reasoning(out, JsonLiteral{f[2].value});
      ++events_;
    } else if (type == R"("input_json_delta")" && f[3].kind() == JsonKind::String &&
               f[3].value.size() > 2) {
      const std::int64_t index = member_int(d, "index", -1);
      for (const auto& [block, tool] : tools_) {
        if (block == index) {
          writer_.tool_arguments(out, tool, JsonLiteral{f[3].value});
          ++events_;
          break;
        }
      }
    }
    // signature_delta and citations_delta have no OpenAI form.
  }

  ChunkWriter writer_;
  bool wants_usage_;
  bool started_ = false;
  bool finished_ = false;
  int next_tool_ = 0;
  std::vector<std::pair<std::int64_t, int>> tools_;  ///< content block index → tool index
};

}  // namespace

std::optional<Refusal> build_request(const CallInput& in, const MessagesOptions& options,
                                     std::string& body) {
  switch (in.format) {
    case Format::AnthropicMessages: return splice_request(in, options, body);
    case Format::OpenAIEmbeddings:
      return Refusal{"Embeddings: " + std::string(kProvider) + " does not offer embeddings.",
                     "model", core::Errc::BadRequest};
    case Format::OpenAIChat: break;
  }
  alignas(16) unsigned char arena[kArenaBytes];
  json::monotonic_resource mr(arena, sizeof arena);
  const auto parsed = parse(in.body, kRequestMaxDepth, &mr);
  if (!parsed || !parsed->is_object()) {
    return Refusal{"The request body must be a JSON object.", ""};
  }
  ChatRequest req(in, parsed->get_object());
  return req.build(options, body);
}

bool body_unchanged(const CallInput& in, const MessagesOptions& options) {
  if (options.vertex || in.format != Format::AnthropicMessages) {
    return false;
  }
  const JsonField model = member(in.body, "model");
  return model.kind() == JsonKind::String &&
         core::json_string_value(model.value) == in.upstream_model;
}

bool translate_answer(const CallInput& in, std::string_view body, std::string& out,
                      Answer& answer) {
  if (in.format == Format::AnthropicMessages) {
    return passthrough_answer(body, answer);
  }
  return chat_answer(in, body, out, answer);
}

ProviderError translate_error(unsigned status, std::string_view body,
                              std::string_view retry_after) {
  std::string type, message;
  if (core::validate_json(body)) {
    const JsonField e = member(body, "error");
    if (e.kind() == JsonKind::Object) {
      type = member_string(e.value, "type");
      message = member_string(e.value, "message");
    } else if (e.kind() == JsonKind::String) {
      message = core::json_string_value(e.value).value_or(std::string());
    }
  }
  return error_for(status, type, std::move(message), retry_after);
}

std::unique_ptr<StreamTranslator> make_stream_translator(const CallInput& in) {
  if (in.format == Format::AnthropicMessages) {
    return std::make_unique<PassthroughStream>(in);
  }
  return std::make_unique<ChatStream>(in);
}

}  // namespace llmgw::providers::anthropic
