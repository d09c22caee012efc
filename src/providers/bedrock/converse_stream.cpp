#include "providers/bedrock/converse_stream.hpp"

#include "providers/bedrock/converse.hpp"

#include "core/json.hpp"

#include <boost/json/monotonic_resource.hpp>
#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>
#include <boost/json/value.hpp>

#include <array>

namespace llmgw::providers::bedrock {

namespace {

namespace json = boost::json;

/// The HTTP status of each exception ConverseStream may send in its stream (the statuses
/// Converse answers them with; Bedrock API Reference, ConverseStreamOutput and Errors).
constexpr std::array<std::pair<std::string_view, unsigned>, 7> kExceptionStatus{{
    {"validationException", 400},
    {"accessDeniedException", 403},
    {"modelTimeoutException", 408},
    {"modelStreamErrorException", 424},
    {"throttlingException", 429},
    {"internalServerException", 500},
    {"serviceUnavailableException", 503},
}};
constexpr unsigned kUnknownExceptionStatus = 500;

const json::value* member(const json::object& o, std::string_view key) {
  const json::value* v = o.if_contains(key);
  return v != nullptr && !v->is_null() ? v : nullptr;
}

std::string_view string_member(const json::object& o, std::string_view key) {
  const json::value* v = member(o, key);
  return v != nullptr && v->is_string() ? std::string_view(v->get_string()) : std::string_view{};
}

/// `contentBlockIndex`, or -1.
std::int64_t block_index(const json::object& o) {
  const json::value* v = member(o, "contentBlockIndex");
  return v != nullptr && v->is_int64() ? v->get_int64() : -1;
}

/// An exception frame's message ("message", or "Message" as some AWS services spell it).
std::string exception_message(std::string_view payload) {
  boost::system::error_code ec;
  const json::value v = json::parse(payload, ec);
  if (ec || !v.is_object()) {
    return {};
  }
  const std::string_view m = string_member(v.get_object(), "message");
  return std::string(m.empty() ? string_member(v.get_object(), "Message") : m);
}

}  // namespace

std::pair<std::string, unsigned> stream_exception_type(std::string_view exception_type) {
  unsigned status = kUnknownExceptionStatus;
  for (const auto& [name, s] : kExceptionStatus) {
    if (name == exception_type) {
      status = s;
    }
  }
  ProviderError e = map_error(status, "", "");
  return {std::move(e.type), e.status};
}

ConverseStreamTranslator::ConverseStreamTranslator(const CallInput& in,
                                                   std::shared_ptr<const Redactor> redactor)
    : format_(in.format),
      client_wants_usage_(in.client_wants_usage),
      writer_("chatcmpl-" + std::string(in.request_id), in.upstream_model, in.created),
      redactor_(std::move(redactor)) {}

void ConverseStreamTranslator::feed(std::string& in, std::string& out) {
  if (closed_) {
    in.clear();
    return;
  }
  messages_.clear();
  const bool ok = decoder_.feed(in, messages_);
  in.clear();
  for (const auto& m : messages_) {
    if (closed_) {
      break;
    }
    on_message(m, out);
  }
  messages_.clear();
  if (!ok && !closed_) {
    unreadable(to_string(decoder_.error()), out);
  }
}

void ConverseStreamTranslator::finish(std::string& in, std::string& out, bool complete) {
  feed(in, out);
  if (closed_ || !complete || !stopped_ || !decoder_.idle()) {
    return;
  }
  // The body ended properly after messageStop but without metadata: end the client's stream
  // (its usage is then estimated).
  ChunkWriter::done(out);
  ended_ = true;
  closed_ = true;
}

void ConverseStreamTranslator::on_message(const EventMessage& m, std::string& out) {
  const std::string_view kind = m.string_header(":message-type");
  if (kind == "event") {
    if (!on_event(m.string_header(":event-type"), m.payload, out)) {
      unreadable("an event's JSON is malformed", out);
    }
  } else if (kind == "exception") {
    const std::string_view name = m.string_header(":exception-type");
    const auto [type, status] = stream_exception_type(name);
    std::string message = redactor_->clean(exception_message(m.payload));
    if (message.empty()) {
      message = "The provider's stream ended with " +
                std::string(name.empty() ? std::string_view("an exception") : name) + ".";
    }
    fail(type, message, status, out);
  } else if (kind == "error") {
    std::string message = redactor_->clean(m.string_header(":error-message"));
    if (message.empty()) {
      message = "The provider's stream ended with an error.";
    }
    const auto [type, status] = stream_exception_type(m.string_header(":error-code"));
    fail(type, message, status, out);
  }
  // Other message types carry nothing for the client.
}

bool ConverseStreamTranslator::on_event(std::string_view type, std::string_view payload,
                                        std::string& out) {
  if (type == "contentBlockStop") {
    return true;
  }
  const bool known = type == "messageStart" || type == "contentBlockStart" ||
                     type == "contentBlockDelta" || type == "messageStop" || type == "metadata";
  if (!known) {
    return true;  // an event a newer Bedrock added
  }
  if (type == "contentBlockDelta" && text_delta(payload, out)) {
    return true;
  }
  // The event lives for this call: parsed into an arena on the stack.
  alignas(16) unsigned char arena[2048];
  json::monotonic_resource mr(arena, sizeof arena);
  boost::system::error_code ec;
  const json::value v = json::parse(payload, ec, &mr);
  if (ec || !v.is_object()) {
    return false;
  }
  const json::object& e = v.get_object();
  if (type == "messageStart") {
    role(out);
  } else if (type == "contentBlockStart") {
    const json::value* start = member(e, "start");
    const json::value* use =
        start != nullptr && start->is_object() ? member(start->get_object(), "toolUse") : nullptr;
    if (use != nullptr && use->is_object()) {
      role(out);
      const int index = static_cast<int>(tools_.size());
      tools_.emplace_back(block_index(e), index);
      writer_.tool_start(out, index, string_member(use->get_object(), "toolUseId"),
                         string_member(use->get_object(), "name"));
    }
  } else if (type == "contentBlockDelta") {
    const json::value* delta = member(e, "delta");
    if (delta == nullptr || !delta->is_object()) {
      return false;
    }
    const json::object& d = delta->get_object();
    if (const json::value* text = member(d, "text"); text != nullptr && text->is_string()) {
      role(out);
      writer_.content(out, text->get_string());
      ++events_;
    } else if (const json::value* use = member(d, "toolUse"); use != nullptr && use->is_object()) {
      const int index = tool_index(block_index(e));
      const std::string_view input = string_member(use->get_object(), "input");
      if (index >= 0 && !input.empty()) {
        writer_.tool_arguments(out, index, input);
        ++events_;
      }
    } else if (const json::value* rc = member(d, "reasoningContent");
               rc != nullptr && rc->is_object()) {
      const std::string_view text = string_member(rc->get_object(), "text");
      if (!text.empty()) {
        role(out);
        writer_.reasoning(out, text);
        ++events_;
      }
      // signature and redactedContent have no OpenAI field.
    }
  } else if (type == "messageStop") {
    role(out);
    writer_.finish(out, finish_reason(string_member(e, "stopReason")));
    stopped_ = true;
    maybe_done(out);
  } else {  // metadata
    const json::value* usage = member(e, "usage");
    pricing::TokenUsage u;
    if (usage != nullptr && usage->is_object() &&
        pricing::normalize_bedrock(json::serialize(*usage), u)) {
      usage_ = u;
    }
    metadata_ = true;
    if (client_wants_usage_ && usage_.reported) {
      writer_.usage(out, usage_);
    }
    maybe_done(out);
  }
  return true;
}

bool ConverseStreamTranslator::text_delta(std::string_view payload, std::string& out) {
  // Most of a stream's events are text deltas: read without a document (validated, then the
  // two fields located), the text passed on as the JSON literal Bedrock wrote.
  if (!core::validate_json(payload)) {
    return false;
  }
  static constexpr std::array<std::string_view, 1> kDelta{"delta"};
  static constexpr std::array<std::string_view, 1> kText{"text"};
  std::array<core::JsonField, 1> delta;
  std::array<core::JsonField, 1> text;
  if (!core::locate_fields(payload, kDelta, delta) ||
      delta[0].kind() != core::JsonKind::Object ||
      !core::locate_fields(delta[0].value, kText, text) ||
      text[0].kind() != core::JsonKind::String) {
    return false;
  }
  role(out);
  writer_.content(out, JsonLiteral{text[0].value});
  ++events_;
  return true;
}

void ConverseStreamTranslator::role(std::string& out) {
  if (!role_sent_) {
    writer_.role(out);
    role_sent_ = true;
  }
}

void ConverseStreamTranslator::maybe_done(std::string& out) {
  if (stopped_ && metadata_) {
    ChunkWriter::done(out);
    ended_ = true;
    closed_ = true;
  }
}

int ConverseStreamTranslator::tool_index(std::int64_t block) const noexcept {
  for (const auto& [b, index] : tools_) {
    if (b == block) {
      return index;
    }
  }
  return -1;
}

void ConverseStreamTranslator::fail(std::string_view type, std::string_view message,
                                    unsigned status, std::string& out) {
  out += render_stream_error(format_, type, message, status);
  error_ = type;
  closed_ = true;
}

void ConverseStreamTranslator::unreadable(std::string_view why, std::string& out) {
  constexpr unsigned kBadGateway = 502;
  fail("upstream_error",
       "The provider's stream could not be read (" + std::string(why) + ").", kBadGateway, out);
}

}  // namespace llmgw::providers::bedrock
