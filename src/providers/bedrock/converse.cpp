#include "providers/bedrock/converse.hpp"

#include "core/json.hpp"
#include "providers/stream_util.hpp"

#include <boost/json/monotonic_resource.hpp>
#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>
#include <boost/json/value.hpp>

#include <array>

namespace llmgw::providers::bedrock {

namespace {

namespace json = boost::json;

/// Bedrock's limit on a requestMetadata value (RequestMetadata in the API reference).
constexpr std::size_t kMaxMetadataValue = 256;
/// The stack part of a call's JSON arena; larger documents continue on the heap.
constexpr std::size_t kArenaBytes = 8192;

std::string indexed(std::string_view name, std::size_t i) {
  return std::string(name) + "[" + std::to_string(i) + "]";
}

bool is_blank(std::string_view s) noexcept {
  return s.find_first_not_of(" \t\r\n\f\v") == std::string_view::npos;
}

char lower(char c) noexcept { return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c; }

bool iequals(std::string_view a, std::string_view b) noexcept {
  if (a.size() != b.size()) {
    return false;
  }
  for (std::size_t i = 0; i < a.size(); ++i) {
    if (lower(a[i]) != lower(b[i])) {
      return false;
    }
  }
  return true;
}

bool istarts_with(std::string_view s, std::string_view prefix) noexcept {
  return s.size() >= prefix.size() && iequals(s.substr(0, prefix.size()), prefix);
}

/// A member that is present and not null.
const json::value* member(const json::object& o, std::string_view key) {
  const json::value* v = o.if_contains(key);
  return v != nullptr && !v->is_null() ? v : nullptr;
}

std::string_view string_member(const json::object& o, std::string_view key) {
  const json::value* v = member(o, key);
  return v != nullptr && v->is_string() ? std::string_view(v->get_string()) : std::string_view{};
}

/// Converse's image format for a MIME type or a file extension; empty if it has none.
std::string_view image_format(std::string_view name) noexcept {
  static constexpr std::array<std::pair<std::string_view, std::string_view>, 10> kFormats{{
      {"image/png", "png"},
      {"image/jpeg", "jpeg"},
      {"image/jpg", "jpeg"},
      {"image/gif", "gif"},
      {"image/webp", "webp"},
      {".png", "png"},
      {".jpeg", "jpeg"},
      {".jpg", "jpeg"},
      {".gif", "gif"},
      {".webp", "webp"},
  }};
  for (const auto& [key, format] : kFormats) {
    if (iequals(name, key)) {
      return format;
    }
  }
  return {};
}

/// The image block for an OpenAI image URL: a base64 data URL or an s3:// URI.
std::optional<Refusal> image_block(std::string_view url, const std::string& param,
                                   json::array& blocks) {
  if (istarts_with(url, "data:")) {
    const auto d = parse_data_url(url);
    if (!d) {
      return Refusal{"Invalid image data URL: expected data:image/<format>;base64,<data>.", param};
    }
    const std::string_view format = image_format(d->mime);
    if (format.empty()) {
      return Refusal{"Image type '" + std::string(d->mime) +
                         "' is not supported by Bedrock: use png, jpeg, gif or webp.",
                     param};
    }
    blocks.push_back(json::object{
        {"image",
         json::object{{"format", format}, {"source", json::object{{"bytes", d->data}}}}}});
    return std::nullopt;
  }
  if (istarts_with(url, "s3://")) {
    const std::size_t dot = url.rfind('.');
    const std::string_view format =
        dot == std::string_view::npos || url.find('/', dot) != std::string_view::npos
            ? std::string_view{}
            : image_format(url.substr(dot));
    if (format.empty()) {
      return Refusal{
          "The image format of an s3:// URI is told by its extension: .png, .jpg, .jpeg, .gif "
          "or .webp.",
          param};
    }
    blocks.push_back(json::object{
        {"image",
         json::object{{"format", format},
                      {"source", json::object{{"s3Location", json::object{{"uri", url}}}}}}}});
    return std::nullopt;
  }
  return Refusal{
      "Bedrock's Converse API does not fetch image URLs: send the image as a base64 data URL "
      "(data:image/png;base64,...) or an s3:// URI.",
      param};
}

void add_text(json::array& blocks, std::string_view text) {
  if (!is_blank(text)) {
    blocks.push_back(json::object{{"text", text}});
  }
}

/// Appends the blocks of an OpenAI message `content` (a string, an array of parts or null).
/// Images only where `images` (user messages).
std::optional<Refusal> content_blocks(const json::value* content, bool images,
                                      const std::string& param, json::array& blocks) {
  if (content == nullptr) {
    return std::nullopt;
  }
  if (content->is_string()) {
    add_text(blocks, content->get_string());
    return std::nullopt;
  }
  const json::array* parts = content->if_array();
  if (parts == nullptr) {
    return Refusal{"Invalid type for 'content': expected a string or an array of parts.",
                   param + ".content"};
  }
  for (std::size_t j = 0; j < parts->size(); ++j) {
    const std::string part_param = param + indexed(".content", j);
    const json::object* part = (*parts)[j].if_object();
    const std::string_view type = part != nullptr ? string_member(*part, "type") : "";
    if (type == "text" || type == "refusal") {
      const json::value* text = member(*part, type);
      if (text == nullptr || !text->is_string()) {
        return Refusal{"Invalid content part: '" + std::string(type) + "' must be a string.",
                       part_param + "." + std::string(type)};
      }
      add_text(blocks, text->get_string());
    } else if (type == "image_url" && images) {
      const json::value* image = member(*part, "image_url");
      std::string_view url;
      if (image != nullptr && image->is_string()) {
        url = image->get_string();
      } else if (image != nullptr && image->is_object()) {
        url = string_member(image->get_object(), "url");
      }
      if (url.empty()) {
        return Refusal{"Invalid image part: 'image_url.url' is required.",
                       part_param + ".image_url.url"};
      }
      if (auto r = image_block(url, part_param + ".image_url.url", blocks)) {
        return r;
      }
    } else {
      return Refusal{type.empty() ? std::string("Invalid content part: 'type' is required.")
                                  : "Content parts of type '" + std::string(type) +
                                        "' are not supported by the bedrock provider here.",
                     part_param + ".type"};
    }
  }
  return std::nullopt;
}

/// The toolResult content of an OpenAI tool message: its text, as one or more text blocks.
std::optional<Refusal> tool_result_content(const json::value* content, const std::string& param,
                                           json::array& out) {
  if (content == nullptr) {
    out.push_back(json::object{{"text", ""}});
    return std::nullopt;
  }
  if (content->is_string()) {
    out.push_back(json::object{{"text", content->get_string()}});
    return std::nullopt;
  }
  json::array blocks;
  if (auto r = content_blocks(content, false, param, blocks)) {
    return r;
  }
  if (blocks.empty()) {
    blocks.push_back(json::object{{"text", ""}});
  }
  for (auto& b : blocks) {
    out.push_back(std::move(b));
  }
  return std::nullopt;
}

/// The toolUse blocks of an assistant message's tool_calls.
std::optional<Refusal> tool_use_blocks(const json::value& calls, const std::string& param,
                                       json::array& blocks) {
  const json::array* list = calls.if_array();
  if (list == nullptr) {
    return Refusal{"Invalid type for 'tool_calls': expected an array.", param + ".tool_calls"};
  }
  for (std::size_t k = 0; k < list->size(); ++k) {
    const std::string call_param = param + indexed(".tool_calls", k);
    const json::object* call = (*list)[k].if_object();
    const json::value* fn = call != nullptr ? member(*call, "function") : nullptr;
    const json::object* function = fn != nullptr ? fn->if_object() : nullptr;
    const std::string_view id = call != nullptr ? string_member(*call, "id") : "";
    const std::string_view name = function != nullptr ? string_member(*function, "name") : "";
    if (id.empty() || name.empty()) {
      return Refusal{"Invalid tool call: 'id' and 'function.name' are required.", call_param};
    }
    const std::string_view arguments = string_member(*function, "arguments");
    json::value input = json::object{};
    if (!is_blank(arguments)) {
      boost::system::error_code ec;
      input = json::parse(arguments, ec);
      if (ec) {
        return Refusal{"Invalid tool call: 'function.arguments' is not valid JSON.",
                       call_param + ".function.arguments"};
      }
    }
    blocks.push_back(json::object{
        {"toolUse", json::object{{"toolUseId", id}, {"name", name}, {"input", std::move(input)}}}});
  }
  return std::nullopt;
}

/// The Converse conversation: system blocks apart, roles alternating.
struct Conversation {
  json::array system;
  json::array messages;
  bool tool_blocks = false;  ///< toolUse or toolResult blocks: Converse then needs toolConfig

