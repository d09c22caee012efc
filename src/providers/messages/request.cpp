// The request side: inspect_messages_request (one SAX pass, no DOM: it runs for every
// /v1/messages call, translated or not) and messages_to_chat (a DOM: the whole body is
// rewritten anyway).

#include "providers/messages/detail.hpp"
#include "providers/messages/messages.hpp"

#include "core/json_key_set.hpp"
#include "core/json_sax.hpp"

#include <boost/json/basic_parser_impl.hpp>
#include <boost/json/monotonic_resource.hpp>
#include <boost/json/parse.hpp>
#include <boost/json/value.hpp>

#include <array>
#include <cstdint>

namespace llmgw::providers {

namespace {

using core::JsonKind;
namespace json = boost::json;

/// Largest max_tokens accepted: far above any model's limit, far below what would overflow
/// the worst-case cost arithmetic (the OpenAI check's bound).
constexpr std::int64_t kMaxTokenParam = std::int64_t{1} << 31;

/// The top-level members the gateway checks.
enum class Field : std::uint8_t {
  Other,
  Model,
  MaxTokens,
  Messages,
  System,
  Stream,
  StopSequences,
  Temperature,
  TopP,
  TopK,
  Tools,
  ToolChoice,
  Metadata,
  Thinking,
  ServiceTier,
  Count,
};

Field field_of(std::string_view key) noexcept {
  static constexpr std::array<std::pair<std::string_view, Field>, 14> kFields{{
      {"model", Field::Model},
      {"max_tokens", Field::MaxTokens},
      {"messages", Field::Messages},
      {"system", Field::System},
      {"stream", Field::Stream},
      {"stop_sequences", Field::StopSequences},
      {"temperature", Field::Temperature},
      {"top_p", Field::TopP},
      {"top_k", Field::TopK},
      {"tools", Field::Tools},
      {"tool_choice", Field::ToolChoice},
      {"metadata", Field::Metadata},
      {"thinking", Field::Thinking},
      {"service_tier", Field::ServiceTier},
  }};
  for (const auto& [name, f] : kFields) {
    if (name == key) {
      return f;
    }
  }
  return Field::Other;
}

/// An integer member: whether it was one, and its value when it fits.
struct IntValue {
  enum class State : std::uint8_t { NotInteger, Integer, TooLarge };
  State state = State::NotInteger;
  std::int64_t value = 0;
};

/// Walks a Messages body once while Boost.JSON's parser validates it (strict, UTF-8): the
/// kind of each top-level member the gateway checks, the values it reads, the shape of each
/// message (role, content) and of each block (an object with a string `type`), and the first
/// problem met, by its path. Depth counts the open containers: top-level keys are at depth 1,
/// a message's keys at 3, a content block's at 5, a system block's at 3.
class MessagesHandler : public core::SaxHandlerBase {
 public:
  explicit MessagesHandler(std::string_view body) : top_keys_(body) {}

  JsonKind top = JsonKind::Missing;
  std::array<JsonKind, static_cast<std::size_t>(Field::Count)> kinds{};
  std::string model;
  std::string service_tier;
  bool stream = false;
  IntValue max_tokens;
  IntValue top_k;
  std::size_t messages_count = 0;
  std::string duplicate;           ///< a repeated top-level key: parsing stopped there
  std::optional<RequestError> problem;  ///< the first shape problem, in document order

  [[nodiscard]] JsonKind kind(Field f) const noexcept {
    return kinds[static_cast<std::size_t>(f)];
  }

