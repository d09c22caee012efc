#include "proxy/call.hpp"

#include "events/audit/record.hpp"

#include <boost/beast/core/string.hpp>

#include <charconv>

namespace llmgw::proxy {

namespace {
std::string_view endpoint_name(providers::Format f) {
  switch (f) {
    case providers::Format::OpenAIChat: return "chat.completions";
    case providers::Format::OpenAIEmbeddings: return "embeddings";
    case providers::Format::AnthropicMessages: return "messages";
  }
  return "chat.completions";
}
}  // namespace

void Proxy::compute_cost(http::Exchange& ex, Call& call) {
  if (call.cost_computed) {
    return;
  }
  call.cost_computed = true;
  pricing::TokenUsage u = call.usage;
  bool estimated = false;
  if (!u.reported) {
    u = {};
    if ((call.status >= 200 && call.status < 300) || call.status == 499 ||
        (call.status >= 500 && call.streamed_events > 0)) {
      // Answered (or cut short) without usage: estimate from what passed through. About four
      // bytes of prompt per token; one token per streamed event.
      u.input_tokens = static_cast<std::int64_t>(ex.request().body.size()) / 4;
      u.output_tokens = call.streamed_events;
      estimated = u.input_tokens > 0 || u.output_tokens > 0;
    }
  }
  call.usage = u;
  call.cost = pricing::compute_cost(call.pricing, u, call.service, estimated);
  if (call.cost.known()) {
    call.cost_text = call.cost.total.to_string();
  }
}

std::string Proxy::cost_headers(const Call& call) {
  std::string h;
  h.reserve(384);
  h += "x-llmgw-cost-usd: ";
  h += call.cost.known() ? std::string_view(call.cost_text) : std::string_view("unknown");
  h += "\r\nx-llmgw-cost-status: ";
  h += pricing::to_string(call.cost.status);
  h += "\r\n";
  append_rate_headers(h, call.rate);
  return h;
}

std::string Proxy::rate_headers(const limits::RateDecision& d) {
  std::string h;
  append_rate_headers(h, d);
  return h;
}

void Proxy::append_rate_headers(std::string& h, const limits::RateDecision& d) {
  // Appended in place: this runs on every answer, and a string per value made it a dozen
  // allocations a call.
  const auto add = [&h](std::string_view what, const limits::WindowState& w) {
    char buf[24];
    h += "x-ratelimit-limit-";
    h += what;
    h += ": ";
    h.append(buf, std::to_chars(buf, buf + sizeof buf, w.limit).ptr);
    h += "\r\nx-ratelimit-remaining-";
    h += what;
    h += ": ";
    h.append(buf, std::to_chars(buf, buf + sizeof buf, w.remaining).ptr);
    h += "\r\nx-ratelimit-reset-";
    h += what;
    h += ": ";
    limits::append_reset(h, w.reset_ms);
    h += "\r\n";
  };
  if (d.requests) {
    add("requests", *d.requests);
  }
  if (d.tokens) {
    add("tokens", *d.tokens);
  }
}

std::string Proxy::upstream_headers(const Call& call, const std::string& passthrough) {
  if (!call.rate.requests && !call.rate.tokens) {
    return passthrough;
  }
  // The key's limits are the gateway's: the provider's x-ratelimit-* (about the gateway's
  // own provider account) would contradict them.
  std::string out;
  std::string_view rest = passthrough;
  while (!rest.empty()) {
    const auto end = rest.find("\r\n");
    const std::string_view line = rest.substr(0, end == std::string_view::npos ? rest.size() : end + 2);
    rest.remove_prefix(line.size());
    if (!boost::beast::iequals(line.substr(0, std::min<std::size_t>(12, line.size())), "x-ratelimit-")) {
      out += line;
    }
  }
  return out;
}

void Proxy::record_usage(http::Exchange& ex, Call& call) {
  call.recorded = true;
  store::UsageRecord r;
  r.request_id = std::string(ex.gateway_request_id());
  r.client_request_id = std::string(ex.client_request_id());
  r.key_id = call.key->id;
  r.model = call.req.model;
  r.upstream_model = call.route->upstream_model;
  r.provider = call.route->provider->name;
  r.endpoint = std::string(endpoint_name(call.format));
  r.status = static_cast<int>(call.status != 0 ? call.status : ex.status());
  r.pricing_model = call.pricing != nullptr ? call.pricing->name : std::string();
  r.service_tier = std::string(pricing::to_string(call.service));
  r.prompt_tokens = call.usage.prompt_total();
  r.completion_tokens = call.usage.completion_total();
  r.cached_tokens = call.usage.cache_read_tokens;
  r.reasoning_tokens = call.usage.reasoning_tokens;
  r.cache_write_tokens = call.usage.cache_write_5m_tokens + call.usage.cache_write_1h_tokens;
  r.usage_reported = call.usage.reported;
  if (call.cost.known()) {
    r.cost_usd = call.cost_text;
  }
  r.cost_status = std::string(pricing::to_string(call.cost.status));
  r.prices_json = call.cost.lines_json;
  r.upstream_us = call.upstream_us;
  r.overhead_us = std::max<std::int64_t>(0, micros_since(ex.started_at()) - call.upstream_us);
  r.stream = call.req.stream;
  // Dated at its start, like its budget reservation: a call that straddles midnight counts in
  // the period its reservation was made in, in the ledger and in the stored spend alike.
  r.created_at_us = core::unix_micros() - micros_since(ex.started_at());
  deps_.usage.submit(std::move(r), ex.worker().index());
}

void Proxy::observe(http::Exchange& ex, Local& local, const Call& call,
                    std::optional<metrics::Route> route) {
  using metrics::TokenKind;
  metrics::RequestRecord r;
  switch (call.format) {
    case providers::Format::OpenAIChat: r.route = metrics::Route::ChatCompletions; break;
    case providers::Format::OpenAIEmbeddings: r.route = metrics::Route::Embeddings; break;
    case providers::Format::AnthropicMessages: r.route = metrics::Route::Messages; break;
  }
  if (route) {
    r.route = *route;
  }
  if (call.route != nullptr) {
    r.target = call.route->metrics_target;
  }
  r.status = call.status != 0 ? call.status : ex.status();
  const auto total = http::Clock::now() - ex.started_at();
  r.total = total;
  if (call.calling) {
    const std::chrono::microseconds upstream(call.upstream_us);
    r.upstream = upstream;
    r.overhead = std::max(std::chrono::nanoseconds(0), total - upstream);
  }
  if (call.first_token_us >= 0) {
    r.first_token = std::chrono::microseconds(call.first_token_us);
  }
  const pricing::TokenUsage& u = call.usage;
  const auto put = [&r](TokenKind k, std::int64_t n) { r.tokens[static_cast<std::size_t>(k)] = n; };
  put(TokenKind::InputText, u.input_tokens);
  put(TokenKind::InputCacheRead, u.cache_read_tokens);
  put(TokenKind::InputCacheWrite5m, u.cache_write_5m_tokens);
  put(TokenKind::InputCacheWrite1h, u.cache_write_1h_tokens);
  put(TokenKind::InputAudio, u.input_audio_tokens);
  put(TokenKind::InputImage, u.input_image_tokens);
  put(TokenKind::OutputText, u.output_tokens);
  put(TokenKind::OutputReasoning, u.reasoning_tokens);
  put(TokenKind::OutputAudio, u.output_audio_tokens);
  put(TokenKind::OutputImage, u.output_image_tokens);
  if (call.cost.known()) {
    r.cost = call.cost.total;
  }
  if (call.refusal) {
    local.metrics.refused(*call.refusal);
  }
  if (call.upstream_error) {
    local.metrics.upstream_error(r.target, *call.upstream_error);
  }
  local.metrics.observe(r);
}

void Proxy::rejected(http::Exchange& ex) {
  const std::string_view path = ex.path();
  Call call;
  if (path == "/v1/chat/completions") {
    call.format = providers::Format::OpenAIChat;
  } else if (path == "/v1/embeddings") {
    call.format = providers::Format::OpenAIEmbeddings;
  } else if (path == "/v1/messages") {
    call.format = providers::Format::AnthropicMessages;
  } else {
    return;  // not an inference request, or not even its path was read
  }
  try {
    call.status = ex.status();
    auto* local = static_cast<Local*>(ex.worker().local());
    if (local != nullptr) {
      observe(ex, *local, call);
    }
    if (deps_.audit != nullptr) {
      audit(ex, call);  // metadata: the body was not read whole
    }
  } catch (const std::exception& e) {
    core::LogLine(core::LogLevel::Error, "audit of a refused request failed")
        .field("error", e.what())
        .emit();
  }
}

void Proxy::keep_bodies(http::Exchange& ex, Call& call, core::AuditBodies mode) {
  call.audit_bodies = mode;
  ex.keep_body = mode != core::AuditBodies::Metadata ? &call.response_body : nullptr;
}

void Proxy::audit(http::Exchange& ex, const Call& call) {
  audit::Record r;
  r.request_id = ex.gateway_request_id();
  r.client_request_id = ex.client_request_id();
  const std::int64_t total_us = micros_since(ex.started_at());
  r.time_us = core::unix_micros() - total_us;
  r.endpoint = endpoint_name(call.format);
  if (call.key) {
    r.key_id = call.key->id;
    r.key_name = call.key->name;
  }
  r.model_requested = call.req.model;
  if (call.route != nullptr) {
    if (call.route->is_alias) {
      r.alias = call.route->name;
    }
    r.model = call.route->model;
    r.provider = call.route->provider->name;
    r.upstream_model = call.route->upstream_model;
  }
  r.status = call.status != 0 ? call.status : ex.status();
  r.error_type = ex.log.error_type;
  r.stream = call.req.stream;
  r.total_us = total_us;
  if (call.calling) {
    r.upstream_us = call.upstream_us;
    r.overhead_us = std::max<std::int64_t>(0, total_us - call.upstream_us);
  }
  r.ttft_us = call.first_token_us;
  const pricing::TokenUsage& u = call.usage;
  r.tokens = {u.input_tokens,       u.cache_read_tokens, u.cache_write_5m_tokens,
              u.cache_write_1h_tokens, u.input_audio_tokens, u.input_image_tokens,
              u.output_tokens,      u.reasoning_tokens,  u.output_audio_tokens,
              u.output_image_tokens, u.reported};
  if (call.cost_computed) {
    r.cost_usd = call.cost_text;
    r.cost_status = pricing::to_string(call.cost.status);
  }
  r.request_body = ex.request().body;
  r.response_body = call.response_body;
  std::string line;
  line.reserve(512);
  audit::render(line, r, call.audit_bodies, deps_.audit_max_body_bytes, *deps_.audit_redactor);
  deps_.audit->submit(line, ex.worker().index());
}

}  // namespace llmgw::proxy
