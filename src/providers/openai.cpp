#include "providers/openai.hpp"

#include <algorithm>
#include <array>
#include <charconv>

namespace llmgw::providers {

using core::JsonField;
using core::JsonKind;

namespace {

std::int64_t to_int(std::string_view v) {
  std::int64_t n = 0;
  const auto [p, ec] = std::from_chars(v.data(), v.data() + v.size(), n);
  return (ec == std::errc{} && n >= 0) ? n : 0;
}

std::int64_t nested_int(std::string_view object, std::string_view key) {
  const std::array<std::string_view, 1> names{key};
  std::array<JsonField, 1> f;
  if (!core::locate_fields(object, names, f) || f[0].kind() != JsonKind::Number) {
    return 0;
  }
  return to_int(f[0].value);
}

}  // namespace

bool parse_openai_usage(std::string_view obj, Usage& out) {
  static constexpr std::array<std::string_view, 6> kNames{
      "prompt_tokens",         "completion_tokens",         "prompt_tokens_details",
      "completion_tokens_details", "input_tokens", "output_tokens"};
  std::array<JsonField, kNames.size()> f;
  if (!core::locate_fields(obj, kNames, f)) {
    return false;
  }
  Usage u;
  if (f[0].kind() == JsonKind::Number) {
    u.prompt_tokens = to_int(f[0].value);
    u.present = true;
  } else if (f[4].kind() == JsonKind::Number) {  // Responses-API style names
    u.prompt_tokens = to_int(f[4].value);
    u.present = true;
  }
  if (f[1].kind() == JsonKind::Number) {
    u.completion_tokens = to_int(f[1].value);
    u.present = true;
  } else if (f[5].kind() == JsonKind::Number) {
    u.completion_tokens = to_int(f[5].value);
    u.present = true;
  }
  if (f[2].kind() == JsonKind::Object) {
    u.cached_tokens = nested_int(f[2].value, "cached_tokens");
  }
  if (f[3].kind() == JsonKind::Object) {
    u.reasoning_tokens = nested_int(f[3].value, "reasoning_tokens");
  }
  if (!u.present) {
    return false;
  }
  out = u;
  return true;
}

bool usage_from_response(std::string_view body, Usage& out) {
  static constexpr std::array<std::string_view, 1> kNames{"usage"};
  std::array<JsonField, 1> f;
  if (!core::locate_fields(body, kNames, f) || f[0].kind() != JsonKind::Object) {
    return false;
  }
  return parse_openai_usage(f[0].value, out);
}

std::optional<RequestError> inspect_request(Endpoint endpoint, std::string_view body,
                                            InspectedRequest& out) {
  std::string why;
  if (body.empty()) {
    return RequestError{"The request body is empty; expected a JSON object.", ""};
  }
  if (!core::validate_json(body, &why)) {
    return RequestError{"The request body is not valid JSON: " + why + ".", ""};
  }
  static constexpr std::array<std::string_view, 5> kNames{"model", "stream", "stream_options",
                                                          "messages", "input"};
  std::array<JsonField, kNames.size()> f;
  if (!core::locate_fields(body, kNames, f, &out.object_end)) {
    return RequestError{"The request body must be a JSON object.", ""};
  }
  out.model_field = f[0];
  out.stream_options_field = f[2];
  if (!f[0].present()) {
    return RequestError{"You must provide a model parameter.", "model"};
  }
  if (f[0].kind() != JsonKind::String) {
    return RequestError{"Invalid type for 'model': expected a string.", "model"};
  }
  auto model = core::json_string_value(f[0].value);
  if (!model || model->empty()) {
    return RequestError{"You must provide a model parameter.", "model"};
  }
  out.model = std::move(*model);

  if (endpoint == Endpoint::Embeddings) {
    if (!f[4].present()) {
      return RequestError{"Missing required parameter: 'input'.", "input"};
    }
    const auto k = f[4].kind();
    if (k != JsonKind::String && k != JsonKind::Array) {
      return RequestError{"Invalid type for 'input': expected a string or an array.", "input"};
    }
    return std::nullopt;
  }

  if (!f[3].present()) {
    return RequestError{"Missing required parameter: 'messages'.", "messages"};
  }
  if (f[3].kind() != JsonKind::Array) {
    return RequestError{"Invalid type for 'messages': expected an array of message objects.",
                        "messages"};
  }
  if (f[3].value.find_first_not_of(" \t\r\n", 1) == f[3].value.size() - 1) {
    return RequestError{"Invalid 'messages': empty array. Expected an array with minimum length 1.",
                        "messages"};
  }
  if (f[1].present() && f[1].kind() != JsonKind::Null) {
    auto b = core::json_bool_value(f[1].value);
    if (!b) {
      return RequestError{"Invalid type for 'stream': expected a boolean.", "stream"};
    }
    out.stream = *b;
  }
  if (f[2].present() && f[2].kind() != JsonKind::Null) {
    if (f[2].kind() != JsonKind::Object) {
      return RequestError{"Invalid type for 'stream_options': expected an object.",
                          "stream_options"};
    }
    static constexpr std::array<std::string_view, 1> kUsage{"include_usage"};
    std::array<JsonField, 1> u;
    core::locate_fields(f[2].value, kUsage, u);
    if (u[0].present()) {
      auto b = core::json_bool_value(u[0].value);
      if (!b) {
        return RequestError{"Invalid type for 'stream_options.include_usage': expected a boolean.",
                            "stream_options.include_usage"};
      }
      out.client_wants_usage = *b;
    }
  }
  return std::nullopt;
}

bool rewrite_request(std::string_view body, const InspectedRequest& req,
                     std::string_view upstream_model, bool request_usage, std::string& out) {
  const bool rename = upstream_model != req.model;
  if (!rename && !request_usage) {
    return false;
  }
  // Edits are applied from the end of the body backwards so earlier offsets stay valid.
  struct Edit {
    std::size_t begin, end;
    std::string text;
  };
  std::array<Edit, 2> edits;
  std::size_t n = 0;
  if (request_usage) {
    const JsonField& so = req.stream_options_field;
    if (so.present() && so.kind() == JsonKind::Object) {
      // Replace the object with a copy that has include_usage set to true.
      std::string obj(so.value);
      static constexpr std::array<std::string_view, 1> kUsage{"include_usage"};
      std::array<JsonField, 1> u;
      std::size_t obj_end = 0;
      core::locate_fields(obj, kUsage, u, &obj_end);
      if (u[0].present()) {
        obj.replace(u[0].value.data() - obj.data(), u[0].value.size(), "true");
      } else {
        const bool empty = obj.find_first_not_of(" \t\r\n", 1) == obj_end;
        obj.insert(obj_end, empty ? "\"include_usage\":true" : ",\"include_usage\":true");
      }
      const std::size_t begin = so.value.data() - body.data();
      edits[n++] = {begin, begin + so.value.size(), std::move(obj)};
    } else if (so.present()) {  // "stream_options": null
      const std::size_t begin = so.value.data() - body.data();
      edits[n++] = {begin, begin + so.value.size(), "{\"include_usage\":true}"};
    } else {
      const bool empty = body.find_first_not_of(" \t\r\n", body.find('{') + 1) == req.object_end;
      edits[n++] = {req.object_end, req.object_end,
                    empty ? "\"stream_options\":{\"include_usage\":true}"
                          : ",\"stream_options\":{\"include_usage\":true}"};
    }
  }
  if (rename) {
    std::string lit;
    core::append_json_string(lit, upstream_model);
    const std::size_t begin = req.model_field.value.data() - body.data();
    edits[n++] = {begin, begin + req.model_field.value.size(), std::move(lit)};
  }
  std::sort(edits.begin(), edits.begin() + n,
            [](const Edit& a, const Edit& b) { return a.begin < b.begin; });
  out.clear();
  out.reserve(body.size() + 64);
  std::size_t pos = 0;
  for (std::size_t i = 0; i < n; ++i) {
    out.append(body.substr(pos, edits[i].begin - pos));
    out += edits[i].text;
    pos = edits[i].end;
  }
  out.append(body.substr(pos));
  return true;
}

// ---------------------------------------------------------------------------------------------
// SSE

namespace {

/// Length of the event at the front of `s` including its blank-line terminator, or 0.
std::size_t event_length(std::string_view s) {
  std::size_t i = 0;
  while (true) {
    const std::size_t nl = s.find('\n', i);
    if (nl == std::string_view::npos) {
      return 0;
    }
    if (nl + 1 < s.size() && s[nl + 1] == '\n') {
      return nl + 2;
    }
    if (nl + 2 < s.size() && s[nl + 1] == '\r' && s[nl + 2] == '\n') {
      return nl + 3;
    }
    i = nl + 1;
  }
}

}  // namespace

void SseFilter::feed(std::string& in, std::string& out) {
  std::size_t pos = 0;
  while (pos < in.size()) {
    const std::size_t len = event_length(std::string_view(in).substr(pos));
    if (len == 0) {
      break;
    }
    event(std::string_view(in).substr(pos, len), out);
    pos += len;
  }
  in.erase(0, pos);
}

void SseFilter::finish(std::string& in, std::string& out) {
  feed(in, out);
  if (!in.empty()) {
    out += in;
    in.clear();
  }
}

void SseFilter::event(std::string_view ev, std::string& out) {
  ++events_;
  // Only single-line "data:" events are inspected (OpenAI sends no other kind); anything else
  // passes untouched. Each test below is a bounded look at the line, cheapest first: a
  // search for `"usage"` over every event cost more than the rest of the filter.
  const bool data_line = ev.starts_with("data:");
  const std::size_t line_end = data_line ? ev.find('\n') : std::string_view::npos;
  const bool more_lines =
      line_end != std::string_view::npos && ev.substr(line_end + 1).starts_with("data:");
  if (line_end == std::string_view::npos || more_lines) {
    out += ev;
    return;
  }
  std::size_t json_begin = 5;
  if (json_begin < ev.size() && ev[json_begin] == ' ') {
    ++json_begin;
  }
  std::size_t json_end = line_end;
  if (json_end > json_begin && ev[json_end - 1] == '\r') {
    --json_end;
  }
  const std::string_view json = ev.substr(json_begin, json_end - json_begin);
  if (json == "[DONE]") {
    saw_done_ = true;
    out += ev;
    return;
  }
  // OpenAI's own layout: `"usage":null` is the object's last member. Recognised in O(1).
  static constexpr std::string_view kNullUsageTail = R"(,"usage":null})";
  if (json.ends_with(kNullUsageTail)) {
    if (!hide_usage_) {
      out += ev;
      return;
    }
    out.append(ev.substr(0, json_begin + json.size() - kNullUsageTail.size()));
    out.push_back('}');
    out.append(ev.substr(json_end));
    return;
  }
  if (json.find("\"usage\"") == std::string_view::npos) {
    out += ev;
    return;
  }
  static constexpr std::array<std::string_view, 2> kNames{"usage", "choices"};
  std::array<JsonField, 2> f;
  if (!core::locate_fields(json, kNames, f) || !f[0].present()) {
    out += ev;
    return;
  }
  if (f[0].kind() == JsonKind::Object) {
    parse_openai_usage(f[0].value, usage_);
  }
  if (!hide_usage_) {
    out += ev;
    return;
  }
  const bool usage_only =
      f[1].kind() == JsonKind::Array &&
      f[1].value.find_first_not_of(" \t\r\n", 1) == f[1].value.size() - 1;
  if (usage_only) {
    return;  // the chunk the client did not ask for
  }
  scratch_.assign(json);
  core::erase_field(scratch_, JsonField{std::string_view(scratch_).substr(
                                            f[0].value.data() - json.data(), f[0].value.size()),
                                        f[0].member_begin, f[0].value_end});
  out.append(ev.substr(0, json_begin));
  out += scratch_;
  out.append(ev.substr(json_end));
}

}  // namespace llmgw::providers
