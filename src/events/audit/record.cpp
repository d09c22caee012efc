#include "events/audit/record.hpp"

#include "core/ids.hpp"
#include "core/json.hpp"

#include <algorithm>

namespace llmgw::audit {

namespace {

void key(std::string& out, std::string_view k) {
  out += ",\"";
  out += k;
  out += "\":";
}

void text(std::string& out, std::string_view k, std::string_view v) {
  key(out, k);
  core::append_json_string(out, v);
}

void number(std::string& out, std::string_view k, std::int64_t v) {
  key(out, k);
  out += std::to_string(v);
}

/// A body as JSON when it is whole, valid JSON; else as a string, cut at `max` bytes (on a
/// UTF-8 boundary) and marked.
void body(std::string& out, std::string_view k, std::string_view b, std::size_t max) {
  const bool cut = b.size() > max;
  if (!cut && !b.empty() && core::validate_json(b)) {
    key(out, k);
    // A line break in valid JSON is whitespace (inside a string it would be escaped): a
    // space keeps the record on one line.
    const std::size_t at = out.size();
    out += b;
    std::replace_if(out.begin() + static_cast<std::ptrdiff_t>(at), out.end(),
                    [](char c) { return c == '\n' || c == '\r'; }, ' ');
    return;
  }
  std::size_t n = cut ? max : b.size();
  while (cut && n > 0 && (static_cast<unsigned char>(b[n]) & 0xC0) == 0x80) {
    --n;  // not inside a UTF-8 sequence
  }
  text(out, k, b.substr(0, n));
  if (cut) {
    key(out, std::string(k) + "_cut");
    out += "true";
  }
}

}  // namespace

void render(std::string& out, const Record& r, core::AuditBodies mode,
            std::size_t max_body_bytes, const Redactor& redactor) {
  out += "{\"request_id\":";
  core::append_json_string(out, r.request_id);
  if (!r.client_request_id.empty()) {
    text(out, "client_request_id", r.client_request_id);
  }
  text(out, "time",
       core::format_utc(r.time_us / 1'000'000).substr(0, 19) + "." +
           std::to_string(1'000'000 + r.time_us % 1'000'000).substr(1) + "Z");
  text(out, "endpoint", r.endpoint);
  if (!r.key_id.empty()) {
    text(out, "key_id", r.key_id);
    text(out, "key_name", r.key_name);
  }
  if (!r.model_requested.empty()) {
    text(out, "model_requested", r.model_requested);
  }
  if (!r.alias.empty()) {
    text(out, "alias", r.alias);
  }
  if (!r.model.empty()) {
    text(out, "model", r.model);
    text(out, "provider", r.provider);
    text(out, "upstream_model", r.upstream_model);
  }
  number(out, "status", r.status);
  if (!r.error_type.empty()) {
    text(out, "error_type", r.error_type);
  }
  key(out, "stream");
  out += r.stream ? "true" : "false";
  number(out, "total_us", r.total_us);
  if (r.overhead_us >= 0) {
    number(out, "overhead_us", r.overhead_us);
    number(out, "upstream_us", r.upstream_us);
  }
  if (r.ttft_us >= 0) {
    number(out, "ttft_us", r.ttft_us);
  }
  const Tokens& t = r.tokens;
  out += ",\"tokens\":{\"input\":" + std::to_string(t.input);
  number(out, "cache_read", t.cache_read);
  number(out, "cache_write_5m", t.cache_write_5m);
  number(out, "cache_write_1h", t.cache_write_1h);
  number(out, "input_audio", t.input_audio);
  number(out, "input_image", t.input_image);
  number(out, "output", t.output);
  number(out, "reasoning", t.reasoning);
  number(out, "output_audio", t.output_audio);
  number(out, "output_image", t.output_image);
  key(out, "reported");
  out += t.reported ? "true}" : "false}";
  if (!r.cost_usd.empty()) {
    text(out, "cost_usd", r.cost_usd);
  }
  if (!r.cost_status.empty()) {
    text(out, "cost_status", r.cost_status);
  }
  text(out, "bodies", core::to_string(mode));
  if (mode == core::AuditBodies::Full) {
    body(out, "request", r.request_body, max_body_bytes);
    if (!r.response_body.empty()) {
      body(out, "response", r.response_body, max_body_bytes);
    }
  } else if (mode == core::AuditBodies::Redacted) {
    body(out, "request", redactor.redact(r.request_body), max_body_bytes);
    if (!r.response_body.empty()) {
      body(out, "response", redactor.redact(r.response_body), max_body_bytes);
    }
  }
  out += '}';
}

}  // namespace llmgw::audit