  bool on_object_begin(ec_t&) {
    value(JsonKind::Object);
    ++depth_;
    return true;
  }
  bool on_object_end(std::size_t, ec_t&) {
    --depth_;
    if (depth_ == 2 && field_ == Field::Messages && message_ok_) {
      end_message();
    } else if ((depth_ == 2 && field_ == Field::System) ||
               (depth_ == 4 && in_content() && block_ok_)) {
      end_block();
    }
    return true;
  }
  bool on_array_begin(ec_t&) {
    value(JsonKind::Array);
    ++depth_;
    return true;
  }
  bool on_array_end(std::size_t n, ec_t&) {
    --depth_;
    if (depth_ == 1 && field_ == Field::Messages) {
      messages_count = n;
    }
    return true;
  }
  bool on_key_part(std::string_view part, std::size_t, ec_t&) {
    key_.append(part);
    return true;
  }
  bool on_key(std::string_view part, std::size_t, ec_t& ec) {
    std::string_view key = part;
    if (!key_.empty()) {
      key_.append(part);
      key = key_;
    }
    if (depth_ == 1) {
      if (!top_keys_.insert(key)) {
        duplicate.assign(key);
        ec = json::error::syntax;
        return false;
      }
      field_ = field_of(key);
    } else if (depth_ == 3 && field_ == Field::Messages) {
      message_key_ = key == "role" ? MessageKey::Role
                     : key == "content" ? MessageKey::Content
                                        : MessageKey::Other;
    } else if ((depth_ == 3 && field_ == Field::System) || (depth_ == 5 && in_content())) {
      type_key_ = key == "type";
    }
    key_.clear();
    return true;
  }
  bool on_string_part(std::string_view part, std::size_t, ec_t&) {
    if (std::string* s = string_target()) {
      s->append(part);
    }
    return true;
  }
  bool on_string(std::string_view part, std::size_t, ec_t&) {
    if (std::string* s = string_target()) {
      s->append(part);
    }
    value(JsonKind::String);
    return true;
  }
  bool on_int64(std::int64_t v, std::string_view, ec_t&) {
    if (IntValue* f = int_target()) {
      f->state = v > kMaxTokenParam ? IntValue::State::TooLarge : IntValue::State::Integer;
      f->value = v;
    }
    value(JsonKind::Number);
    return true;
  }
  bool on_uint64(std::uint64_t, std::string_view, ec_t&) {
    if (IntValue* f = int_target()) {
      f->state = IntValue::State::TooLarge;
    }
    value(JsonKind::Number);
    return true;
  }
  bool on_double(double, std::string_view, ec_t&) {
    value(JsonKind::Number);
    return true;
  }
  bool on_bool(bool b, ec_t&) {
    if (depth_ == 1 && field_ == Field::Stream) {
      stream = b;
    }
    value(JsonKind::Bool);
    return true;
  }
  bool on_null(ec_t&) {
    value(JsonKind::Null);
    return true;
  }

 private:
  enum class MessageKey : std::uint8_t { Other, Role, Content };

  [[nodiscard]] bool in_content() const noexcept {
    return field_ == Field::Messages && message_key_ == MessageKey::Content;
  }

  /// Where the string now starting goes, if the gateway reads it.
  std::string* string_target() {
    if (depth_ == 1) {
      return field_ == Field::Model         ? &model
             : field_ == Field::ServiceTier ? &service_tier
                                            : nullptr;
    }
    if (depth_ == 3 && field_ == Field::Messages && message_key_ == MessageKey::Role) {
      return &role_;
    }
    if (type_key_ && ((depth_ == 3 && field_ == Field::System) || (depth_ == 5 && in_content()))) {
      return &block_type_;
    }
    return nullptr;
  }
  IntValue* int_target() noexcept {
    if (depth_ != 1) {
      return nullptr;
    }
    return field_ == Field::MaxTokens ? &max_tokens : field_ == Field::TopK ? &top_k : nullptr;
  }

  void note(std::string message, std::string param) {
    if (!problem) {
      problem = RequestError{std::move(message), std::move(param)};
    }
  }

  /// A value (scalar, or a container about to open) at the current depth.
  void value(JsonKind k) {
    if (depth_ == 0) {
      top = k;
      return;
    }
    if (depth_ == 1) {
      kinds[static_cast<std::size_t>(field_)] = k;
      if (k == JsonKind::Array) {
        element_ = -1;
      }
      return;
    }
    if (depth_ == 2) {
      ++element_;
      element(k);
      return;
    }
    if (depth_ == 3 && field_ == Field::Messages) {
      if (message_key_ == MessageKey::Role) {
        role_kind_ = k;
      } else if (message_key_ == MessageKey::Content) {
        content_kind_ = k;
        block_ = -1;
      }
      type_key_ = false;
      return;
    }
    if (depth_ == 4 && in_content()) {
      ++block_;
      type_kind_ = JsonKind::Missing;
      block_type_.clear();
      type_key_ = false;
      block_ok_ = k == JsonKind::Object;
      if (!block_ok_) {
        note(content_path() + ": Input should be a valid dictionary or object", content_path());
      }
      return;
    }
    if (type_key_ && ((depth_ == 3 && field_ == Field::System) || (depth_ == 5 && in_content()))) {
      type_kind_ = k;
      type_key_ = false;
    }
  }

