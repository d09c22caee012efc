#include "providers/openai.hpp"

#include "core/json_key_set.hpp"
#include "core/json_sax.hpp"

#include <boost/json/basic_parser_impl.hpp>

#include <algorithm>
#include <array>
#include <charconv>
#include <cstdint>
#include <cstring>

namespace llmgw::providers {

using core::JsonField;
using core::JsonKind;
using core::KeySet;

/// Offset of the last `"usage"` in `text` (npos if none), jumping between quotes with memrchr:
/// std::string_view::rfind compares at every position.
std::size_t rfind_usage_key(std::string_view text) {
  static constexpr std::string_view kKey = R"("usage")";
  std::size_t end = text.size();
  while (end >= kKey.size()) {
    const void* q = ::memrchr(text.data(), '"', end);
    if (q == nullptr) {
      return std::string_view::npos;
    }
    const auto close = static_cast<std::size_t>(static_cast<const char*>(q) - text.data());
    if (close + 1 >= kKey.size() && text.substr(close + 1 - kKey.size(), kKey.size()) == kKey) {
      return close + 1 - kKey.size();
    }
    end = close;
  }
  return std::string_view::npos;
}

std::string_view find_usage_object(std::string_view body) {
  // Fast path: the last `"usage"` key, followed by an object.
  const std::size_t k = rfind_usage_key(body);
  if (k != std::string_view::npos) {
    std::size_t i = k + 7;
    while (i < body.size() && (body[i] == ' ' || body[i] == ':' || body[i] == '\n' ||
                               body[i] == '\t' || body[i] == '\r')) {
      ++i;
    }
    if (i < body.size() && body[i] == '{') {
      // The object's end: usage holds only numbers and objects of numbers, no strings.
      std::size_t depth = 0;
      std::size_t j = i;
      for (; j < body.size(); ++j) {
        if (body[j] == '{') {
          ++depth;
        } else if (body[j] == '}' && --depth == 0) {
          break;
        }
      }
      if (j < body.size()) {
        return body.substr(i, j + 1 - i);
      }
    } else if (i < body.size() && body[i] == 'n') {
      return {};  // "usage": null
    }
  }
  static constexpr std::array<std::string_view, 1> kNames{"usage"};
  std::array<JsonField, 1> f;
  if (!core::locate_fields(body, kNames, f) || f[0].kind() != JsonKind::Object) {
    return {};
  }
  return f[0].value;
}


namespace {

/// Largest token count a request may ask for: far above any model's limit, far below what
/// would overflow the worst-case cost arithmetic.
constexpr std::int64_t kMaxTokenParam = std::int64_t{1} << 31;
/// Largest `n` (choices per request) accepted; OpenAI's own limit is 128.
constexpr std::int64_t kMaxChoices = 128;

/// Records, for the top-level members the gateway reads, their JSON kind and value, and
/// refuses a repeated key. Boost.JSON's parser validates (strict, UTF-8) while this handler
/// watches; keys arrive decoded, so `"mod\u0065l"` is `model` here as in every other parser.
class RequestFieldsHandler : public core::SaxHandlerBase {
 public:
  explicit RequestFieldsHandler(std::string_view body) : top_keys_(body), option_keys_(body) {}

  enum class Field : std::uint8_t {
    Other,
    Model,
    Stream,
    StreamOptions,
    Messages,
    Input,
    ServiceTier,
    MaxTokens,
    MaxCompletionTokens,
    Choices,
  };

  /// An integer member: its kind, and its value when it is a non-negative integer in range.
  struct IntField {
    JsonKind kind = JsonKind::Missing;
    std::int64_t value = -1;  ///< -1: not an integer in [0, kMaxTokenParam]
  };

  JsonKind top = JsonKind::Missing;
  JsonKind model = JsonKind::Missing;
  JsonKind stream = JsonKind::Missing;
  JsonKind stream_options = JsonKind::Missing;
  JsonKind include_usage = JsonKind::Missing;
  JsonKind messages = JsonKind::Missing;
  JsonKind input = JsonKind::Missing;
  JsonKind service_tier = JsonKind::Missing;
  std::string model_value;
  std::string service_tier_value;
  IntField max_tokens;
  IntField max_completion_tokens;
  IntField choices;
  bool stream_value = false;
  bool include_usage_value = false;
  std::size_t messages_count = 0;
  /// Set when an object the gateway reads repeats a key: the path of the key ("model",
  /// "stream_options.include_usage"). Parsing stops there.
  std::string duplicate;

