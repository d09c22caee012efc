#include "providers/gemini/codec.hpp"

#include "core/json.hpp"
#include "providers/stream_util.hpp"

#include <boost/json/parse.hpp>
#include <boost/json/value.hpp>
#include <openssl/evp.h>

#include <algorithm>
#include <array>
#include <bit>
#include <charconv>
#include <cctype>
#include <cmath>
#include <cstring>
#include <map>
#include <vector>

namespace llmgw::providers::gemini {

namespace json = boost::json;

namespace {

constexpr std::string_view kThoughtSeparator = "__ts__";
constexpr std::size_t kMaxChoices = 64;  // Gemini allows 8 candidates; more is a broken answer
constexpr std::size_t kMaxJsonDepth = 64;

// Gemini 2.x thinking budgets for OpenAI's reasoning_effort (the values Google's own
// OpenAI-compatible endpoint documents for low / medium / high).
constexpr std::int64_t kBudgetMinimal = 512;
constexpr std::int64_t kBudgetLow = 1024;
constexpr std::int64_t kBudgetMedium = 8192;
constexpr std::int64_t kBudgetHigh = 24576;

// ------------------------------------------------------------------------------------------
// JSON helpers

const json::object* parse_object(std::string_view text, json::value& holder) {
  boost::system::error_code ec;
  json::parse_options opts;
  opts.max_depth = kMaxJsonDepth;
  holder = json::parse(text, ec, {}, opts);
  if (ec || !holder.is_object()) {
    return nullptr;
  }
  return &holder.get_object();
}

const json::value* member(const json::object& o, std::string_view key) {
  const json::value* v = o.if_contains(key);
  return v != nullptr && !v->is_null() ? v : nullptr;
}

std::string_view string_member(const json::object& o, std::string_view key) {
  const json::value* v = o.if_contains(key);
  return v != nullptr && v->is_string() ? std::string_view(v->get_string()) : std::string_view();
}

void append_number(std::string& out, double d) {
  if (!std::isfinite(d)) {
    out += "0";
    return;
  }
  std::array<char, 32> buf{};
  const auto r = std::to_chars(buf.data(), buf.data() + buf.size(), d);
  out.append(buf.data(), r.ptr);
}

/// Compact JSON of a value parsed from a provider's answer; "{}" for one with a number JSON
/// cannot carry.
std::string to_json(const json::value& v) {
  std::string s;
  return core::append_json(s, v) ? s : std::string("{}");
}

std::optional<double> as_number(const json::value& v) {
  if (v.is_int64()) {
    return static_cast<double>(v.get_int64());
  }
  if (v.is_uint64()) {
    return static_cast<double>(v.get_uint64());
  }
  if (v.is_double()) {
    return v.get_double();
  }
  return std::nullopt;
}

std::optional<std::int64_t> as_int(const json::value& v) {
  if (v.is_int64()) {
    return v.get_int64();
  }
  if (v.is_uint64() && v.get_uint64() <= static_cast<std::uint64_t>(INT64_MAX)) {
    return static_cast<std::int64_t>(v.get_uint64());
  }
  if (v.is_double() && std::nearbyint(v.get_double()) == v.get_double() &&
      std::fabs(v.get_double()) < 9e15) {
    return static_cast<std::int64_t>(v.get_double());
  }
  return std::nullopt;
}

Refusal refuse(std::string message, std::string param) {
  return Refusal{std::move(message), std::move(param), core::Errc::BadRequest};
}

Refusal out_of_range() { return refuse("The request holds a number out of range.", ""); }

/// A JSON Schema as Gemini's `*JsonSchema` fields take it: the top-level `$schema` dropped.
json::value clean_schema(const json::value& schema) {
  if (!schema.is_object()) {
    return schema;
  }
  json::object out;  // rebuilt: object::erase moves the last member into the hole
  for (const auto& kv : schema.get_object()) {
    if (kv.key() != "$schema") {
      out.emplace(kv.key(), kv.value());
    }
  }
  return out;
}

// ------------------------------------------------------------------------------------------
// Request: content parts

/// The MIME type of a URL's file, from its extension; image/jpeg when unknown (the part
/// came as an image_url).
std::string_view guess_mime(std::string_view url) {
  url = url.substr(0, url.find_first_of("?#"));
  const std::size_t slash = url.rfind('/');
  const std::size_t dot = url.rfind('.');
  if (dot == std::string_view::npos || (slash != std::string_view::npos && dot < slash)) {
    return "image/jpeg";
  }
  std::string ext(url.substr(dot + 1));
  std::transform(ext.begin(), ext.end(), ext.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  static constexpr std::array<std::pair<std::string_view, std::string_view>, 15> kTypes{{
      {"jpg", "image/jpeg"},
      {"jpeg", "image/jpeg"},
      {"png", "image/png"},
      {"gif", "image/gif"},
      {"webp", "image/webp"},
      {"heic", "image/heic"},
      {"heif", "image/heif"},
      {"pdf", "application/pdf"},
      {"mp3", "audio/mp3"},
      {"wav", "audio/wav"},
      {"flac", "audio/flac"},
      {"ogg", "audio/ogg"},
      {"mp4", "video/mp4"},
      {"mov", "video/mov"},
      {"webm", "video/webm"},
  }};
  for (const auto& [e, mime] : kTypes) {
    if (e == ext) {
      return mime;
    }
  }
  return "image/jpeg";
}

json::object inline_part(std::string_view mime, std::string_view data) {
  json::object inline_data;
  inline_data["mimeType"] = mime;
  inline_data["data"] = data;
  json::object part;
  part["inlineData"] = std::move(inline_data);
  return part;
}

json::object text_part(std::string_view text) {
  json::object part;
  part["text"] = text;
  return part;
}

/// The parts of a user message's `content` (string or array of typed parts).
std::optional<Refusal> user_parts(const json::value& content, const std::string& at,
                                  json::array& parts) {
  if (content.is_string()) {
    if (!content.get_string().empty()) {
      parts.push_back(text_part(content.get_string()));
    }
    return std::nullopt;
  }
  if (!content.is_array()) {
    return refuse("Invalid '" + at + "': expected a string or an array of content parts.", at);
  }
  std::size_t j = 0;
  for (const auto& p : content.get_array()) {
    const std::string pat = at + "[" + std::to_string(j++) + "]";
    if (!p.is_object()) {
      return refuse("Invalid '" + pat + "': expected an object.", pat);
    }
    const json::object& po = p.get_object();
    const std::string_view type = string_member(po, "type");
    if (type == "text") {
      const json::value* t = po.if_contains("text");
      if (t == nullptr || !t->is_string()) {
        return refuse("Invalid '" + pat + ".text': expected a string.", pat + ".text");
      }
      if (!t->get_string().empty()) {
        parts.push_back(text_part(t->get_string()));
      }
    } else if (type == "image_url") {
      const json::value* iu = po.if_contains("image_url");
      std::string_view url;
      if (iu != nullptr && iu->is_string()) {
        url = iu->get_string();
      } else if (iu != nullptr && iu->is_object()) {
        url = string_member(iu->get_object(), "url");
      }
      if (url.empty()) {
        return refuse("Invalid '" + pat + ".image_url.url': expected a URL.",
                      pat + ".image_url.url");
      }
      if (const auto d = parse_data_url(url)) {
        parts.push_back(inline_part(d->mime, d->data));
      } else if (url.substr(0, 5) == "data:") {
        return refuse("Invalid '" + pat + ".image_url.url': a data URL must be base64-encoded.",
                      pat + ".image_url.url");
      } else {
        json::object file;
        file["mimeType"] = guess_mime(url);
        file["fileUri"] = url;
        json::object part;
        part["fileData"] = std::move(file);
        parts.push_back(std::move(part));
      }
    } else if (type == "input_audio") {
      const json::value* ia = po.if_contains("input_audio");
      if (ia == nullptr || !ia->is_object() || string_member(ia->get_object(), "data").empty() ||
          string_member(ia->get_object(), "format").empty()) {
        return refuse("Invalid '" + pat + ".input_audio': expected {data, format}.",
                      pat + ".input_audio");
      }
      const std::string mime = "audio/" + std::string(string_member(ia->get_object(), "format"));
      parts.push_back(inline_part(mime, string_member(ia->get_object(), "data")));
    } else if (type == "file") {
      const json::value* f = po.if_contains("file");
      const auto d = f != nullptr && f->is_object()
                         ? parse_data_url(string_member(f->get_object(), "file_data"))
                         : std::nullopt;
      if (!d) {
        return refuse("Invalid '" + pat +
                          ".file': this provider takes files as base64 data URLs in file_data "
                          "(file_id is not supported).",
                      pat + ".file");
      }
      parts.push_back(inline_part(d->mime, d->data));
    } else {
      return refuse("Invalid '" + pat + ".type': content parts of type '" + std::string(type) +
                        "' are not supported by this provider.",
                    pat + ".type");
    }
  }
  return std::nullopt;
}

/// The text of a system, assistant or tool message's content (string, or its text parts
/// joined with "\n").
std::optional<std::string> content_text(const json::value& content) {
  if (content.is_string()) {
    return std::string(content.get_string());
  }
  if (!content.is_array()) {
    return std::nullopt;
  }
  std::string out;
  bool first = true;
  for (const auto& p : content.get_array()) {
    if (!p.is_object()) {
      return std::nullopt;
    }
    const json::object& po = p.get_object();
    const std::string_view type = string_member(po, "type");
    std::string_view text;
    if (type == "text") {
      text = string_member(po, "text");
    } else if (type == "refusal") {
      text = string_member(po, "refusal");
    } else {
      return std::nullopt;
    }
    if (!first) {
      out += '\n';
    }
    first = false;
    out += text;
  }
  return out;
}

// ------------------------------------------------------------------------------------------
// Request: messages

struct Conversation {
  json::array contents;
  json::array system_parts;
  std::map<std::string, std::string, std::less<>> call_names;  ///< tool call id → name

  void add(std::string_view role, json::array parts) {
    if (parts.empty()) {
      return;
    }
    if (!contents.empty()) {
      json::object& last = contents.back().get_object();
      if (last["role"].as_string() == role) {
        json::array& lp = last["parts"].as_array();
        for (auto& p : parts) {
          lp.push_back(std::move(p));
        }
        return;
      }
    }
    json::object c;
    c["role"] = role;
    c["parts"] = std::move(parts);
    contents.push_back(std::move(c));
  }
};

std::optional<Refusal> assistant_parts(const json::object& m, const std::string& at,
                                       Conversation& conv, json::array& parts) {
  if (const json::value* c = member(m, "content")) {
    const auto text = content_text(*c);
    if (!text) {
      return refuse("Invalid '" + at + ".content': expected a string or text parts.",
                    at + ".content");
    }
    if (!text->empty()) {
      parts.push_back(text_part(*text));
    }
  }
  auto add_call = [&](const json::object& fn, std::string_view id,
                      const std::string& fat) -> std::optional<Refusal> {
    const std::string_view name = string_member(fn, "name");
    if (name.empty()) {
      return refuse("Invalid '" + fat + ".name': expected a function name.", fat + ".name");
    }
    json::value args = json::object();
    const std::string_view arguments = string_member(fn, "arguments");
    if (!arguments.empty()) {
      boost::system::error_code ec;
      args = json::parse(arguments, ec);
      if (ec || !args.is_object()) {
        return refuse("Invalid '" + fat +
                          ".arguments': this provider needs the arguments of an earlier "
                          "function call as a JSON object.",
                      fat + ".arguments");
      }
    }
    json::object call;
    call["name"] = name;
    call["args"] = std::move(args);
    json::object part;
    part["functionCall"] = std::move(call);
    if (const std::size_t ts = id.find(kThoughtSeparator); ts != std::string_view::npos) {
      part["thoughtSignature"] = id.substr(ts + kThoughtSeparator.size());
    }
    parts.push_back(std::move(part));
    if (!id.empty()) {
      conv.call_names[std::string(id)] = std::string(name);
    }
    return std::nullopt;
  };
  if (const json::value* tc = member(m, "tool_calls")) {
    if (!tc->is_array()) {
      return refuse("Invalid '" + at + ".tool_calls': expected an array.", at + ".tool_calls");
    }
    std::size_t j = 0;
    for (const auto& call : tc->get_array()) {
      const std::string cat = at + ".tool_calls[" + std::to_string(j++) + "]";
      const json::value* fn = call.is_object() ? member(call.get_object(), "function") : nullptr;
      if (fn == nullptr || !fn->is_object()) {
        return refuse("Invalid '" + cat + "': expected a function call.", cat);
      }
      if (auto r = add_call(fn->get_object(), string_member(call.get_object(), "id"),
                            cat + ".function")) {
        return r;
      }
    }
  }
  if (const json::value* fc = member(m, "function_call"); fc != nullptr && fc->is_object()) {
    if (auto r = add_call(fc->get_object(), {}, at + ".function_call")) {
      return r;
    }
  }
  return std::nullopt;
}

json::object function_response(std::string_view name, std::string_view text) {
  boost::system::error_code ec;
  json::value response = json::parse(text, ec);
  if (ec || !response.is_object()) {
    json::object wrapped;
    wrapped["content"] = text;
    response = std::move(wrapped);
  }
  json::object fr;
  fr["name"] = name;
  fr["response"] = std::move(response);
  json::object part;
  part["functionResponse"] = std::move(fr);
  return part;
}

std::optional<Refusal> translate_messages(const json::array& messages, Conversation& conv) {
  std::size_t i = 0;
  for (const auto& mv : messages) {
    const std::string at = "messages[" + std::to_string(i++) + "]";
    if (!mv.is_object()) {
      return refuse("Invalid '" + at + "': expected an object.", at);
    }
    const json::object& m = mv.get_object();
    const std::string_view role = string_member(m, "role");
    const json::value* content = member(m, "content");
    if (role == "system" || role == "developer") {
      const auto text = content != nullptr ? content_text(*content) : std::optional<std::string>();
      if (!text) {
        return refuse("Invalid '" + at + ".content': expected a string or text parts.",
                      at + ".content");
      }
      if (!text->empty()) {
        conv.system_parts.push_back(text_part(*text));
      }
    } else if (role == "user") {
      json::array parts;
      if (content == nullptr) {
        return refuse("Missing '" + at + ".content'.", at + ".content");
      }
      if (auto r = user_parts(*content, at + ".content", parts)) {
        return r;
      }
      conv.add("user", std::move(parts));
    } else if (role == "assistant") {
      json::array parts;
      if (auto r = assistant_parts(m, at, conv, parts)) {
        return r;
      }
      conv.add("model", std::move(parts));
    } else if (role == "tool" || role == "function") {
      std::string name;
      if (role == "tool") {
        const std::string_view id = string_member(m, "tool_call_id");
        const auto it = conv.call_names.find(id);
        if (it == conv.call_names.end()) {
          return refuse("Invalid '" + at +
                            ".tool_call_id': it names no tool call of an earlier "
                            "assistant message.",
                        at + ".tool_call_id");
        }
        name = it->second;
      } else {
        name = string_member(m, "name");
        if (name.empty()) {
          return refuse("Missing '" + at + ".name'.", at + ".name");
        }
      }
      const auto text = content != nullptr ? content_text(*content) : std::string();
      if (!text) {
        return refuse("Invalid '" + at + ".content': expected a string or text parts.",
                      at + ".content");
      }
      json::array parts;
      parts.push_back(function_response(name, *text));
      conv.add("user", std::move(parts));
    } else {
      return refuse("Invalid '" + at + ".role': '" + std::string(role) +
                        "' is not a role this provider takes.",
                    at + ".role");
    }
  }
  if (conv.contents.empty()) {
    return refuse("'messages' must hold at least one user or assistant message with content.",
                  "messages");
  }
  return std::nullopt;
}

// ------------------------------------------------------------------------------------------
// Request: tools and generation config

std::optional<Refusal> translate_tools(const json::object& body, json::object& req) {
  const json::value* tools = member(body, "tools");
  json::array decls;
  if (tools != nullptr) {
    if (!tools->is_array()) {
      return refuse("Invalid 'tools': expected an array.", "tools");
    }
    std::size_t i = 0;
    for (const auto& t : tools->get_array()) {
      const std::string at = "tools[" + std::to_string(i++) + "]";
      if (!t.is_object() || string_member(t.get_object(), "type") != "function") {
        return refuse("Invalid '" + at + "': this provider takes tools of type 'function' only.",
                      at + ".type");
      }
      const json::value* fn = member(t.get_object(), "function");
      if (fn == nullptr || !fn->is_object() || string_member(fn->get_object(), "name").empty()) {
        return refuse("Invalid '" + at + ".function': expected {name, description, parameters}.",
                      at + ".function");
      }
      const json::object& f = fn->get_object();
      json::object d;
      d["name"] = string_member(f, "name");
      if (const std::string_view desc = string_member(f, "description"); !desc.empty()) {
        d["description"] = desc;
      }
      if (const json::value* params = member(f, "parameters")) {
        if (!params->is_object()) {
          return refuse("Invalid '" + at + ".function.parameters': expected a JSON Schema object.",
                        at + ".function.parameters");
        }
        d["parametersJsonSchema"] = clean_schema(*params);
      }
      decls.push_back(std::move(d));
    }
  }

  json::object fcc;
  if (const json::value* choice = member(body, "tool_choice")) {
    auto names_of = [](const json::array& list, json::array& names) {
      for (const auto& t : list) {
        const json::value* fn = t.is_object() ? member(t.get_object(), "function") : nullptr;
        const std::string_view name = fn != nullptr && fn->is_object()
                                          ? string_member(fn->get_object(), "name")
                                          : std::string_view();
        if (name.empty()) {
          return false;
        }
        names.push_back(json::string(name));
      }
      return true;
    };
    if (choice->is_string()) {
      const std::string_view c = choice->get_string();
      if (c == "none") {
        fcc["mode"] = "NONE";
      } else if (c == "auto") {
        fcc["mode"] = "AUTO";
      } else if (c == "required") {
        fcc["mode"] = "ANY";
      } else {
        return refuse("Invalid 'tool_choice': expected none, auto, required or a function.",
                      "tool_choice");
      }
    } else if (choice->is_object() && string_member(choice->get_object(), "type") == "function") {
      json::array names;
      json::array one;
      one.push_back(*choice);
      if (!names_of(one, names)) {
        return refuse("Invalid 'tool_choice.function.name'.", "tool_choice.function.name");
      }
      fcc["mode"] = "ANY";
      fcc["allowedFunctionNames"] = std::move(names);
    } else if (choice->is_object() &&
               string_member(choice->get_object(), "type") == "allowed_tools") {
      const json::value* at = member(choice->get_object(), "allowed_tools");
      const json::value* list =
          at != nullptr && at->is_object() ? member(at->get_object(), "tools") : nullptr;
      json::array names;
      if (list == nullptr || !list->is_array() || !names_of(list->get_array(), names)) {
        return refuse("Invalid 'tool_choice.allowed_tools.tools'.", "tool_choice.allowed_tools");
      }
      if (string_member(at->get_object(), "mode") == "required") {
        fcc["mode"] = "ANY";
        fcc["allowedFunctionNames"] = std::move(names);
      } else {
        // Gemini restricts names only in mode ANY: for auto, declare only the allowed ones.
        json::array kept;
        for (auto& d : decls) {
          const auto& name = d.get_object().at("name").get_string();
          if (std::find(names.begin(), names.end(), json::value(name)) != names.end()) {
            kept.push_back(std::move(d));
          }
        }
        decls = std::move(kept);
        fcc["mode"] = "AUTO";
      }
    } else {
      return refuse("Invalid 'tool_choice'.", "tool_choice");
    }
  }
  if (!decls.empty()) {
    json::object tool;
    tool["functionDeclarations"] = std::move(decls);
    json::array list;
    list.push_back(std::move(tool));
    req["tools"] = std::move(list);
    if (!fcc.empty()) {
      json::object tc;
      tc["functionCallingConfig"] = std::move(fcc);
      req["toolConfig"] = std::move(tc);
    }
  }
  return std::nullopt;
}

bool is_gemini_2_or_older(std::string_view model) {
  const std::size_t slash = model.rfind('/');
  if (slash != std::string_view::npos) {
    model.remove_prefix(slash + 1);
  }
  return model.substr(0, 9) == "gemini-1." || model.substr(0, 9) == "gemini-2." ||
         model.substr(0, 9) == "gemini-2-" || model.substr(0, 10) == "gemini-exp" ||
         model.substr(0, 5) == "gemma";
}

std::optional<Refusal> translate_generation(const json::object& body,
                                            std::string_view upstream_model, json::object& req) {
  json::object g;
  auto number = [&](std::string_view from, std::string_view to) -> std::optional<Refusal> {
    if (const json::value* v = member(body, from)) {
      if (!as_number(*v)) {
        return refuse("Invalid '" + std::string(from) + "': expected a number.", std::string(from));
      }
      g[to] = *v;
    }
    return std::nullopt;
  };
  auto integer = [&](std::string_view from, std::string_view to) -> std::optional<Refusal> {
    if (const json::value* v = member(body, from)) {
      const auto n = as_int(*v);
      if (!n) {
        return refuse("Invalid '" + std::string(from) + "': expected an integer.",
                      std::string(from));
      }
      g[to] = *n;
    }
    return std::nullopt;
  };
  for (const auto& [from, to] :
       {std::pair<std::string_view, std::string_view>{"temperature", "temperature"},
        {"top_p", "topP"},
        {"presence_penalty", "presencePenalty"},
        {"frequency_penalty", "frequencyPenalty"}}) {
    if (auto r = number(from, to)) {
      return r;
    }
  }
  if (auto r = integer("n", "candidateCount")) {
    return r;
  }
  if (auto r = integer("seed", "seed")) {
    return r;
  }
  if (auto r = integer(
          member(body, "max_completion_tokens") != nullptr ? "max_completion_tokens" : "max_tokens",
          "maxOutputTokens")) {
    return r;
  }
  if (const json::value* stop = member(body, "stop")) {
    json::array seqs;
    if (stop->is_string()) {
      seqs.push_back(stop->get_string());
    } else if (stop->is_array()) {
      for (const auto& s : stop->get_array()) {
        if (!s.is_string()) {
          return refuse("Invalid 'stop': expected a string or an array of strings.", "stop");
        }
        seqs.push_back(s);
      }
    } else {
      return refuse("Invalid 'stop': expected a string or an array of strings.", "stop");
    }
    if (!seqs.empty()) {
      g["stopSequences"] = std::move(seqs);
    }
  }
  if (const json::value* lp = member(body, "logprobs");
      lp != nullptr && lp->is_bool() && lp->get_bool()) {
    return refuse("'logprobs' is not supported by this provider.", "logprobs");
  }
  if (const json::value* rf = member(body, "response_format")) {
    const std::string_view type = rf->is_object() ? string_member(rf->get_object(), "type") : "";
    if (type == "json_object") {
      g["responseMimeType"] = "application/json";
    } else if (type == "json_schema") {
      g["responseMimeType"] = "application/json";
      const json::value* js = member(rf->get_object(), "json_schema");
      const json::value* schema =
          js != nullptr && js->is_object() ? member(js->get_object(), "schema") : nullptr;
      if (schema != nullptr) {
        if (!schema->is_object()) {
          return refuse("Invalid 'response_format.json_schema.schema': expected an object.",
                        "response_format.json_schema.schema");
        }
        g["responseJsonSchema"] = clean_schema(*schema);
      }
    } else if (type != "text") {
      return refuse("Invalid 'response_format.type': expected text, json_object or json_schema.",
                    "response_format.type");
    }
  }
  if (const json::value* re = member(body, "reasoning_effort")) {
    const std::string_view effort = re->is_string() ? std::string_view(re->get_string()) : "";
    json::object thinking;
    if (is_gemini_2_or_older(upstream_model)) {
      std::int64_t budget = 0;
      if (effort == "none") {
        budget = 0;
      } else if (effort == "minimal") {
        budget = kBudgetMinimal;
      } else if (effort == "low") {
        budget = kBudgetLow;
      } else if (effort == "medium") {
        budget = kBudgetMedium;
      } else if (effort == "high" || effort == "xhigh") {
        budget = kBudgetHigh;
      } else {
        return refuse("Invalid 'reasoning_effort'.", "reasoning_effort");
      }
      thinking["thinkingBudget"] = budget;
    } else {
      if (effort == "none" || effort == "minimal") {
        thinking["thinkingLevel"] = "minimal";
      } else if (effort == "low" || effort == "medium" || effort == "high") {
        thinking["thinkingLevel"] = effort;
      } else if (effort == "xhigh") {
        thinking["thinkingLevel"] = "high";
      } else {
        return refuse("Invalid 'reasoning_effort'.", "reasoning_effort");
      }
    }
    if (effort != "none") {
      thinking["includeThoughts"] = true;
    }
    g["thinkingConfig"] = std::move(thinking);
  }
  if (!g.empty()) {
    req["generationConfig"] = std::move(g);
  }
  return std::nullopt;
}

// ------------------------------------------------------------------------------------------
// Answers

bool is_blocking(std::string_view reason) {
  static constexpr std::array<std::string_view, 8> kBlocking{"SAFETY",
                                                             "RECITATION",
                                                             "BLOCKLIST",
                                                             "PROHIBITED_CONTENT",
                                                             "SPII",
                                                             "IMAGE_SAFETY",
                                                             "IMAGE_PROHIBITED_CONTENT",
                                                             "IMAGE_RECITATION"};
  return std::find(kBlocking.begin(), kBlocking.end(), reason) != kBlocking.end();
}

std::string_view finish_reason(std::string_view gemini, bool tool_calls) {
  if (gemini == "MAX_TOKENS") {
    return "length";
  }
  if (is_blocking(gemini)) {
    return "content_filter";
  }
  return tool_calls ? "tool_calls" : "stop";
}

std::string call_id(std::string_view request_id, std::size_t choice, std::size_t k,
                    std::string_view signature) {
  std::string id = "call_";
  id += request_id;
  id += '_';
  if (choice > 0) {
    id += std::to_string(choice);
    id += '_';
  }
  id += std::to_string(k);
  if (!signature.empty()) {
    id += kThoughtSeparator;
    id += signature;
  }
  return id;
}

void read_usage(const json::object& resp, pricing::TokenUsage& usage) {
  if (const json::value* um = member(resp, "usageMetadata"); um != nullptr && um->is_object()) {
    pricing::TokenUsage u;
    if (pricing::normalize_gemini(to_json(*um), u)) {
      usage = u;
    }
  }
}

std::string completion_id(std::string_view request_id) {
  return "chatcmpl-" + std::string(request_id);
}

/// The candidate's index: proto3 JSON leaves out a 0, so absent means 0 when it is the only
/// one, else its position.
std::optional<std::size_t> candidate_index(const json::object& c, std::size_t position) {
  const json::value* idx = c.if_contains("index");
  if (idx == nullptr) {
    return position;
  }
  const auto n = as_int(*idx);
  if (!n || *n < 0 || static_cast<std::size_t>(*n) >= kMaxChoices) {
    return std::nullopt;
  }
  return static_cast<std::size_t>(*n);
}

const json::array* candidate_parts(const json::object& c) {
  const json::value* content = member(c, "content");
  if (content == nullptr || !content->is_object()) {
    return nullptr;
  }
  const json::value* parts = member(content->get_object(), "parts");
  return parts != nullptr && parts->is_array() ? &parts->get_array() : nullptr;
}

// ------------------------------------------------------------------------------------------
// Stream

class GenerateStream final : public StreamTranslator {
 public:
  explicit GenerateStream(const CallInput& in)
      : writer_(completion_id(in.request_id), in.upstream_model, in.created),
        request_id_(in.request_id),
        client_wants_usage_(in.client_wants_usage) {}

  void feed(std::string& in, std::string& out) override {
    std::size_t consumed = 0;
    SseEvent ev;
    while (!failed_) {
      const std::size_t n = next_sse_event(std::string_view(in).substr(consumed), ev);
      if (n == 0) {
        break;
      }
      consumed += n;
      if (!ev.data.empty()) {
        event(ev.data, out);
      }
    }
    in.erase(0, failed_ ? in.size() : consumed);
  }

  void finish(std::string& in, std::string& out, bool complete) override {
    feed(in, out);
    const bool trailing = !in.empty();
    in.clear();
    if (failed_ || !complete || trailing || choices_.empty()) {
      return;
    }
    for (const auto& c : choices_) {
      if (c.started && !c.finished) {
        return;
      }
    }
    if (client_wants_usage_ && usage_.reported) {
      writer_.usage(out, usage_);
    }
    ChunkWriter::done(out);
    ended_ = true;
  }

 private:
  struct Choice {
    bool started = false;
    bool finished = false;
    bool tool_calls = false;
    int tools = 0;
  };

  void fail(std::string& out, std::string_view type, std::string_view message, unsigned status) {
    out += render_stream_error(Format::OpenAIChat, type, message, status);
    error_ = type;
    failed_ = true;
  }

  Choice& start(std::size_t index, std::string& out) {
    if (choices_.size() <= index) {
      choices_.resize(index + 1);
    }
    Choice& c = choices_[index];
    if (!c.started) {
      c.started = true;
      writer_.role(out, static_cast<int>(index));
    }
    return c;
  }

  void event(std::string_view data, std::string& out) {
    json::value holder;
    const json::object* resp = parse_object(data, holder);
    if (resp == nullptr) {
      fail(out, "upstream_error", "The provider sent an unreadable stream event.", 502);
      return;
    }
    if (const json::value* err = member(*resp, "error"); err != nullptr && err->is_object()) {
      const json::value* code = member(err->get_object(), "code");
      const auto status = code != nullptr ? as_int(*code) : std::nullopt;
      const ProviderError e = translate_google_error(
          status && *status >= 400 && *status < 600 ? static_cast<unsigned>(*status) : 500, data,
          {});
      fail(out, e.type,
           e.credential_refused ? "The provider refused the gateway's credential." : e.message,
           e.status);
      return;
    }
    if (const std::string_view mv = string_member(*resp, "modelVersion"); !mv.empty()) {
      if (model_.empty()) {
        model_ = mv;
        writer_.set_model(mv);
      }
    }
    read_usage(*resp, usage_);
    const json::value* cands = member(*resp, "candidates");
    if (cands == nullptr || !cands->is_array() || cands->get_array().empty()) {
      const json::value* fb = member(*resp, "promptFeedback");
      if (fb != nullptr && fb->is_object() &&
          !string_member(fb->get_object(), "blockReason").empty()) {
        Choice& c = start(0, out);
        if (!c.finished) {
          c.finished = true;
          writer_.finish(out, "content_filter", 0);
        }
      } else if (cands != nullptr && !cands->is_array()) {
        fail(out, "upstream_error", "The provider sent an unreadable stream event.", 502);
      }
      return;
    }
    std::size_t position = 0;
    for (const auto& cv : cands->get_array()) {
      const auto index = cv.is_object() ? candidate_index(cv.get_object(), position) : std::nullopt;
      ++position;
      if (!index) {
        fail(out, "upstream_error", "The provider sent an unreadable stream event.", 502);
        return;
      }
      const json::object& cand = cv.get_object();
      Choice& c = start(*index, out);
      const int ci = static_cast<int>(*index);
      if (const json::array* parts = candidate_parts(cand)) {
        for (const auto& pv : *parts) {
          if (!pv.is_object()) {
            continue;
          }
          const json::object& p = pv.get_object();
          const json::value* fc = member(p, "functionCall");
          if (fc != nullptr && fc->is_object()) {
            const json::value* args = member(fc->get_object(), "args");
            const std::string id = call_id(request_id_, *index, static_cast<std::size_t>(c.tools),
                                           string_member(p, "thoughtSignature"));
            writer_.tool_start(out, c.tools, id, string_member(fc->get_object(), "name"), ci);
            writer_.tool_arguments(out, c.tools, args != nullptr ? to_json(*args) : "{}", ci);
            ++c.tools;
            c.tool_calls = true;
            ++events_;
            continue;
          }
          const std::string_view text = string_member(p, "text");
          if (text.empty()) {
            continue;
          }
          const json::value* thought = p.if_contains("thought");
          if (thought != nullptr && thought->is_bool() && thought->get_bool()) {
            writer_.reasoning(out, text, ci);
          } else {
            writer_.content(out, text, ci);
          }
          ++events_;
        }
      }
      if (const std::string_view fr = string_member(cand, "finishReason"); !fr.empty()) {
        if (!c.finished) {
          c.finished = true;
          writer_.finish(out, finish_reason(fr, c.tool_calls), ci);
        }
      }
    }
  }

  ChunkWriter writer_;
  std::string request_id_;
  bool client_wants_usage_;
  bool failed_ = false;
  std::vector<Choice> choices_;
};

// ------------------------------------------------------------------------------------------
// Embeddings

/// The client's inputs as strings; refuses token ids.
std::optional<Refusal> embedding_inputs(const json::object& body, std::vector<std::string>& inputs,
                                        bool& list) {
  const json::value* input = member(body, "input");
  const Refusal tokens = refuse(
      "This provider embeds text only: 'input' must be a string or an array of strings.", "input");
  if (input == nullptr) {
    return refuse("Missing 'input'.", "input");
  }
  if (input->is_string()) {
    inputs.emplace_back(input->get_string());
    list = false;
    return std::nullopt;
  }
  if (!input->is_array() || input->get_array().empty()) {
    return tokens;
  }
  for (const auto& s : input->get_array()) {
    if (!s.is_string()) {
      return tokens;
    }
    inputs.emplace_back(s.get_string());
  }
  list = true;
  return std::nullopt;
}

std::optional<Refusal> embedding_dimensions(const json::object& body,
                                            std::optional<std::int64_t>& dims) {
  if (const json::value* d = member(body, "dimensions")) {
    dims = as_int(*d);
    if (!dims || *dims < 1) {
      return refuse("Invalid 'dimensions': expected a positive integer.", "dimensions");
    }
  }
  return std::nullopt;
}

/// Appends one vector in the client's encoding: numbers, or OpenAI's base64 of
/// little-endian float32.
bool append_vector(std::string& out, const json::value& values, bool base64) {
  if (!values.is_array()) {
    return false;
  }
  const json::array& a = values.get_array();
  if (!base64) {
    out += '[';
    bool first = true;
    for (const auto& v : a) {
      const auto d = as_number(v);
      if (!d) {
        return false;
      }
      if (!first) {
        out += ',';
      }
      first = false;
      append_number(out, *d);
    }
    out += ']';
    return true;
  }
  std::vector<unsigned char> raw(a.size() * 4);
  std::size_t off = 0;
  for (const auto& v : a) {
    const auto d = as_number(v);
    if (!d) {
      return false;
    }
    auto bits = std::bit_cast<std::uint32_t>(static_cast<float>(*d));
    for (int b = 0; b < 4; ++b) {  // little-endian whatever the host
      raw[off++] = static_cast<unsigned char>(bits & 0xffU);
      bits >>= 8;
    }
  }
  std::string enc(4 * ((raw.size() + 2) / 3) + 1, '\0');
  const int n = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(enc.data()), raw.data(),
                                static_cast<int>(raw.size()));
  enc.resize(static_cast<std::size_t>(std::max(n, 0)));
  core::append_json_string(out, enc);
  return true;
}

bool wants_base64(const CallInput& in) {
  json::value holder;
  const json::object* body = parse_object(in.body, holder);
  return body != nullptr && string_member(*body, "encoding_format") == "base64";
}

/// OpenAI's embeddings list from the vectors (each a `values` array).
bool write_embeddings(const CallInput& in, const std::vector<const json::value*>& vectors,
                      const pricing::TokenUsage& usage, std::string& out) {
  const bool base64 = wants_base64(in);
  out += R"({"object":"list","data":[)";
  for (std::size_t i = 0; i < vectors.size(); ++i) {
    if (i > 0) {
      out += ',';
    }
    out += R"({"object":"embedding","index":)";
    out += std::to_string(i);
    out += R"(,"embedding":)";
    if (!append_vector(out, *vectors[i], base64)) {
      return false;
    }
    out += '}';
  }
  out += R"(],"model":)";
  core::append_json_string(out, in.upstream_model);
  out += R"(,"usage":{"prompt_tokens":)";
  out += std::to_string(usage.prompt_total());
  out += R"(,"total_tokens":)";
  out += std::to_string(usage.prompt_total());
  out += "}}";
  return true;
}

std::string delay_seconds(std::string_view delay) {
  // google.protobuf.Duration in JSON: "31s", "0.5s", "1.250s".
  if (delay.size() < 2 || delay.back() != 's') {
    return {};
  }
  delay.remove_suffix(1);
  double seconds = 0;
  const auto r = std::from_chars(delay.data(), delay.data() + delay.size(), seconds);
  if (r.ec != std::errc() || r.ptr != delay.data() + delay.size() || seconds < 0 ||
      seconds > 86400) {
    return {};
  }
  return std::to_string(static_cast<std::int64_t>(std::ceil(seconds)));
}

}  // namespace

// ------------------------------------------------------------------------------------------

std::optional<Refusal> build_generate_request(std::string_view openai_body,
                                              std::string_view upstream_model, std::string& out) {
  json::value holder;
  const json::object* body = parse_object(openai_body, holder);
  if (body == nullptr) {
    return refuse("The request body must be a JSON object.", {});
  }
  const json::value* messages = member(*body, "messages");
  if (messages == nullptr || !messages->is_array()) {
    return refuse("Missing 'messages'.", "messages");
  }
  Conversation conv;
  if (auto r = translate_messages(messages->get_array(), conv)) {
    return r;
  }
  json::object req;
  req["contents"] = std::move(conv.contents);
  if (!conv.system_parts.empty()) {
    json::object sys;
    sys["parts"] = std::move(conv.system_parts);
    req["systemInstruction"] = std::move(sys);
  }
  if (auto r = translate_tools(*body, req)) {
    return r;
  }
  if (auto r = translate_generation(*body, upstream_model, req)) {
    return r;
  }
  out.clear();
  if (!core::append_json(out, req)) {
    return out_of_range();
  }
  return std::nullopt;
}

bool translate_generate_answer(const CallInput& in, std::string_view body, std::string& out,
                               Answer& answer) {
  json::value holder;
  const json::object* resp = parse_object(body, holder);
  if (resp == nullptr) {
    return false;
  }
  read_usage(*resp, answer.usage);
  const std::string_view model_version = string_member(*resp, "modelVersion");
  answer.model = model_version;
  const json::value* cands = member(*resp, "candidates");
  if (cands != nullptr && !cands->is_array()) {
    return false;
  }
  const bool blocked = [&] {
    const json::value* fb = member(*resp, "promptFeedback");
    return fb != nullptr && fb->is_object() &&
           !string_member(fb->get_object(), "blockReason").empty();
  }();
  if ((cands == nullptr || cands->get_array().empty()) && !blocked) {
    return false;
  }

  out.clear();
  out += R"({"id":)";
  core::append_json_string(out, completion_id(in.request_id));
  out += R"(,"object":"chat.completion","created":)";
  out += std::to_string(in.created);
  out += R"(,"model":)";
  core::append_json_string(out, model_version.empty() ? in.upstream_model : model_version);
  out += R"(,"choices":[)";
  if (cands == nullptr || cands->get_array().empty()) {
    out += R"({"index":0,"message":{"role":"assistant","content":"","refusal":null},)"
           R"("logprobs":null,"finish_reason":"content_filter"})";
  }
  static const json::array kNone;
  std::size_t position = 0;
  for (const auto& cv : cands != nullptr ? cands->get_array() : kNone) {
    if (!cv.is_object()) {
      return false;
    }
    const json::object& cand = cv.get_object();
    const auto index = candidate_index(cand, position);
    if (!index) {
      return false;
    }
    std::string text;
    std::string reasoning;
    std::string calls;
    std::size_t k = 0;
    if (const json::array* parts = candidate_parts(cand)) {
      for (const auto& pv : *parts) {
        if (!pv.is_object()) {
          return false;
        }
        const json::object& p = pv.get_object();
        if (const json::value* fc = member(p, "functionCall"); fc != nullptr && fc->is_object()) {
          const json::value* args = member(fc->get_object(), "args");
          calls += k > 0 ? "," : "";
          calls += R"({"id":)";
          core::append_json_string(
              calls, call_id(in.request_id, *index, k, string_member(p, "thoughtSignature")));
          calls += R"(,"type":"function","function":{"name":)";
          core::append_json_string(calls, string_member(fc->get_object(), "name"));
          calls += R"(,"arguments":)";
          core::append_json_string(calls, args != nullptr ? to_json(*args) : "{}");
          calls += "}}";
          ++k;
          continue;
        }
        const json::value* thought = p.if_contains("thought");
        if (thought != nullptr && thought->is_bool() && thought->get_bool()) {
          reasoning += string_member(p, "text");
        } else {
          text += string_member(p, "text");
        }
      }
    }
    if (position > 0) {
      out += ',';
    }
    ++position;
    out += R"({"index":)";
    out += std::to_string(*index);
    out += R"(,"message":{"role":"assistant","content":)";
    if (text.empty() && k > 0) {
      out += "null";
    } else {
      core::append_json_string(out, text);
    }
    if (!reasoning.empty()) {
      out += R"(,"reasoning_content":)";
      core::append_json_string(out, reasoning);
    }
    if (k > 0) {
      out += R"(,"tool_calls":[)";
      out += calls;
      out += ']';
    }
    out += R"(,"refusal":null},"logprobs":null,"finish_reason":)";
    core::append_json_string(out, finish_reason(string_member(cand, "finishReason"), k > 0));
    out += '}';
  }
  out += ']';
  if (answer.usage.reported) {
    out += R"(,"usage":)";
    append_openai_usage(out, answer.usage);
  }
  out += '}';
  return true;
}

std::unique_ptr<StreamTranslator> make_generate_stream(const CallInput& in) {
  return std::make_unique<GenerateStream>(in);
}

ProviderError translate_google_error(unsigned status, std::string_view body,
                                     std::string_view retry_after) {
  std::string message;
  std::string grpc_status;
  std::string delay;
  bool key_invalid = false;
  boost::system::error_code ec;
  json::value v = json::parse(body, ec);
  if (!ec && v.is_array() && !v.get_array().empty()) {
    v = json::value(v.get_array().front());  // the JSON-array stream form wraps the error
  }
  if (!ec && v.is_object()) {
    if (const json::value* err = member(v.get_object(), "error");
        err != nullptr && err->is_object()) {
      const json::object& e = err->get_object();
      message = string_member(e, "message");
      grpc_status = string_member(e, "status");
      if (const json::value* details = member(e, "details");
          details != nullptr && details->is_array()) {
        for (const auto& d : details->get_array()) {
          if (!d.is_object()) {
            continue;
          }
          if (string_member(d.get_object(), "reason") == "API_KEY_INVALID") {
            key_invalid = true;
          }
          if (const std::string_view rd = string_member(d.get_object(), "retryDelay");
              !rd.empty()) {
            delay = rd;
          }
        }
      }
    }
  }
  if (status == 400 && (key_invalid || message.find("API key") != std::string::npos)) {
    status = 401;  // Gemini answers a bad key 400 INVALID_ARGUMENT: still the gateway's key
  }
  std::string ra(retry_after);
  if (ra.empty() && (status == 429 || status == 503)) {
    ra = delay_seconds(delay);
  }
  ProviderError e = map_status(status, std::move(message), ra);
  if (status == 429 && grpc_status == "RESOURCE_EXHAUSTED" && e.code.empty()) {
    e.code = "rate_limit_exceeded";
  }
  return e;
}

std::optional<Refusal> build_gemini_embed_request(std::string_view openai_body,
                                                  std::string_view upstream_model, bool& batch,
                                                  std::string& out) {
  json::value holder;
  const json::object* body = parse_object(openai_body, holder);
  if (body == nullptr) {
    return refuse("The request body must be a JSON object.", {});
  }
  std::vector<std::string> inputs;
  if (auto r = embedding_inputs(*body, inputs, batch)) {
    return r;
  }
  std::optional<std::int64_t> dims;
  if (auto r = embedding_dimensions(*body, dims)) {
    return r;
  }
  auto request = [&](const std::string& text, bool with_model) {
    json::array parts;
    parts.push_back(text_part(text));
    json::object content;
    content["parts"] = std::move(parts);
    json::object r;
    if (with_model) {
      std::string name = upstream_model.find('/') == std::string_view::npos ? "models/" : "";
      name += upstream_model;
      r["model"] = name;
    }
    r["content"] = std::move(content);
    if (dims) {
      r["outputDimensionality"] = *dims;
    }
    return r;
  };
  out.clear();
  if (!batch) {
    if (!core::append_json(out, request(inputs.front(), false))) {
      return out_of_range();
    }
    return std::nullopt;
  }
  json::array requests;
  for (const auto& text : inputs) {
    requests.push_back(request(text, true));
  }
  json::object req;
  req["requests"] = std::move(requests);
  if (!core::append_json(out, req)) {
    return out_of_range();
  }
  return std::nullopt;
}

bool translate_gemini_embed_answer(const CallInput& in, std::string_view body, std::string& out,
                                   Answer& answer) {
  json::value holder;
  const json::object* resp = parse_object(body, holder);
  if (resp == nullptr) {
    return false;
  }
  std::vector<const json::value*> vectors;
  auto add = [&](const json::value& e) {
    const json::value* values = e.is_object() ? member(e.get_object(), "values") : nullptr;
    if (values == nullptr) {
      return false;
    }
    vectors.push_back(values);
    return true;
  };
  if (const json::value* one = member(*resp, "embedding")) {
    if (!add(*one)) {
      return false;
    }
  } else if (const json::value* many = member(*resp, "embeddings");
             many != nullptr && many->is_array()) {
    for (const auto& e : many->get_array()) {
      if (!add(e)) {
        return false;
      }
    }
  } else {
    return false;
  }
  read_usage(*resp, answer.usage);
  out.clear();
  return write_embeddings(in, vectors, answer.usage, out);
}

std::optional<Refusal> build_vertex_embed_request(std::string_view openai_body, std::string& out) {
  json::value holder;
  const json::object* body = parse_object(openai_body, holder);
  if (body == nullptr) {
    return refuse("The request body must be a JSON object.", {});
  }
  std::vector<std::string> inputs;
  bool list = false;
  if (auto r = embedding_inputs(*body, inputs, list)) {
    return r;
  }
  std::optional<std::int64_t> dims;
  if (auto r = embedding_dimensions(*body, dims)) {
    return r;
  }
  json::array instances;
  for (const auto& text : inputs) {
    json::object inst;
    inst["content"] = text;
    instances.push_back(std::move(inst));
  }
  json::object req;
  req["instances"] = std::move(instances);
  if (dims) {
    json::object params;
    params["outputDimensionality"] = *dims;
    req["parameters"] = std::move(params);
  }
  out.clear();
  if (!core::append_json(out, req)) {
    return out_of_range();
  }
  return std::nullopt;
}

bool translate_vertex_embed_answer(const CallInput& in, std::string_view body, std::string& out,
                                   Answer& answer) {
  json::value holder;
  const json::object* resp = parse_object(body, holder);
  if (resp == nullptr) {
    return false;
  }
  const json::value* preds = member(*resp, "predictions");
  if (preds == nullptr || !preds->is_array()) {
    return false;
  }
  std::vector<const json::value*> vectors;
  pricing::TokenUsage usage;
  for (const auto& p : preds->get_array()) {
    const json::value* emb = p.is_object() ? member(p.get_object(), "embeddings") : nullptr;
    const json::value* values =
        emb != nullptr && emb->is_object() ? member(emb->get_object(), "values") : nullptr;
    if (values == nullptr) {
      return false;
    }
    vectors.push_back(values);
    const json::value* stats = member(emb->get_object(), "statistics");
    const json::value* count = stats != nullptr && stats->is_object()
                                   ? member(stats->get_object(), "token_count")
                                   : nullptr;
    if (count != nullptr) {
      if (const auto n = as_number(*count); n && *n >= 0) {
        usage.input_tokens += static_cast<std::int64_t>(*n);
        usage.reported = true;
      }
    }
  }
  answer.usage = usage;
  out.clear();
  return write_embeddings(in, vectors, usage, out);
}

std::string encode_model(std::string_view model, bool keep_slash) {
  static constexpr std::string_view kHex = "0123456789ABCDEF";
  std::string out;
  out.reserve(model.size());
  for (const char ch : model) {
    const auto c = static_cast<unsigned char>(ch);
    if (std::isalnum(c) != 0 || c == '-' || c == '.' || c == '_' || c == '~' ||
        (keep_slash && c == '/')) {
      out += ch;
    } else {
      out += '%';
      out += kHex[c >> 4U];
      out += kHex[c & 0xfU];
    }
  }
  return out;
}

}  // namespace llmgw::providers::gemini