  /// An element of a top-level array starts.
  void element(JsonKind k) {
    const std::string at = std::to_string(element_);
    switch (field_) {
      case Field::Messages:
        message_ok_ = k == JsonKind::Object;
        if (!message_ok_) {
          note("messages." + at + ": Input should be a valid dictionary or object",
               "messages." + at);
        }
        role_kind_ = content_kind_ = JsonKind::Missing;
        role_.clear();
        message_key_ = MessageKey::Other;
        break;
      case Field::System:
        type_kind_ = JsonKind::Missing;
        block_type_.clear();
        type_key_ = false;
        if (k != JsonKind::Object) {
          note("system." + at + ": Input should be a valid dictionary or object", "system." + at);
        }
        break;
      case Field::StopSequences:
        if (k != JsonKind::String) {
          note("stop_sequences." + at + ": Input should be a valid string", "stop_sequences." + at);
        }
        break;
      case Field::Tools:
        if (k != JsonKind::Object) {
          note("tools." + at + ": Input should be a valid dictionary or object", "tools." + at);
        }
        break;
      default:
        break;
    }
  }

  [[nodiscard]] std::string content_path() const {
    return "messages." + std::to_string(element_) + ".content." + std::to_string(block_);
  }

  void end_message() {
    const std::string at = "messages." + std::to_string(element_);
    if (role_kind_ == JsonKind::Missing) {
      note(at + ".role: Field required", at + ".role");
    } else if (role_kind_ != JsonKind::String ||
               (role_ != "user" && role_ != "assistant" && role_ != "system")) {
      note(at + ".role: Input should be 'user', 'assistant' or 'system'", at + ".role");
    } else if (role_ == "system" && element_ == 0) {
      // A system message mid-conversation is Anthropic's; the first one is the `system` field.
      note(at + ".role: Unexpected role \"system\". The Messages API accepts a top-level "
                "`system` parameter, not \"system\" as the first message's role.",
           at + ".role");
    }
    if (content_kind_ == JsonKind::Missing) {
      note(at + ".content: Field required", at + ".content");
    } else if (content_kind_ != JsonKind::String && content_kind_ != JsonKind::Array) {
      note(at + ".content: Input should be a valid string or list", at + ".content");
    }
    message_key_ = MessageKey::Other;
  }

  void end_block() {
    const std::string at = field_ == Field::System ? "system." + std::to_string(element_)
                                                   : content_path();
    if (type_kind_ == JsonKind::Missing) {
      note(at + ".type: Field required", at + ".type");
    } else if (type_kind_ != JsonKind::String) {
      note(at + ".type: Input should be a valid string", at + ".type");
    } else if (field_ == Field::System && block_type_ != "text") {
      note(at + ".type: Input should be 'text'", at + ".type");
    }
  }