  bool on_object_begin(ec_t&) {
    if (depth_ == 0) {
      top = JsonKind::Object;
    } else {
      value(JsonKind::Object);
      if (depth_ == 1) {
        in_stream_options_ = field_ == Field::StreamOptions;
      }
    }
    ++depth_;
    return true;
  }
  bool on_object_end(std::size_t, ec_t&) {
    --depth_;
    if (depth_ == 1) {
      in_stream_options_ = false;
      field_ = Field::Other;
    }
    return true;
  }
  bool on_array_begin(ec_t&) {
    if (depth_ == 0) {
      top = JsonKind::Array;
    } else {
      value(JsonKind::Array);
    }
    ++depth_;
    return true;
  }
  bool on_array_end(std::size_t n, ec_t&) {
    --depth_;
    if (depth_ == 1) {
      if (field_ == Field::Messages) {
        messages_count = n;
      }
      field_ = Field::Other;
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
        ec = boost::json::error::syntax;
        return false;
      }
      field_ = key == "model"            ? Field::Model
               : key == "stream"         ? Field::Stream
               : key == "stream_options" ? Field::StreamOptions
               : key == "messages"       ? Field::Messages
               : key == "input"          ? Field::Input
               : key == "service_tier"   ? Field::ServiceTier
               : key == "max_tokens"     ? Field::MaxTokens
               : key == "max_completion_tokens" ? Field::MaxCompletionTokens
               : key == "n"              ? Field::Choices
                                         : Field::Other;
    } else if (depth_ == 2 && in_stream_options_) {
      if (!option_keys_.insert(key)) {
        duplicate = "stream_options.";
        duplicate.append(key);
        ec = boost::json::error::syntax;
        return false;
      }
      include_usage_key_ = key == "include_usage";
    }
    key_.clear();
    return true;
  }
  bool on_string_part(std::string_view part, std::size_t, ec_t&) {
    if (depth_ == 1 && (field_ == Field::Model || field_ == Field::ServiceTier)) {
      string_.append(part);
    }
    return true;
  }
  bool on_string(std::string_view part, std::size_t, ec_t&) {
    if (depth_ == 1 && field_ == Field::Model) {
      string_.append(part);
      model_value = std::move(string_);
      string_.clear();
    } else if (depth_ == 1 && field_ == Field::ServiceTier) {
      string_.append(part);
      service_tier_value = std::move(string_);
      string_.clear();
    }
    value(JsonKind::String);
    return true;
  }
  bool on_int64(std::int64_t v, std::string_view, ec_t&) {
    if (IntField* f = int_field(); f != nullptr && v >= 0 && v <= kMaxTokenParam) {
      f->value = v;
    }
    return scalar(JsonKind::Number);
  }
  bool on_uint64(std::uint64_t, std::string_view, ec_t&) { return scalar(JsonKind::Number); }
  bool on_double(double, std::string_view, ec_t&) { return scalar(JsonKind::Number); }
  bool on_bool(bool b, ec_t&) {
    if (depth_ == 1 && field_ == Field::Stream) {
      stream_value = b;
    } else if (depth_ == 2 && in_stream_options_ && include_usage_key_) {
      include_usage_value = b;
    }
    return scalar(JsonKind::Bool);
  }
  bool on_null(ec_t&) { return scalar(JsonKind::Null); }

 private:
  IntField* int_field() noexcept {
    if (depth_ != 1) {
      return nullptr;
    }
    switch (field_) {
      case Field::MaxTokens: return &max_tokens;
      case Field::MaxCompletionTokens: return &max_completion_tokens;
      case Field::Choices: return &choices;
      default: return nullptr;
    }
  }

