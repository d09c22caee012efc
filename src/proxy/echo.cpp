#include "proxy/call.hpp"

#include "providers/echo.hpp"

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
  const auto reply = providers::echo::chat_reply(body);
  call.status = 200;
  const std::string json =
      providers::echo::chat_completion_json(reply, route.upstream_model, ex.gateway_request_id(),
                                            created);
  pricing::normalize_openai(providers::find_usage_object(json), call.usage);
  compute_cost(ex, call);
  if (!call.req.stream) {
    co_await ex.respond(200, "application/json", json, cost_headers(call));
    co_return;
  }
  std::string events;
  for (const auto& ev : providers::echo::chat_completion_events(
           reply, route.upstream_model, ex.gateway_request_id(), created,
           call.req.client_wants_usage)) {
    events += ev;
  }
  co_await ex.start_stream(200, "text/event-stream",
                           "Cache-Control: no-cache\r\n" + rate_headers(call.rate));
  co_await ex.write_stream(events, /*last=*/true);
}
}  // namespace llmgw::proxy