  std::size_t depth_ = 0;
  Field field_ = Field::Other;
  MessageKey message_key_ = MessageKey::Other;
  bool type_key_ = false;  ///< the key just read, in a block, is `type`
  std::int64_t element_ = -1;  ///< index in the current top-level array
  std::int64_t block_ = -1;    ///< index in the current message's content
  bool message_ok_ = false;
  bool block_ok_ = false;
  JsonKind role_kind_ = JsonKind::Missing;
  JsonKind content_kind_ = JsonKind::Missing;
  JsonKind type_kind_ = JsonKind::Missing;
  std::string role_;
  std::string block_type_;
  std::string key_;
  core::KeySet top_keys_;
};

bool absent(JsonKind k) noexcept { return k == JsonKind::Missing || k == JsonKind::Null; }

RequestError type_error(std::string_view name, std::string_view expected) {
  std::string msg(name);
  msg += ": Input should be ";
  msg += expected;
  return RequestError{std::move(msg), std::string(name)};
}

/// Both inspections: a Messages body, or (`count`) a count_tokens body, which has no
/// max_tokens to require and produces no output.
std::optional<RequestError> inspect(std::string_view body, bool count, InspectedRequest& out) {
  if (body.empty()) {
    return RequestError{"The request body is empty; expected a JSON object.", ""};
  }
  json::parse_options opt;
  opt.max_depth = 64;
  json::basic_parser<MessagesHandler> parser(opt, body);
  boost::system::error_code ec;
  const std::size_t n = parser.write_some(false, body.data(), body.size(), ec);
  if (!ec && n != body.size()) {
    ec = json::error::extra_data;
  }
  const MessagesHandler& h = parser.handler();
  if (!h.duplicate.empty()) {
    // Parsers differ on which copy wins (the gateway would act on one, the provider run the
    // other): a repeated key is refused, whatever its spelling.
    return RequestError{
        "Duplicate key '" + h.duplicate + "' in the request body: each key may appear only once.",
        h.duplicate};
  }
  if (ec) {
    return RequestError{"The request body is not valid JSON: " + ec.message() + ".", ""};
  }
  if (h.top != JsonKind::Object) {
    return RequestError{"The request body must be a JSON object.", ""};
  }
  if (absent(h.kind(Field::Model))) {
    return RequestError{"model: Field required", "model"};
  }
  if (h.kind(Field::Model) != JsonKind::String) {
    return type_error("model", "a valid string");
  }
  if (h.model.empty()) {
    return RequestError{"model: String should have at least 1 character", "model"};
  }
  if (!count) {
    if (absent(h.kind(Field::MaxTokens))) {
      return RequestError{"max_tokens: Field required", "max_tokens"};
    }
    if (h.kind(Field::MaxTokens) != JsonKind::Number ||
        h.max_tokens.state == IntValue::State::NotInteger) {
      return type_error("max_tokens", "a valid integer");
    }
    if (h.max_tokens.state == IntValue::State::TooLarge) {
      return type_error("max_tokens", "less than or equal to " + std::to_string(kMaxTokenParam));
    }
    if (h.max_tokens.value < 1) {
      return type_error("max_tokens", "greater than or equal to 1");
    }
  }
  if (absent(h.kind(Field::Messages))) {
    return RequestError{"messages: Field required", "messages"};
  }
  if (h.kind(Field::Messages) != JsonKind::Array) {
    return type_error("messages", "a valid list");
  }
  if (h.messages_count == 0) {
    return RequestError{"messages: at least one message is required", "messages"};
  }
  if (const JsonKind k = h.kind(Field::System);
      !absent(k) && k != JsonKind::String && k != JsonKind::Array) {
    return type_error("system", "a valid string or list");
  }
  if (const JsonKind k = h.kind(Field::Stream); !absent(k) && k != JsonKind::Bool) {
    return type_error("stream", "a valid boolean");
  }
  if (const JsonKind k = h.kind(Field::StopSequences); !absent(k) && k != JsonKind::Array) {
    return type_error("stop_sequences", "a valid list");
  }
  if (const JsonKind k = h.kind(Field::Temperature); !absent(k) && k != JsonKind::Number) {
    return type_error("temperature", "a valid number");
  }
  if (const JsonKind k = h.kind(Field::TopP); !absent(k) && k != JsonKind::Number) {
    return type_error("top_p", "a valid number");
  }
  if (const JsonKind k = h.kind(Field::TopK); !absent(k)) {
    if (k != JsonKind::Number || h.top_k.state != IntValue::State::Integer) {
      return type_error("top_k", "a valid integer");
    }
    if (h.top_k.value < 0) {
      return type_error("top_k", "greater than or equal to 0");
    }
  }
  if (const JsonKind k = h.kind(Field::Tools); !absent(k) && k != JsonKind::Array) {
    return type_error("tools", "a valid list");
  }
  static constexpr std::array<std::pair<Field, std::string_view>, 3> kObjects{{
      {Field::ToolChoice, "tool_choice"},
      {Field::Metadata, "metadata"},
      {Field::Thinking, "thinking"},
  }};
  for (const auto& [f, name] : kObjects) {
    if (const JsonKind k = h.kind(f); !absent(k) && k != JsonKind::Object) {
      return type_error(name, "a valid dictionary or object");
    }
  }
  if (const JsonKind k = h.kind(Field::ServiceTier); !absent(k) && k != JsonKind::String) {
    return type_error("service_tier", "a valid string");
  }
  if (h.problem) {
    return h.problem;
  }
  out.model = h.model;
  out.stream = count ? false : h.stream;
  out.client_wants_usage = false;
  out.service_tier = h.service_tier;
  out.max_output_tokens = count ? 0 : h.max_tokens.value;
  out.choices = 1;
  return std::nullopt;
}

}  // namespace

std::optional<RequestError> inspect_messages_request(std::string_view body,
                                                     InspectedRequest& out) {
  return inspect(body, /*count=*/false, out);
}

std::optional<RequestError> inspect_count_tokens_request(std::string_view body,
                                                         InspectedRequest& out) {
  return inspect(body, /*count=*/true, out);
}

// ---------------------------------------------------------------------------------------------
// Translation to OpenAI chat

namespace {

/// Builds the OpenAI messages of one request; the first block it cannot translate stops it.
class ChatBuilder {
 public:
  explicit ChatBuilder(json::array& messages) : messages_(messages) {}

