#include "proxy/call.hpp"

#include "core/log.hpp"
#include "http/response_parser.hpp"
#include "providers/messages/messages.hpp"
#include "providers/stream_assembler.hpp"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http/error.hpp>

namespace llmgw::proxy {

using core::Errc;

namespace {

constexpr std::size_t kUpstreamReadChunk = 16 * 1024;
constexpr std::uint32_t kMaxUpstreamHeaderBytes = 64 * 1024;
/// A pooled connection keeps its buffers; beyond this they are given back to the allocator.
constexpr std::size_t kKeepBufferBytes = 64 * 1024;

/// Closes the upstream connection when its deadline passes (connect is bounded elsewhere).
class UpstreamDeadline final : public http::Deadline {
 public:
  explicit UpstreamDeadline(http::DeadlineTicker& t) : ticker_(t) { ticker_.add(*this); }
  ~UpstreamDeadline() override { ticker_.remove(*this); }
  void watch(http::UpstreamConnection* c) noexcept { conn_ = c; }
  void on_deadline() override {
    fired = true;
    if (conn_ != nullptr) {
      conn_->close();
    }
  }
  bool fired = false;

 private:
  http::DeadlineTicker& ticker_;
  http::UpstreamConnection* conn_ = nullptr;
};

/// Shared with the client watcher, which may resume after the call has ended.
struct ClientWatch {
  bool done = false;
  bool client_gone = false;
  http::UpstreamConnection* upstream = nullptr;
};

/// Waits until the client socket is readable, peeking so that a pipelined request stays in
/// the socket. End of stream means the client left: the upstream call is cancelled.
asio::awaitable<void> watch_client(http::tcp::socket* sock, std::shared_ptr<ClientWatch> w) {
  char byte;
  auto [ec, n] = co_await sock->async_receive(asio::buffer(&byte, 1),
                                              http::tcp::socket::message_peek, use_tuple);
  if (w->done) {
    co_return;  // the call ended; `sock` may be gone
  }
  if (ec && ec != asio::error::eof) {
    // Aborted because the server closed the client socket (shutdown's hard deadline, or a
    // client deadline): the call must not outlive it.
    if (!sock->is_open()) {
      w->client_gone = true;
      if (w->upstream != nullptr) {
        w->upstream->close();
      }
    }
    co_return;
  }
  if (ec == asio::error::eof || n == 0) {
    w->client_gone = true;
    if (w->upstream != nullptr) {
      w->upstream->close();
    }
  }
  // Otherwise a pipelined request is waiting: the client is there; stop watching.
}

/// Starts the client watcher only for calls that are not over quickly: a fast call costs no
/// extra coroutine or syscall, a slow one learns within a tick or two that its client left.
class LazyClientWatch final : public http::Deadline {
 public:
  static constexpr std::chrono::milliseconds kDelay{50};

  explicit LazyClientWatch(http::Exchange& ex) : ex_(ex), ticker_(ex.worker().ticker()) {
    ticker_.add(*this);
    arm_after(kDelay);
  }
  ~LazyClientWatch() override {
    ticker_.remove(*this);
    if (state_) {
      state_->done = true;
      state_->upstream = nullptr;
      boost::system::error_code ignored;
      ex_.client_socket().cancel(ignored);
    }
  }
  void set_upstream(http::UpstreamConnection* c) noexcept {
    upstream_ = c;
    if (state_) {
      state_->upstream = c;
    }
  }
  [[nodiscard]] bool client_gone() const noexcept { return state_ && state_->client_gone; }
  void on_deadline() override {
    state_ = std::make_shared<ClientWatch>();
    state_->upstream = upstream_;
    asio::co_spawn(ex_.worker().io_context(), watch_client(&ex_.client_socket(), state_),
                   asio::detached);
  }