  /// A value starts (or is) at the current depth: note its kind for the field it belongs to.
  void value(JsonKind k) {
    if (depth_ == 1) {
      switch (field_) {
        case Field::Model: model = k; break;
        case Field::Stream: stream = k; break;
        case Field::StreamOptions: stream_options = k; break;
        case Field::Messages: messages = k; break;
        case Field::Input: input = k; break;
        case Field::ServiceTier: service_tier = k; break;
        default:
          if (IntField* f = int_field()) {
            f->kind = k;
          }
          break;
      }
    } else if (depth_ == 2 && in_stream_options_ && include_usage_key_) {
      include_usage = k;
      include_usage_key_ = false;
    }
  }
  bool scalar(JsonKind k) {
    value(k);
    if (depth_ == 1) {
      field_ = Field::Other;
    }
    return true;
  }

  std::size_t depth_ = 0;
  Field field_ = Field::Other;
  bool in_stream_options_ = false;
  bool include_usage_key_ = false;
  std::string key_;
  std::string string_;
  KeySet top_keys_;
  KeySet option_keys_;
};

/// Checks an integer member; returns an error naming it when it is not a non-negative
/// integer (within `max`).
std::optional<RequestError> check_int(const RequestFieldsHandler::IntField& f,
                                      std::string_view name, std::int64_t min, std::int64_t max) {
  if (f.kind == JsonKind::Missing || f.kind == JsonKind::Null) {
    return std::nullopt;
  }
  if (f.kind != JsonKind::Number) {
    return RequestError{"Invalid type for '" + std::string(name) + "': expected an integer.",
                        std::string(name)};
  }
  if (f.value < min || f.value > max) {
    return RequestError{"Invalid '" + std::string(name) + "': expected an integer from " +
                            std::to_string(min) + " to " + std::to_string(max) + ".",
                        std::string(name)};
  }
  return std::nullopt;
}

}  // namespace

std::optional<RequestError> inspect_request(Endpoint endpoint, std::string_view body,
                                            InspectedRequest& out) {
  if (body.empty()) {
    return RequestError{"The request body is empty; expected a JSON object.", ""};
  }
  boost::json::parse_options opt;
  opt.max_depth = 64;
  boost::json::basic_parser<RequestFieldsHandler> parser(opt, body);
  boost::system::error_code ec;
  const std::size_t n = parser.write_some(false, body.data(), body.size(), ec);
  if (!ec && n != body.size()) {
    ec = boost::json::error::extra_data;
  }
  const RequestFieldsHandler& h = parser.handler();
  if (!h.duplicate.empty()) {
    // Parsers differ on which copy wins (the gateway would act on one, the provider run the
    // other): a repeated key is refused, whatever its spelling.
    std::string msg = "Duplicate key '";
    msg += h.duplicate;
    msg += "' in the request body: each key may appear only once.";
    return RequestError{std::move(msg), h.duplicate};
  }
  if (ec) {
    return RequestError{"The request body is not valid JSON: " + ec.message() + ".", ""};
  }
  if (h.top != JsonKind::Object) {
    return RequestError{"The request body must be a JSON object.", ""};
  }
  if (h.model == JsonKind::Missing || h.model == JsonKind::Null) {
    return RequestError{"You must provide a model parameter.", "model"};
  }
  if (h.model != JsonKind::String) {
    return RequestError{"Invalid type for 'model': expected a string.", "model"};
  }
  if (h.model_value.empty()) {
    return RequestError{"You must provide a model parameter.", "model"};
  }
  if (h.service_tier != JsonKind::Missing && h.service_tier != JsonKind::Null &&
      h.service_tier != JsonKind::String) {
    return RequestError{"Invalid type for 'service_tier': expected a string.", "service_tier"};
  }
  if (auto e = check_int(h.max_tokens, "max_tokens", 0, kMaxTokenParam)) {
    return e;
  }
  if (auto e = check_int(h.max_completion_tokens, "max_completion_tokens", 0, kMaxTokenParam)) {
    return e;
  }
  if (endpoint == Endpoint::ChatCompletions) {
    if (auto e = check_int(h.choices, "n", 1, kMaxChoices)) {
      return e;
    }
  }
  out.model = h.model_value;
  out.service_tier = h.service_tier_value;
  out.max_output_tokens = h.max_completion_tokens.value >= 0 ? h.max_completion_tokens.value
                                                             : h.max_tokens.value;
  out.choices = h.choices.value > 0 ? h.choices.value : 1;

  if (endpoint == Endpoint::Embeddings) {
    if (h.input == JsonKind::Missing) {
      return RequestError{"Missing required parameter: 'input'.", "input"};
    }
    if (h.input != JsonKind::String && h.input != JsonKind::Array) {
      return RequestError{"Invalid type for 'input': expected a string or an array.", "input"};
    }
    return std::nullopt;
  }

  if (h.messages == JsonKind::Missing) {
    return RequestError{"Missing required parameter: 'messages'.", "messages"};
  }
  if (h.messages != JsonKind::Array) {
    return RequestError{"Invalid type for 'messages': expected an array of message objects.",
                        "messages"};
  }
  if (h.messages_count == 0) {
    return RequestError{"Invalid 'messages': empty array. Expected an array with minimum length 1.",
                        "messages"};
  }
  if (h.stream != JsonKind::Missing && h.stream != JsonKind::Null) {
    if (h.stream != JsonKind::Bool) {
      return RequestError{"Invalid type for 'stream': expected a boolean.", "stream"};
    }
    out.stream = h.stream_value;
  }
  if (h.stream_options != JsonKind::Missing && h.stream_options != JsonKind::Null) {
    if (h.stream_options != JsonKind::Object) {
      return RequestError{"Invalid type for 'stream_options': expected an object.",
                          "stream_options"};
    }
    if (h.include_usage != JsonKind::Missing) {
      if (h.include_usage != JsonKind::Bool) {
        return RequestError{"Invalid type for 'stream_options.include_usage': expected a boolean.",
                            "stream_options.include_usage"};
      }
      out.client_wants_usage = h.include_usage_value;
    }
  }
  return std::nullopt;
}