  std::optional<Refusal> refusal;

  /// The top-level `system` (`where`: "system"), or the content of a mid-conversation system
  /// message (`where`: "messages.N.content"): one OpenAI system message at its place.
  void system(const json::value& v, std::string_view where = "system") {
    std::string text;
    if (v.is_string()) {
      text = v.get_string();
    } else if (v.is_array()) {
      const json::array& blocks = v.get_array();
      for (std::size_t i = 0; i < blocks.size(); ++i) {
        const std::string at = std::string(where) + "." + std::to_string(i);
        const json::object* b = blocks[i].if_object();
        const json::string* type = b != nullptr ? string_member(*b, "type") : nullptr;
        if (type != nullptr && *type != "text") {
          return unsupported(*type, at);
        }
        const json::string* t = b != nullptr ? string_member(*b, "text") : nullptr;
        if (t == nullptr) {
          return refuse(at + ".text: Field required", at + ".text");
        }
        if (!text.empty() && !t->empty()) {
          text += "\n\n";
        }
        text += *t;
      }
    }
    if (!text.empty()) {
      json::object m;
      m["role"] = "system";
      m["content"] = std::move(text);
      messages_.emplace_back(std::move(m));
    }
  }

  void message(const json::object& m, std::size_t i) {
    const std::string at = "messages." + std::to_string(i);
    const json::value* content = m.if_contains("content");
    const json::string* role = string_member(m, "role");
    if (content == nullptr || role == nullptr) {
      return refuse(at + ": a message needs a role and a content", at);
    }
    if (*role == "system") {
      return system(*content, at + ".content");
    }
    const bool assistant = *role == "assistant";
    if (content->is_string()) {
      json::object out;
      out["role"] = assistant ? "assistant" : "user";
      out["content"] = content->get_string();
      messages_.emplace_back(std::move(out));
      return;
    }
    if (!content->is_array()) {
      return refuse(at + ".content: Input should be a valid string or list", at + ".content");
    }
    if (assistant) {
      assistant_turn(content->get_array(), at);
    } else {
      user_turn(content->get_array(), at);
    }
  }

 private:
  static const json::string* string_member(const json::object& o, std::string_view key) {
    const json::value* v = o.if_contains(key);
    return v != nullptr ? v->if_string() : nullptr;
  }

  void refuse(std::string message, std::string param) {
    if (!refusal) {
      refusal = Refusal{std::move(message), std::move(param)};
    }
  }

  void unsupported(std::string_view type, const std::string& at) {
    refuse(at + ": content blocks of type '" + std::string(type) +
               "' cannot be sent to this model's provider (it takes OpenAI chat completions).",
           at);
  }