 private:
  http::Exchange& ex_;
  http::DeadlineTicker& ticker_;
  http::UpstreamConnection* upstream_ = nullptr;
  std::shared_ptr<ClientWatch> state_;
};

void release(Proxy::Local& local, const catalog::Provider& provider,
             std::unique_ptr<http::UpstreamConnection> conn) {
  conn->body.clear();
  if (conn->body.capacity() > kKeepBufferBytes) {
    conn->body.shrink_to_fit();
  }
  if (conn->read_buffer.capacity() > kKeepBufferBytes) {
    conn->read_buffer.clear();
    conn->read_buffer.shrink_to_fit();
  }
  local.pool.release(provider.origin, std::move(conn));
}

}  // namespace


namespace {

/// Fetches an adapter's credential (blocking I/O: runs on the blocking pool).
asio::awaitable<std::string> refresh_credential(std::shared_ptr<const providers::Adapter> a,
                                                std::string provider) {
  std::string error = a->refresh_credential();
  if (!error.empty()) {
    core::LogLine(core::LogLevel::Error, "provider credential refresh failed")
        .field("provider", provider)
        .field("error", error)
        .emit();
  }
  co_return error;
}

/// A provider that names the model behind its answer (Azure's deployments) is priced by it,
/// unless the model sets its price list itself.
void price_by_reported_model(Proxy::Call& call, std::string_view reported) {
  const catalog::Provider& provider = *call.route->provider;
  if (reported.empty() || call.route->pricing_explicit ||
      !provider.adapter->prices_by_reported_model()) {
    return;
  }
  if (auto p = call.snapshot->resolve_pricing(provider.type, reported)) {
    call.pricing = p.get();
  }
}

/// The event that ends a broken stream, in the client's format.
std::string stream_error_event(providers::Format format, Errc e, std::string_view message) {
  if (format == providers::Format::AnthropicMessages) {
    return providers::render_stream_error(format, core::error_type(e), message,
                                          core::http_status(e));
  }
  std::string out = "data: ";
  out += core::render_error(e, message);
  out += "\n\n";
  return out;
}

}  // namespace

asio::awaitable<void> Proxy::forward(http::Exchange& ex, Local& local, Call& call) {
  namespace bhttp = boost::beast::http;
  const catalog::Provider& provider = *call.route->provider;
  const providers::Adapter& adapter = *provider.adapter;
  const bool stream = call.format != providers::Format::OpenAIEmbeddings && call.req.stream;

  providers::CallInput in;
  in.format = call.format;
  in.body = ex.request().body;
  in.inspected = &call.req;
  in.upstream_model = call.route->upstream_model;
  in.stream = stream;
  in.client_wants_usage = call.req.client_wants_usage;
  if (call.route->pricing && call.route->pricing->max_output_tokens) {
    in.max_output_tokens = *call.route->pricing->max_output_tokens;
  }
  in.anthropic_beta = ex.request().anthropic_beta;
  in.request_id = ex.gateway_request_id();
  in.created = core::unix_seconds();
  in.now = std::chrono::system_clock::now();
  // A call in a format the provider does not take (Anthropic Messages to an OpenAI-format
  // provider) goes to it as OpenAI chat, and its answer comes back translated.
  const bool translated = !adapter.accepts(call.format);
  std::string chat_body;
  providers::InspectedRequest chat_req;
  if (translated) {
    if (auto refusal = providers::messages_to_chat(in.body, call.route->upstream_model, stream,
                                                   chat_body)) {
      call.status = core::http_status(refusal->errc);
      co_await respond_error(ex, call.format, refusal->errc, refusal->message, refusal->param);
      co_return;
    }
    if (auto err = providers::inspect_request(providers::Endpoint::ChatCompletions, chat_body,
                                              chat_req)) {
      // The translation made a body OpenAI's validator refuses: a gateway bug, not the
      // client's.
      core::LogLine(core::LogLevel::Error, "translated request is not valid OpenAI chat")
          .field("request_id", ex.gateway_request_id())
          .field("error", err->message)
          .emit();
      call.status = 500;
      co_await respond_error(ex, call.format, Errc::Internal,
                             "The gateway failed to process the request.");
      co_return;
    }
    in.format = providers::Format::OpenAIChat;
    in.anthropic_beta = {};  // Anthropic's betas mean nothing to an OpenAI-format provider
    in.body = chat_body;
    in.inspected = &chat_req;
    in.client_wants_usage = true;  // the translation asks for it and reads it
  }

  switch (adapter.credential_state(in.now)) {
    case providers::Adapter::CredentialState::Ready: break;
    case providers::Adapter::CredentialState::RefreshSoon:
      // Still valid: this call goes on with it while the blocking pool fetches the next.
      asio::co_spawn(deps_.blocking, refresh_credential(provider.adapter, provider.name),
                     asio::detached);
      break;
    case providers::Adapter::CredentialState::Missing: {
      auto [eptr, error] = co_await asio::co_spawn(
          deps_.blocking, refresh_credential(provider.adapter, provider.name), use_tuple);
      if (eptr || !error.empty()) {
        call.status = 502;
        co_await respond_error(ex, call.format, Errc::UpstreamUnavailable,
                               "The gateway could not obtain credentials for the provider `" +
                                   provider.name + "`.");
        co_return;
      }
      break;
    }
  }

  providers::Outgoing og;
  if (auto refusal = adapter.prepare(in, og)) {
    if (refusal->errc == Errc::Internal) {
      core::LogLine(core::LogLevel::Error, "request translation failed")
          .field("request_id", ex.gateway_request_id())
          .field("provider", provider.name)
          .emit();
    }
    call.status = core::http_status(refusal->errc);
    co_await respond_error(ex, call.format, refusal->errc, refusal->message, refusal->param);
    co_return;
  }
  const std::string_view up_body = og.client_body ? in.body : std::string_view(og.body);

  std::string head;
  head.reserve(64 + og.target.size() + provider.static_headers.size() + og.headers.size());
  head += "POST ";
  head += og.target;
  head += " HTTP/1.1\r\n";
  head += provider.static_headers;
  head += og.headers;
  head += "Content-Length: ";
  head += std::to_string(up_body.size());
  head += "\r\n\r\n";

  LazyClientWatch watch(ex);

  const auto upstream_start = http::Clock::now();
  auto finish_error = [&](Errc e, std::string_view msg) -> asio::awaitable<void> {
    if (!call.upstream_error) {
      call.upstream_error = e == Errc::UpstreamTimeout    ? metrics::UpstreamError::Timeout
                            : e == Errc::UpstreamProtocol ? metrics::UpstreamError::Protocol
                                                          : metrics::UpstreamError::Closed;
    }
    call.upstream_us = micros_since(upstream_start);
    ex.log.upstream_us = call.upstream_us;
    if (watch.client_gone()) {
      call.status = 499;  // client closed request (nginx's convention); nothing to send
      ex.abort_connection();
      co_return;
    }
    call.status = core::http_status(e);
    compute_cost(ex, call);
    co_await respond_error(ex, call.format, e, msg, {}, cost_headers(call));
  };

  std::unique_ptr<http::UpstreamConnection> conn;
  UpstreamDeadline deadline(ex.worker().ticker());
  std::optional<http::ResponseParser> parser;
  boost::system::error_code ec;

  for (int attempt = 0; attempt < 2; ++attempt) {
    conn = attempt == 0 ? local.pool.take_idle(provider.origin) : nullptr;
    if (!conn) {
      auto c = co_await local.pool.connect(provider.origin, provider.connect_timeout,
                                           ex.worker().ticker());
      if (!c) {
        const bool timeout = c.error() == core::make_error_code(Errc::UpstreamTimeout);
        call.upstream_error =
            timeout ? metrics::UpstreamError::Timeout : metrics::UpstreamError::Connect;
        co_await finish_error(timeout ? Errc::UpstreamTimeout : Errc::UpstreamUnavailable,
                              timeout ? "The provider did not accept the connection in time."
                                      : "The gateway could not connect to the provider.");
        co_return;
      }
      conn = std::move(*c);
    }
    watch.set_upstream(conn.get());
    deadline.watch(conn.get());
    auto& buf = conn->read_buffer;
    auto& pending = conn->body;
    deadline.arm_after(provider.first_byte_timeout);
    const std::array<asio::const_buffer, 2> out{asio::buffer(head),
                                                asio::buffer(up_body)};
    auto [wec, wn] = co_await conn->write(out);
    ec = wec;
    buf.clear();
    pending.clear();
    parser.emplace(&pending);
    parser->eager(true);
    parser->header_limit(kMaxUpstreamHeaderBytes);
    parser->body_limit(stream ? boost::optional<std::uint64_t>()
                              : boost::optional<std::uint64_t>(deps_.max_upstream_response_bytes));
    std::size_t received = 0;
    while (!ec && !parser->is_header_done()) {
      auto [rec, n] = co_await conn->read_some(buf.prepare(kUpstreamReadChunk));
      if (rec) {
        ec = rec;
        break;
      }
      received += n;
      buf.commit(n);
      const std::size_t used = parser->put(buf.data(), ec);
      buf.consume(used);
      if (ec == bhttp::error::need_more) {
        ec = {};
      }
    }
    // A pooled connection the provider had already closed: retry once on a new one.
    if (ec && conn->reused && received == 0 && !deadline.fired && !watch.client_gone()) {
      conn->close();
      continue;
    }
    break;
  }
  auto& buf = conn->read_buffer;
  auto& pending = conn->body;
  if (ec) {
    conn->close();
    if (deadline.fired) {
      co_await finish_error(Errc::UpstreamTimeout,
                            "The provider did not answer within the gateway's time limit.");
    } else if (ec.category() == boost::system::error_code(bhttp::error::need_more).category()) {
      co_await finish_error(Errc::UpstreamProtocol, "The provider's answer was not valid HTTP.");
    } else {
      co_await finish_error(Errc::UpstreamUnavailable,
                            "The connection to the provider failed before it answered.");
    }
    co_return;
  }

  // Reads more of the body into `pending` (through the parser). Returns false at the end.
  auto read_more = [&]() -> asio::awaitable<bool> {
    if (parser->is_done()) {
      co_return false;
    }
    // Bytes already buffered may complete the message without another read.
    if (buf.size() > 0) {
      const std::size_t used = parser->put(buf.data(), ec);
      buf.consume(used);
      if (ec == bhttp::error::need_more) {
        ec = {};
      }
      if (ec || parser->is_done() || used > 0) {
        co_return !ec;
      }
    }
    deadline.arm_after(provider.idle_timeout);
    auto [rec, n] = co_await conn->read_some(buf.prepare(kUpstreamReadChunk));
    if (rec == asio::error::eof && parser->need_eof()) {
      parser->put_eof(ec);
      co_return false;
    }
    if (rec) {
      ec = rec;
      co_return false;
    }
    buf.commit(n);
    const std::size_t used = parser->put(buf.data(), ec);
    buf.consume(used);
    if (ec == bhttp::error::need_more) {
      ec = {};
    }
    co_return !ec;
  };

  const unsigned status = parser->status();
  const bool is_stream = parser->content_type().starts_with(adapter.stream_content_type());
  if (stream && status == 200 && is_stream) {
    std::string extra = "Cache-Control: no-cache\r\n";
    extra += upstream_headers(call, parser->passthrough_headers());
    extra += rate_headers(call.rate);
    co_await ex.start_stream(200, "text/event-stream", extra);  // sent with the first chunk
    call.status = 200;
    local.metrics.stream_opened();
    struct StreamGauge {
      metrics::Shard& shard;
      ~StreamGauge() { shard.stream_closed(); }
    } const open_stream{local.metrics};
    const std::unique_ptr<providers::StreamTranslator> translator =
        translated ? std::make_unique<providers::ChatToMessagesStream>(
                         adapter.translate_stream(in), call.req.model)
                   : adapter.translate_stream(in);
    std::string out;
    // The audit record keeps a stream as the message it assembles to.
    std::optional<providers::StreamAssembler> assembled;
    if (ex.keep_body != nullptr) {
      assembled.emplace(call.format, deps_.audit_max_body_bytes + 1);
    }
    const auto send = [&](bool last) -> asio::awaitable<boost::system::error_code> {
      if (assembled) {
        assembled->feed(out);
        if (last) {
          call.response_body = assembled->finish();
        }
      }
      co_return co_await ex.write_stream(out, last);
    };
    bool client_ok = true;
    const auto take_usage = [&] {
      call.usage = translator->usage();  // what the provider reported so far is billed
      call.streamed_events = static_cast<std::int64_t>(translator->events());
    };
    while (true) {
      translator->feed(pending, out);
      if (parser->is_done() || !translator->error().empty()) {
        break;  // the rest leaves with the terminating chunk, in one write
      }
      // A slow client must not count against the provider's idle deadline.
      deadline.disarm();
      if (!out.empty()) {
        if (call.first_token_us < 0) {
          call.first_token_us = micros_since(ex.started_at());
        }
        if (co_await send(false)) {
          client_ok = false;  // client went away: stop reading, cancel upstream
          break;
        }
        out.clear();
      }
      if (!(co_await read_more())) {
        break;
      }
    }
    deadline.disarm();
    call.upstream_us = micros_since(upstream_start);
    ex.log.upstream_us = call.upstream_us;
    take_usage();
    if (!client_ok || watch.client_gone()) {
      if (assembled) {
        call.response_body = assembled->finish();  // what the client had when it left
      }
      conn->close();
      call.status = 499;
      ex.abort_connection();
      co_return;
    }
    const bool complete = parser->is_done() && !ec;
    translator->finish(pending, out, complete);
    take_usage();
    price_by_reported_model(call, translator->model());
    const bool clean = complete && translator->ended() && translator->error().empty();
    if (!translator->error().empty()) {
      // The provider reported an error inside its stream: the client has it as an event.
      call.upstream_error = translator->error() == "upstream_error"
                                ? metrics::UpstreamError::Protocol
                                : metrics::UpstreamError::ServerError;
      call.status = 502;
      ex.log.error_type = translator->error();
    } else if (!clean) {
      // The provider's stream broke off: tell the client in the stream itself.
      const bool timeout = deadline.fired;
      out += stream_error_event(
          call.format, timeout ? Errc::UpstreamTimeout : Errc::UpstreamUnavailable,
          timeout ? "The provider stopped sending within the gateway's time limit; the "
                    "response is incomplete."
                  : "The connection to the provider was lost mid-stream; the response is "
                    "incomplete.");
      call.status = timeout ? 504 : 502;
      call.upstream_error =
          timeout ? metrics::UpstreamError::Timeout : metrics::UpstreamError::Closed;
      ex.log.error_type = timeout ? "timeout_error" : "upstream_error";
    }
    if (call.first_token_us < 0 && !out.empty()) {
      call.first_token_us = micros_since(ex.started_at());
    }
    if (co_await send(/*last=*/true)) {
      conn->close();
      call.status = 499;  // the client left before the end
      co_return;
    }
    if (complete && parser->keep_alive() && translator->error().empty()) {
      release(local, provider, std::move(conn));
    } else {
      conn->close();
    }
    co_return;
  }

  // A whole response: read it all, then answer in one write.
  while (co_await read_more()) {
    if (pending.size() > deps_.max_upstream_response_bytes) {
      ec = bhttp::error::body_limit;  // a stream request answered without SSE has no parser limit
      break;
    }
  }
  deadline.disarm();
  call.upstream_us = micros_since(upstream_start);
  ex.log.upstream_us = call.upstream_us;
  if (!parser->is_done() || ec) {
    conn->close();
    if (deadline.fired) {
      co_await finish_error(Errc::UpstreamTimeout,
                            "The provider did not finish its answer within the time limit.");
    } else if (ec == bhttp::error::body_limit) {
      co_await finish_error(Errc::UpstreamProtocol,
                            "The provider's answer is larger than the gateway accepts.");
    } else {
      co_await finish_error(Errc::UpstreamUnavailable,
                            "The connection to the provider was lost before the answer ended.");
    }
    co_return;
  }
  call.status = status;
  // Before the answer is written: the call's records are made just before its last write.
  if (status >= 400) {
    ex.log.error_type = "upstream_error";
    call.upstream_error = status == 401 || status == 403 ? metrics::UpstreamError::CredentialRefused
                          : status == 429               ? metrics::UpstreamError::RateLimited
                          : status == 503 || status == 529 ? metrics::UpstreamError::Overloaded
                          : status < 500                ? metrics::UpstreamError::ClientError
                                                        : metrics::UpstreamError::ServerError;
  }
  std::string headers = upstream_headers(call, parser->passthrough_headers());
  if (status >= 200 && status < 300) {
    std::string translated_body;
    providers::Answer answer;
    if (!adapter.translate_answer(in, pending, translated_body, answer)) {
      core::LogLine(core::LogLevel::Warn, "provider answer could not be read")
          .field("request_id", ex.gateway_request_id())
          .field("provider", provider.name)
          .emit();
      conn->close();
      co_await finish_error(Errc::UpstreamProtocol, "The provider's answer could not be read.");
      co_return;
    }
    if (answer.usage.reported) {
      call.usage = answer.usage;
    }
    price_by_reported_model(call, answer.model);
    std::string_view content_type = parser->content_type();
    if (!answer.passthrough || content_type.empty()) {
      content_type = "application/json";
    }
    std::string_view answer_body =
        answer.passthrough ? std::string_view(pending) : std::string_view(translated_body);
    std::string messages_body;
    if (translated) {
      if (!providers::chat_to_messages_answer(answer_body, call.req.model, messages_body)) {
        conn->close();
        co_await finish_error(Errc::UpstreamProtocol,
                              "The provider's answer could not be read.");
        co_return;
      }
      answer_body = messages_body;
      content_type = "application/json";
    }
    compute_cost(ex, call);
    headers += cost_headers(call);
    co_await ex.respond(status, content_type, answer_body, headers);
  } else if (status >= 400 || !adapter.errors_pass_through(call.format)) {
    co_await answer_provider_error(ex, call, status, pending, parser->retry_after(),
                                   std::move(headers));
  } else {
    // 1xx/3xx of an OpenAI-format provider: passed on as it came.
    std::string_view content_type = parser->content_type();
    if (content_type.empty()) {
      content_type = "application/json";
    }
    compute_cost(ex, call);
    headers += cost_headers(call);
    co_await ex.respond(status, content_type, pending, headers);
  }
  // Only now: `pending` lives in the connection, which the pool may hand to the next call.
  if (parser->keep_alive()) {
    release(local, provider, std::move(conn));
  } else {
    conn->close();
  }
}

asio::awaitable<void> Proxy::answer_provider_error(http::Exchange& ex, Call& call,
                                                   unsigned status, std::string_view body,
                                                   std::string_view retry_after,
                                                   std::string headers) {
  const catalog::Provider& provider = *call.route->provider;
  const providers::Adapter& adapter = *provider.adapter;
  const bool pass = adapter.errors_pass_through(call.format);
  providers::ProviderError pe;
  if (status == 401 || status == 403 || !pass) {
    pe = adapter.translate_error(status, body, retry_after);
  }
  if (status == 401 || status == 403 || pe.credential_refused) {
    // The provider refused the gateway's credential, not the client's key: passing that on
    // would blame the client (and a provider's message may quote part of the credential).
    core::LogLine(core::LogLevel::Warn, "provider refused the gateway's credential")
        .field("provider", provider.name)
        .field("status", status)
        .emit();
    call.status = 502;
    compute_cost(ex, call);
    co_await respond_error(ex, call.format, Errc::UpstreamUnavailable,
                           "The provider refused the gateway's credentials for `" +
                               provider.name + "`; the operator must fix the provider key.",
                           {}, cost_headers(call));
    co_return;
  }
  compute_cost(ex, call);
  if (pass) {
    headers += cost_headers(call);
    if (core::validate_json(body)) {
      co_await ex.respond(status, "application/json", body, headers);
    } else {
      // Not the provider's JSON error (a proxy's HTML page, say): give the client OpenAI's
      // shape.
      co_await ex.respond(status, "application/json",
                          core::render_error(status >= 500 ? Errc::UpstreamUnavailable
                                                           : Errc::BadRequest,
                                             "The provider answered HTTP " +
                                                 std::to_string(status) + "."),
                          headers);
    }
    co_return;
  }
  call.status = pe.status;
  if (retry_after.empty() && !pe.retry_after.empty()) {
    headers += "Retry-After: " + pe.retry_after + "\r\n";
  }
  headers += cost_headers(call);
  co_await ex.respond(pe.status, "application/json",
                      providers::render_provider_error(call.format, pe), headers);
}

}  // namespace llmgw::proxy