  void push(std::string_view role, json::array blocks) {
    if (blocks.empty()) {
      return;
    }
    if (!messages.empty()) {
      json::object& last = messages.back().as_object();
      if (last["role"].as_string() == role) {
        json::array& content = last["content"].as_array();
        for (auto& b : blocks) {
          content.push_back(std::move(b));
        }
        return;
      }
    }
    messages.push_back(json::object{{"role", role}, {"content", std::move(blocks)}});
  }
};

std::optional<Refusal> convert_messages(const json::array& in, Conversation& c) {
  for (std::size_t i = 0; i < in.size(); ++i) {
    const std::string param = indexed("messages", i);
    const json::object* m = in[i].if_object();
    const std::string_view role = m != nullptr ? string_member(*m, "role") : "";
    json::array blocks;
    if (role == "system" || role == "developer") {
      if (auto r = content_blocks(member(*m, "content"), false, param, blocks)) {
        return r;
      }
      for (auto& b : blocks) {
        c.system.push_back(std::move(b));
      }
    } else if (role == "user") {
      if (auto r = content_blocks(member(*m, "content"), true, param, blocks)) {
        return r;
      }
      c.push("user", std::move(blocks));
    } else if (role == "assistant") {
      if (auto r = content_blocks(member(*m, "content"), false, param, blocks)) {
        return r;
      }
      if (const json::value* calls = member(*m, "tool_calls")) {
        const std::size_t before = blocks.size();
        if (auto r = tool_use_blocks(*calls, param, blocks)) {
          return r;
        }
        c.tool_blocks = c.tool_blocks || blocks.size() > before;
      }
      if (member(*m, "function_call") != nullptr) {
        return Refusal{"'function_call' is deprecated and not translated for the bedrock "
                       "provider: use 'tool_calls'.",
                       param + ".function_call"};
      }
      c.push("assistant", std::move(blocks));
    } else if (role == "tool") {
      const std::string_view id = string_member(*m, "tool_call_id");
      if (id.empty()) {
        return Refusal{"Invalid tool message: 'tool_call_id' is required.",
                       param + ".tool_call_id"};
      }
      json::array content;
      if (auto r = tool_result_content(member(*m, "content"), param, content)) {
        return r;
      }
      blocks.push_back(json::object{
          {"toolResult", json::object{{"toolUseId", id}, {"content", std::move(content)}}}});
      c.tool_blocks = true;
      c.push("user", std::move(blocks));
    } else {
      return Refusal{role.empty() ? std::string("Invalid message: 'role' is required.")
                                  : "Messages of role '" + std::string(role) +
                                        "' are not supported by the bedrock provider.",
                     param + ".role"};
    }
  }
  if (c.messages.empty()) {
    return Refusal{"The bedrock provider needs at least one user message with content.",
                   "messages"};
  }
  return std::nullopt;
}

std::optional<Refusal> convert_tools(const json::object& req, const Conversation& c,
                                     json::object& body) {
  json::array tools;
  if (const json::value* list = member(req, "tools")) {
    if (!list->is_array()) {
      return Refusal{"Invalid type for 'tools': expected an array.", "tools"};
    }
    const json::array& a = list->get_array();
    for (std::size_t k = 0; k < a.size(); ++k) {
      const std::string param = indexed("tools", k);
      const json::object* t = a[k].if_object();
      if (t == nullptr || string_member(*t, "type") != "function") {
        return Refusal{"The bedrock provider takes tools of type 'function' only.",
                       param + ".type"};
      }
      const json::value* fn = member(*t, "function");
      const json::object* f = fn != nullptr ? fn->if_object() : nullptr;
      const std::string_view name = f != nullptr ? string_member(*f, "name") : "";
      if (name.empty()) {
        return Refusal{"Invalid tool: 'function.name' is required.", param + ".function.name"};
      }
      json::object spec{{"name", name}};
      if (const std::string_view d = string_member(*f, "description"); !d.empty()) {
        spec["description"] = d;
      }
      const json::value* schema = member(*f, "parameters");
      spec["inputSchema"] = json::object{
          {"json", schema != nullptr && schema->is_object()
                       ? *schema
                       : json::value(json::object{{"type", "object"},
                                                  {"properties", json::object{}}})}};
      if (const json::value* strict = member(*f, "strict");
          strict != nullptr && strict->is_bool() && strict->get_bool()) {
        spec["strict"] = true;
      }
      tools.push_back(json::object{{"toolSpec", std::move(spec)}});
    }
  }

  json::value choice;  // null: none given
  bool none = false;
  if (const json::value* tc = member(req, "tool_choice")) {
    const std::string_view mode = tc->is_string() ? std::string_view(tc->get_string()) : "";
    const json::object* named = tc->if_object();
    const json::value* fn = named != nullptr && string_member(*named, "type") == "function"
                                ? member(*named, "function")
                                : nullptr;
    const std::string_view name =
        fn != nullptr && fn->is_object() ? string_member(fn->get_object(), "name") : "";
    if (mode == "none") {
      none = true;
    } else if (mode == "auto") {
      choice = json::object{{"auto", json::object{}}};
    } else if (mode == "required") {
      choice = json::object{{"any", json::object{}}};
    } else if (!name.empty()) {
      choice = json::object{{"tool", json::object{{"name", name}}}};
    } else {
      return Refusal{
          "The bedrock provider takes tool_choice 'none', 'auto', 'required' or a named "
          "function.",
          "tool_choice"};
    }
    if (!choice.is_null() && tools.empty()) {
      return Refusal{"'tool_choice' needs 'tools'.", "tool_choice"};
    }
  }
  if (tools.empty() || (none && !c.tool_blocks)) {
    return std::nullopt;
  }
  json::object config{{"tools", std::move(tools)}};
  if (!choice.is_null() && !none) {
    config["toolChoice"] = std::move(choice);
  }
  body["toolConfig"] = std::move(config);
  return std::nullopt;
}

std::optional<Refusal> convert_inference(const json::object& req, json::object& body) {
  json::object config;
  const json::value* max = member(req, "max_completion_tokens");
  const char* max_name = "max_completion_tokens";
  if (max == nullptr) {
    max = member(req, "max_tokens");
    max_name = "max_tokens";
  }
  if (max != nullptr) {
    if (!max->is_int64() && !max->is_uint64()) {
      return Refusal{std::string("Invalid type for '") + max_name + "': expected an integer.",
                     max_name};
    }
    config["maxTokens"] = *max;
  }
  for (const auto& [from, to] : {std::pair{"temperature", "temperature"}, {"top_p", "topP"}}) {
    if (const json::value* v = member(req, from)) {
      if (!v->is_number()) {
        return Refusal{std::string("Invalid type for '") + from + "': expected a number.", from};
      }
      config[to] = *v;
    }
  }
  if (const json::value* stop = member(req, "stop")) {
    json::array sequences;
    if (stop->is_string()) {
      if (!stop->get_string().empty()) {
        sequences.push_back(stop->get_string());
      }
    } else if (const json::array* list = stop->if_array()) {
      for (const auto& s : *list) {
        if (!s.is_string()) {
          return Refusal{"Invalid type for 'stop': expected a string or an array of strings.",
                         "stop"};
        }
        if (!s.get_string().empty()) {
          sequences.push_back(s);
        }
      }
    } else {
      return Refusal{"Invalid type for 'stop': expected a string or an array of strings.", "stop"};
    }
    if (!sequences.empty()) {
      config["stopSequences"] = std::move(sequences);
    }
  }
  if (!config.empty()) {
    body["inferenceConfig"] = std::move(config);
  }
  return std::nullopt;
}

std::optional<Refusal> convert_response_format(const json::object& req, json::object& body) {
  const json::value* rf = member(req, "response_format");
  if (rf == nullptr) {
    return std::nullopt;
  }
  const json::object* o = rf->if_object();
  const std::string_view type = o != nullptr ? string_member(*o, "type") : "";
  if (type == "text") {
    return std::nullopt;
  }
  if (type == "json_object") {
    return Refusal{
        "Bedrock's Converse API has no JSON mode without a schema: use response_format "
        "{\"type\": \"json_schema\"}.",
        "response_format.type"};
  }
  if (type != "json_schema") {
    return Refusal{"Invalid 'response_format.type': expected text, json_object or json_schema.",
                   "response_format.type"};
  }
  const json::value* js = member(*o, "json_schema");
  const json::object* spec = js != nullptr ? js->if_object() : nullptr;
  const json::value* schema = spec != nullptr ? member(*spec, "schema") : nullptr;
  if (schema == nullptr || !schema->is_object()) {
    return Refusal{"'response_format.json_schema.schema' must be a JSON schema object.",
                   "response_format.json_schema.schema"};
  }
  // Bedrock takes the schema as a string of JSON (JsonSchemaDefinition.schema).
  json::object definition{{"schema", json::serialize(*schema)}};
  if (const std::string_view name = string_member(*spec, "name"); !name.empty()) {
    definition["name"] = name;
  }
  if (const std::string_view d = string_member(*spec, "description"); !d.empty()) {
    definition["description"] = d;
  }
  body["outputConfig"] = json::object{
      {"textFormat", json::object{{"type", "json_schema"},
                                  {"structure", json::object{{"jsonSchema",
                                                              std::move(definition)}}}}}};
  return std::nullopt;
}

/// Bedrock's requestMetadata value pattern: [a-zA-Z0-9\s:_@$#=/+,-.]{0,256}.
bool fits_metadata(std::string_view v) noexcept {
  if (v.empty() || v.size() > kMaxMetadataValue) {
    return false;
  }
  for (const char c : v) {
    const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                    std::string_view(" \t\r\n\f\v:_@$#=/+,-.").find(c) != std::string_view::npos;
    if (!ok) {
      return false;
    }
  }
  return true;
}

/// Parameters whose answer Converse cannot give.
std::optional<Refusal> refuse_unsupported(const json::object& req) {
  if (const json::value* n = member(req, "n")) {
    boost::system::error_code ec;
    if (!n->is_number() || n->to_number<double>(ec) != 1.0 || ec) {
      return Refusal{"The bedrock provider answers one choice per call: 'n' must be 1.", "n"};
    }
  }
  if (const json::value* lp = member(req, "logprobs"); lp != nullptr && lp->is_bool() &&
                                                       lp->get_bool()) {
    return Refusal{"The bedrock provider does not return logprobs.", "logprobs"};
  }
  if (member(req, "audio") != nullptr) {
    return Refusal{"The bedrock provider does not produce audio.", "audio"};
  }
  if (const json::value* mod = member(req, "modalities"); mod != nullptr && mod->is_array()) {
    for (const auto& m : mod->get_array()) {
      if (!m.is_string() || m.get_string() != "text") {
        return Refusal{"The bedrock provider produces text only.", "modalities"};
      }
    }
  }
  if (member(req, "functions") != nullptr || member(req, "function_call") != nullptr) {
    return Refusal{"'functions' is deprecated and not translated for the bedrock provider: use "
                   "'tools'.",
                   member(req, "functions") != nullptr ? "functions" : "function_call"};
  }
  return std::nullopt;
}

}  // namespace

std::optional<Refusal> build_converse_request(std::string_view openai_body, std::string& out) {
  // The client's document lives for this call: parsed into an arena that starts on the stack.
  alignas(16) unsigned char arena[kArenaBytes];
  json::monotonic_resource mr(arena, sizeof arena);
  boost::system::error_code ec;
  const json::value v = json::parse(openai_body, ec, &mr);
  if (ec || !v.is_object()) {
    return Refusal{"The request body is not a JSON object.", ""};
  }
  const json::object& req = v.get_object();
  if (auto r = refuse_unsupported(req)) {
    return r;
  }
  const json::value* messages = member(req, "messages");
  if (messages == nullptr || !messages->is_array()) {
    return Refusal{"Missing required parameter: 'messages'.", "messages"};
  }
  Conversation c;
  if (auto r = convert_messages(messages->get_array(), c)) {
    return r;
  }
  json::object body;
  body["messages"] = std::move(c.messages);
  if (!c.system.empty()) {
    body["system"] = std::move(c.system);
  }
  if (auto r = convert_inference(req, body)) {
    return r;
  }
  if (auto r = convert_tools(req, c, body)) {
    return r;
  }
  if (auto r = convert_response_format(req, body)) {
    return r;
  }
  if (const std::string_view user = string_member(req, "user"); fits_metadata(user)) {
    body["requestMetadata"] = json::object{{"user", user}};
  }
  out.clear();
  if (!core::append_json(out, json::value(std::move(body)))) {
    out.clear();
    return Refusal{"The request holds a number out of range.", ""};
  }
  return std::nullopt;
}

std::string_view finish_reason(std::string_view stop_reason) noexcept {
  if (stop_reason == "max_tokens" || stop_reason == "model_context_window_exceeded") {
    return "length";
  }
  if (stop_reason == "tool_use") {
    return "tool_calls";
  }
  if (stop_reason == "guardrail_intervened" || stop_reason == "content_filtered") {
    return "content_filter";
  }
  return "stop";  // end_turn, stop_sequence, and what a newer Bedrock may add
}

ProviderError map_error(unsigned status, std::string message, std::string_view retry_after) {
  constexpr unsigned kModelError = 424;
  constexpr unsigned kBadGateway = 502;
  if (status == kModelError) {
    if (message.empty()) {
      message = "The provider answered HTTP 424.";
    }
    return map_status(kBadGateway, std::move(message), retry_after);
  }
  return map_status(status, std::move(message), retry_after);
}

bool translate_converse_answer(const CallInput& in, std::string_view body, std::string& out,
                               Answer& answer) {
  alignas(16) unsigned char arena[kArenaBytes];
  json::monotonic_resource mr(arena, sizeof arena);
  boost::system::error_code ec;
  const json::value v = json::parse(body, ec, &mr);
  const json::object* root = ec ? nullptr : v.if_object();
  const json::value* output = root != nullptr ? member(*root, "output") : nullptr;
  const json::value* message =
      output != nullptr && output->is_object() ? member(output->get_object(), "message") : nullptr;
  const json::value* content = message != nullptr && message->is_object()
                                   ? member(message->get_object(), "content")
                                   : nullptr;
  if (content == nullptr || !content->is_array()) {
    return false;
  }
  std::string text;
  std::string reasoning;
  std::string tool_calls;
  for (const auto& block : content->get_array()) {
    const json::object* b = block.if_object();
    if (b == nullptr) {
      return false;
    }
    if (const json::value* t = member(*b, "text")) {
      if (!t->is_string()) {
        return false;
      }
      text += t->get_string();
    } else if (const json::value* use = member(*b, "toolUse")) {
      const json::object* u = use->if_object();
      if (u == nullptr || string_member(*u, "toolUseId").empty() ||
          string_member(*u, "name").empty()) {
        return false;
      }
      const json::value* input = member(*u, "input");
      tool_calls += tool_calls.empty() ? "[" : ",";
      tool_calls += R"({"id":)";
      core::append_json_string(tool_calls, string_member(*u, "toolUseId"));
      tool_calls += R"(,"type":"function","function":{"name":)";
      core::append_json_string(tool_calls, string_member(*u, "name"));
      tool_calls += R"(,"arguments":)";
      core::append_json_string(tool_calls, input != nullptr ? json::serialize(*input) : "{}");
      tool_calls += "}}";
    } else if (const json::value* rc = member(*b, "reasoningContent")) {
      const json::value* rt =
          rc->is_object() ? member(rc->get_object(), "reasoningText") : nullptr;
      if (rt != nullptr && rt->is_object()) {
        reasoning += string_member(rt->get_object(), "text");
      }
    }
    // Other blocks (citationsContent, guardContent, image...) have no OpenAI chat field.
  }
  answer.usage = {};
  if (const json::value* usage = member(*root, "usage"); usage != nullptr && usage->is_object()) {
    if (!pricing::normalize_bedrock(json::serialize(*usage), answer.usage)) {
      answer.usage = {};
    }
  }

  out.clear();
  out += R"({"id":)";
  core::append_json_string(out, "chatcmpl-" + std::string(in.request_id));
  out += R"(,"object":"chat.completion","created":)";
  out += std::to_string(in.created);
  out += R"(,"model":)";
  core::append_json_string(out, in.upstream_model);
  out += R"(,"choices":[{"index":0,"message":{"role":"assistant","content":)";
  if (text.empty() && !tool_calls.empty()) {
    out += "null";
  } else {
    core::append_json_string(out, text);
  }
  if (!reasoning.empty()) {
    out += R"(,"reasoning_content":)";
    core::append_json_string(out, reasoning);
  }
  if (!tool_calls.empty()) {
    out += R"(,"tool_calls":)";
    out += tool_calls;
    out += "]";
  }
  out += R"(,"refusal":null},"logprobs":null,"finish_reason":)";
  core::append_json_string(out, finish_reason(string_member(*root, "stopReason")));
  out += "}]";
  if (answer.usage.reported) {
    out += R"(,"usage":)";
    append_openai_usage(out, answer.usage);
  }
  out += "}";
  return true;
}

}  // namespace llmgw::providers::bedrock