  /// An image block as an OpenAI image_url part, or nothing (refused).
  std::optional<json::object> image_part(const json::object& b, const std::string& at) {
    const json::value* sv = b.if_contains("source");
    const json::object* src = sv != nullptr ? sv->if_object() : nullptr;
    const json::string* type = src != nullptr ? string_member(*src, "type") : nullptr;
    std::string url;
    if (type != nullptr && *type == "base64") {
      const json::string* media = string_member(*src, "media_type");
      const json::string* data = string_member(*src, "data");
      if (media == nullptr || data == nullptr) {
        refuse(at + ".source: a base64 image needs media_type and data", at + ".source");
        return std::nullopt;
      }
      url.reserve(media->size() + data->size() + 13);
      url += "data:";
      url += *media;
      url += ";base64,";
      url += *data;
    } else if (type != nullptr && *type == "url") {
      const json::string* u = string_member(*src, "url");
      if (u == nullptr) {
        refuse(at + ".source.url: Field required", at + ".source.url");
        return std::nullopt;
      }
      url = *u;
    } else {
      refuse(at + ".source: only base64 and url image sources can be sent to this model's "
                  "provider.",
             at + ".source");
      return std::nullopt;
    }
    json::object part;
    part["type"] = "image_url";
    part["image_url"].emplace_object()["url"] = std::move(url);
    return part;
  }

  static json::object text_part(const json::string& text) {
    json::object part;
    part["type"] = "text";
    part["text"] = text;
    return part;
  }

  /// A tool_result block → a `role: tool` message; its images go to `images`.
  void tool_result(const json::object& b, const std::string& at, json::array& images) {
    const json::string* id = string_member(b, "tool_use_id");
    if (id == nullptr) {
      return refuse(at + ".tool_use_id: Field required", at + ".tool_use_id");
    }
    std::string text;
    if (const json::value* c = b.if_contains("content"); c != nullptr && c->is_string()) {
      text = c->get_string();
    } else if (c != nullptr && c->is_array()) {
      const json::array& parts = c->get_array();
      for (std::size_t k = 0; k < parts.size(); ++k) {
        const std::string pat = at + ".content." + std::to_string(k);
        const json::object* p = parts[k].if_object();
        const json::string* type = p != nullptr ? string_member(*p, "type") : nullptr;
        if (type != nullptr && *type == "text") {
          const json::string* t = string_member(*p, "text");
          if (t == nullptr) {
            return refuse(pat + ".text: Field required", pat + ".text");
          }
          if (!text.empty()) {
            text += '\n';
          }
          text += *t;
        } else if (type != nullptr && *type == "image") {
          auto part = image_part(*p, pat);
          if (!part) {
            return;
          }
          images.emplace_back(std::move(*part));
        } else {
          return unsupported(type != nullptr ? std::string_view(*type) : "?", pat);
        }
      }
    } else if (c != nullptr && !c->is_null()) {
      return refuse(at + ".content: Input should be a valid string or list", at + ".content");
    }
    if (const json::value* e = b.if_contains("is_error"); e != nullptr && e->is_bool() &&
                                                          e->get_bool()) {
      text = text.empty() ? "Error" : "Error: " + text;
    }
    json::object m;
    m["role"] = "tool";
    m["tool_call_id"] = *id;
    m["content"] = std::move(text);
    messages_.emplace_back(std::move(m));
  }

  void user_turn(const json::array& blocks, const std::string& at) {
    json::array parts;
    for (std::size_t k = 0; k < blocks.size() && !refusal; ++k) {
      const std::string bat = at + ".content." + std::to_string(k);
      const json::object* b = blocks[k].if_object();
      const json::string* type = b != nullptr ? string_member(*b, "type") : nullptr;
      if (type == nullptr) {
        return refuse(bat + ".type: Field required", bat + ".type");
      }
      if (*type == "text") {
        const json::string* t = string_member(*b, "text");
        if (t == nullptr) {
          return refuse(bat + ".text: Field required", bat + ".text");
        }
        parts.emplace_back(text_part(*t));
      } else if (*type == "image") {
        if (auto part = image_part(*b, bat)) {
          parts.emplace_back(std::move(*part));
        }
      } else if (*type == "tool_result") {
        // Tool messages answer the previous assistant turn's calls: they come first.
        tool_result(*b, bat, parts);
      } else if (*type != "thinking" && *type != "redacted_thinking") {
        unsupported(*type, bat);
      }
    }
    if (refusal || parts.empty()) {
      return;
    }
    json::object m;
    m["role"] = "user";
    if (parts.size() == 1 && parts[0].get_object().at("type").get_string() == "text") {
      m["content"] = parts[0].get_object().at("text");
    } else {
      m["content"] = std::move(parts);
    }
    messages_.emplace_back(std::move(m));
  }

