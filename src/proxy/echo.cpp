#include "proxy/call.hpp"

#include "providers/echo.hpp"
#include "providers/messages/messages.hpp"
#include "providers/stream_assembler.hpp"

namespace llmgw::proxy {

using core::Errc;

asio::awaitable<void> Proxy::answer_echo(http::Exchange& ex, Call& call) {
  const std::string_view body = ex.request().body;
  const auto& route = *call.route;
  const std::int64_t created = core::unix_seconds();
  if (call.format == providers::Format::OpenAIEmbeddings) {
    std::string error;
    std::string param;
    const std::string out =
        providers::echo::embeddings_json(body, route.upstream_model, error, param);
    if (out.empty()) {
      co_await respond_error(ex, call.format, Errc::BadRequest, error, param);
      call.status = ex.status();
      co_return;
    }
    pricing::normalize_openai(providers::find_usage_object(out), call.usage);
    call.status = 200;
    compute_cost(ex, call);
    co_await ex.respond(200, "application/json", out, cost_headers(call));
    co_return;
  }
  // An Anthropic Messages call is answered as the chat call it translates to, and the answer
  // translated back: what a provider that takes only OpenAI chat gets (forward.cpp).
  const bool messages = call.format == providers::Format::AnthropicMessages;
  std::string chat_body;
  if (messages) {
    if (auto refusal = providers::messages_to_chat(body, route.upstream_model, call.req.stream,
                                                   chat_body)) {
      call.status = core::http_status(refusal->errc);
      co_await respond_error(ex, call.format, refusal->errc, refusal->message, refusal->param);
      co_return;
    }
  }
  const auto reply = providers::echo::chat_reply(messages ? std::string_view(chat_body) : body);
  call.status = 200;
  const std::string json =
      providers::echo::chat_completion_json(reply, route.upstream_model, ex.gateway_request_id(),
                                            created);
  pricing::normalize_openai(providers::find_usage_object(json), call.usage);
  compute_cost(ex, call);
  if (!call.req.stream) {
    if (!messages) {
      co_await ex.respond(200, "application/json", json, cost_headers(call));
      co_return;
    }
    std::string answer;
    if (!providers::chat_to_messages_answer(json, call.req.model, answer)) {
      call.status = 500;  // the echo reply is always a chat completion: a gateway bug
      co_await respond_error(ex, call.format, Errc::Internal,
                             "The gateway failed to process the request.");
      co_return;
    }
    co_await ex.respond(200, "application/json", answer, cost_headers(call));
    co_return;
  }
  std::string events;
  for (const auto& ev : providers::echo::chat_completion_events(
           reply, route.upstream_model, ex.gateway_request_id(), created,
           messages || call.req.client_wants_usage)) {
    events += ev;
  }
  if (messages) {
    providers::ChatToMessagesStream translator(
        providers::echo::chat_stream_translator(call.usage), call.req.model);
    std::string out;
    translator.feed(events, out);
    translator.finish(events, out, /*complete=*/true);
    events = std::move(out);
  }
  if (ex.keep_body != nullptr) {
    providers::StreamAssembler assembled(call.format, deps_.audit_max_body_bytes + 1);
    assembled.feed(events);
    call.response_body = assembled.finish();
  }
  co_await ex.start_stream(200, "text/event-stream",
                           "Cache-Control: no-cache\r\n" + rate_headers(call.rate));
  co_await ex.write_stream(events, /*last=*/true);
}
}  // namespace llmgw::proxy