RewriteResult rewrite_request(std::string_view body, const InspectedRequest& req,
                              std::string_view upstream_model, bool request_usage,
                              std::string& out) {
  const bool rename = upstream_model != req.model;
  if (!rename && !request_usage) {
    return RewriteResult::Original;
  }
  // Only now are the byte spans needed: one structural scan of the body inspect_request
  // validated, comparing keys decoded as that pass did. It repeated no key, so there is one
  // member of each name; that it is the one the gateway acted on is checked, not assumed.
  static constexpr std::array<std::string_view, 2> kNames{"model", "stream_options"};
  std::array<JsonField, 2> fields;
  std::size_t object_end = 0;
  if (!core::locate_fields(body, kNames, fields, &object_end)) {
    return RewriteResult::Inconsistent;
  }
  const JsonField& model_field = fields[0];
  if (model_field.kind() != JsonKind::String ||
      core::json_string_value(model_field.value) != req.model) {
    return RewriteResult::Inconsistent;
  }
  // Edits are applied from the end of the body backwards so earlier offsets stay valid.
  struct Edit {
    std::size_t begin, end;
    std::string text;
  };
  std::array<Edit, 2> edits;
  std::size_t n = 0;
  if (request_usage) {
    const JsonField& so = fields[1];
    if (so.present() && so.kind() == JsonKind::Object) {
      // Replace the object with a copy that has include_usage set to true.
      std::string obj(so.value);
      static constexpr std::array<std::string_view, 1> kUsage{"include_usage"};
      std::array<JsonField, 1> u;
      std::size_t obj_end = 0;
      if (!core::locate_fields(obj, kUsage, u, &obj_end)) {
        return RewriteResult::Inconsistent;
      }
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
      const bool empty = body.find_first_not_of(" \t\r\n", body.find('{') + 1) == object_end;
      edits[n++] = {object_end, object_end,
                    empty ? "\"stream_options\":{\"include_usage\":true}"
                          : ",\"stream_options\":{\"include_usage\":true}"};
    }
  }
  if (rename) {
    std::string lit;
    core::append_json_string(lit, upstream_model);
    const std::size_t begin = model_field.value.data() - body.data();
    edits[n++] = {begin, begin + model_field.value.size(), std::move(lit)};
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
  return RewriteResult::Rewritten;
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
  if (read_model_ && model_.empty()) {
    static constexpr std::array<std::string_view, 1> kModel{"model"};
    std::array<JsonField, 1> m;
    if (core::locate_fields(json, kModel, m) && m[0].kind() == JsonKind::String) {
      model_ = core::json_string_value(m[0].value).value_or(std::string());
    }
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
    usage_json_.assign(f[0].value);
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