  void assistant_turn(const json::array& blocks, const std::string& at) {
    std::string text;
    json::array calls;
    for (std::size_t k = 0; k < blocks.size(); ++k) {
      const std::string bat = at + ".content." + std::to_string(k);
      const json::object* b = blocks[k].if_object();
      const json::string* type = b != nullptr ? string_member(*b, "type") : nullptr;
      if (type == nullptr) {
        return refuse(bat + ".type: Field required", bat + ".type");
      }
      if (*type == "text") {
        const json::string* t = string_member(*b, "text");
        if (t == nullptr) {
          return refuse(bat + ".text: Field required", bat + ".text");
        }
        if (!text.empty() && !t->empty()) {
          text += '\n';
        }
        text += *t;
      } else if (*type == "tool_use") {
        const json::string* id = string_member(*b, "id");
        const json::string* name = string_member(*b, "name");
        if (id == nullptr || name == nullptr) {
          return refuse(bat + ": tool_use blocks need id and name", bat);
        }
        json::object call;
        call["id"] = *id;
        call["type"] = "function";
        json::object& fn = call["function"].emplace_object();
        fn["name"] = *name;
        const json::value* input = b->if_contains("input");
        fn["arguments"] =
            input != nullptr && !input->is_null() ? messages_detail::to_json(*input) : "{}";
        calls.emplace_back(std::move(call));
      } else if (*type != "thinking" && *type != "redacted_thinking") {
        return unsupported(*type, bat);
      }
    }
    json::object m;
    m["role"] = "assistant";
    if (calls.empty()) {
      m["content"] = std::move(text);
    } else {
      if (text.empty()) {
        m["content"] = nullptr;
      } else {
        m["content"] = std::move(text);
      }
      m["tool_calls"] = std::move(calls);
    }
    messages_.emplace_back(std::move(m));
  }

  json::array& messages_;
};

/// `tools` → OpenAI function tools; nullopt when refused.
std::optional<Refusal> convert_tools(const json::array& tools, json::array& out) {
  for (std::size_t i = 0; i < tools.size(); ++i) {
    const std::string at = "tools." + std::to_string(i);
    const json::object* t = tools[i].if_object();
    if (t == nullptr) {
      return Refusal{at + ": Input should be a valid dictionary or object", at};
    }
    if (const json::value* type = t->if_contains("type");
        type != nullptr && !type->is_null() &&
        (!type->is_string() || type->get_string() != "custom")) {
      const json::string* s = type->if_string();
      return Refusal{at + ".type: the tool type '" +
                         std::string(s != nullptr ? std::string_view(*s) : "?") +
                         "' (a tool Anthropic defines) cannot be sent to this model's provider; "
                         "define it as a custom tool with an input_schema.",
                     at + ".type"};
    }
    const json::value* name = t->if_contains("name");
    if (name == nullptr || !name->is_string()) {
      return Refusal{at + ".name: Field required", at + ".name"};
    }
    json::object fn;
    fn["name"] = *name;
    if (const json::value* d = t->if_contains("description"); d != nullptr && d->is_string()) {
      fn["description"] = *d;
    }
    const json::value* schema = t->if_contains("input_schema");
    if (schema == nullptr || !schema->is_object()) {
      return Refusal{at + ".input_schema: Field required", at + ".input_schema"};
    }
    fn["parameters"] = *schema;
    json::object tool;
    tool["type"] = "function";
    tool["function"] = std::move(fn);
    out.emplace_back(std::move(tool));
  }
  return std::nullopt;
}

/// `tool_choice` → OpenAI's, and parallel_tool_calls from disable_parallel_tool_use.
std::optional<Refusal> convert_tool_choice(const json::object& tc, json::object& out) {
  const json::value* type = tc.if_contains("type");
  const json::string* t = type != nullptr ? type->if_string() : nullptr;
  if (t != nullptr && *t == "auto") {
    out["tool_choice"] = "auto";
  } else if (t != nullptr && *t == "any") {
    out["tool_choice"] = "required";
  } else if (t != nullptr && *t == "none") {
    out["tool_choice"] = "none";
  } else if (t != nullptr && *t == "tool") {
    const json::value* name = tc.if_contains("name");
    if (name == nullptr || !name->is_string()) {
      return Refusal{"tool_choice.name: Field required", "tool_choice.name"};
    }
    json::object choice;
    choice["type"] = "function";
    choice["function"].emplace_object()["name"] = *name;
    out["tool_choice"] = std::move(choice);
  } else {
    return Refusal{
        "tool_choice.type: Input should be 'auto', 'any', 'tool' or 'none'", "tool_choice.type"};
  }
  if (const json::value* d = tc.if_contains("disable_parallel_tool_use");
      d != nullptr && d->is_bool() && d->get_bool() && *t != "none") {
    out["parallel_tool_calls"] = false;
  }
  return std::nullopt;
}

}  // namespace

std::optional<Refusal> messages_to_chat(std::string_view body, std::string_view model,
                                        bool stream, std::string& out) {
  json::monotonic_resource mr;
  boost::system::error_code ec;
  json::parse_options opt;
  opt.max_depth = 64;  // as inspect_messages_request
  const json::value doc = json::parse(body, ec, &mr, opt);
  if (ec || !doc.is_object()) {
    return Refusal{"The request body is not a valid Messages request.", ""};
  }
  const json::object& req = doc.get_object();
  const json::value* messages = req.if_contains("messages");
  if (messages == nullptr || !messages->is_array()) {
    return Refusal{"messages: Field required", "messages"};
  }

  json::object chat(&mr);
  chat["model"] = model;
  json::array& chat_messages = chat["messages"].emplace_array();
  ChatBuilder builder(chat_messages);
  if (const json::value* system = req.if_contains("system")) {
    builder.system(*system);
  }
  const json::array& turns = messages->get_array();
  for (std::size_t i = 0; i < turns.size() && !builder.refusal; ++i) {
    if (const json::object* m = turns[i].if_object()) {
      builder.message(*m, i);
    }
  }
  if (builder.refusal) {
    return builder.refusal;
  }
  if (const json::value* v = req.if_contains("max_tokens"); v != nullptr && v->is_number()) {
    chat["max_tokens"] = *v;
  }
  if (stream) {
    chat["stream"] = true;
    chat["stream_options"].emplace_object()["include_usage"] = true;
  }
  if (const json::value* v = req.if_contains("stop_sequences");
      v != nullptr && v->is_array() && !v->get_array().empty()) {
    chat["stop"] = *v;
  }
  for (const std::string_view name : {std::string_view("temperature"), std::string_view("top_p")}) {
    if (const json::value* v = req.if_contains(name); v != nullptr && v->is_number()) {
      chat[name] = *v;
    }
  }
  // OpenAI refuses tool_choice and parallel_tool_calls without tools.
  if (const json::value* v = req.if_contains("tools");
      v != nullptr && v->is_array() && !v->get_array().empty()) {
    json::array& tools = chat["tools"].emplace_array();
    if (auto r = convert_tools(v->get_array(), tools)) {
      return r;
    }
    if (const json::value* tc = req.if_contains("tool_choice"); tc != nullptr && tc->is_object()) {
      if (auto r = convert_tool_choice(tc->get_object(), chat)) {
        return r;
      }
    }
  }
  if (const json::value* md = req.if_contains("metadata"); md != nullptr && md->is_object()) {
    if (const json::value* user = md->get_object().if_contains("user_id");
        user != nullptr && user->is_string()) {
      chat["user"] = *user;
    }
  }
  out.clear();
  if (!core::append_json(out, chat)) {
    return Refusal{"The request holds a number out of range.", ""};
  }
  return std::nullopt;
}

}  // namespace llmgw::providers
