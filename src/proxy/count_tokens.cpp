// POST /v1/messages/count_tokens: Anthropic's token counting, in front of the providers that
// count. A count is authenticated, routed and admitted like a Messages call (it counts against
// the key's and the model's request rate limits), but it generates nothing and costs nothing:
// its token estimate and budget hold are given back unspent and it leaves no usage row.

#include "proxy/call.hpp"

#include "core/config.hpp"
#include "providers/echo.hpp"
#include "providers/messages/messages.hpp"

namespace llmgw::proxy {

using core::Errc;

namespace {

/// Who counts a model's tokens.
enum class Counter : std::uint8_t {
  None,      ///< refused: the provider has no token counting (or none the gateway can reach)
  Echo,      ///< the echo provider, by its own rule (words)
  Provider,  ///< the provider's count_tokens route (Anthropic's API)
};

Counter counter_of(const catalog::Provider& p) noexcept {
  switch (p.type) {
    case core::ProviderType::Echo: return Counter::Echo;
    case core::ProviderType::Anthropic: return Counter::Provider;
    default: return Counter::None;
  }
}

}  // namespace

asio::awaitable<void> Proxy::handle_count_tokens(http::Exchange& ex, Local& local) {
  Call call;
  call.format = providers::Format::AnthropicMessages;
  local.metrics.request_started();
  std::string failure;
  try {
    co_await count_tokens(ex, local, call);
  } catch (const std::exception& e) {
    failure = e.what();
    if (failure.empty()) {
      failure = "unknown";
    }
  }
  if (!failure.empty()) {
    call.calling = false;  // nothing is billed for a count: everything is given back
    co_await recover(ex, call, failure);
  }
  local.metrics.request_finished();
  // Counted by route; no tokens, cost or overhead: a count is not a call.
  call.calling = false;
  call.usage = {};
  call.cost = {};
  observe(ex, local, call, metrics::Route::CountTokens);
}

asio::awaitable<void> Proxy::count_tokens(http::Exchange& ex, Local& local, Call& call) {
  call.key = co_await authenticate(ex, local, call.format);
  if (!call.key) {
    co_return;
  }
  reached(call, Stage::Authenticated);
  const std::string_view body = ex.request().body;
  if (auto err = providers::inspect_count_tokens_request(body, call.req)) {
    co_await respond_error(ex, call.format, Errc::BadRequest, err->message, err->param);
    co_return;
  }
  ex.log.model = call.req.model;
  reached(call, Stage::Inspected);
  if (!(co_await find_route(ex, call))) {
    co_return;
  }
  const catalog::Provider& provider = *call.route->provider;
  const Counter counter = counter_of(provider);
  if (counter == Counter::None) {
    co_await respond_error(ex, call.format, Errc::BadRequest,
                           "Token counting is not available for the model `" + call.req.model +
                               "`: its provider `" + provider.name + "` (type " +
                               std::string(core::to_string(provider.type)) +
                               ") does not offer it through this gateway.",
                           "model");
    co_return;
  }
  if (const std::string& why = provider.unavailable; !why.empty()) {
    note_unavailable_provider(provider);
    co_await respond_error(ex, call.format, Errc::ProviderUnavailable,
                           "The provider of the model `" + call.req.model +
                               "` is unavailable on this gateway; try again later.",
                           "model", "Retry-After: 30\r\n");
    co_return;
  }
  call.pricing = call.route->pricing.get();
  reached(call, Stage::Routed);
  if (!(co_await admit(ex, local, call))) {
    co_return;
  }
  reached(call, Stage::Admitted);
  reached(call, Stage::Reserved);
  if (counter == Counter::Echo) {
    std::string chat_body;
    if (auto refusal = providers::messages_to_chat(body, call.route->upstream_model,
                                                   /*stream=*/false, chat_body)) {
      call.status = core::http_status(refusal->errc);
      co_await respond_error(ex, call.format, refusal->errc, refusal->message, refusal->param);
    } else {
      const auto reply = providers::echo::chat_reply(chat_body);
      call.status = 200;
      call.usage.reported = true;  // zero tokens: a count costs nothing
      compute_cost(ex, call);
      co_await ex.respond(200, "application/json",
                          R"({"input_tokens":)" + std::to_string(reply.prompt_tokens) + "}",
                          cost_headers(call));
    }
  } else {
    // The provider's own adapter, sent to its count_tokens route: forward() makes the call as
    // for any other (credential, connection pool, deadlines, error mapping).
    catalog::Provider counting = provider;
    counting.adapter = providers::make_count_tokens_adapter(provider.adapter);
    const catalog::Route* const routed = call.route;
    catalog::Route route = *routed;
    route.provider = std::make_shared<const catalog::Provider>(std::move(counting));
    call.route = &route;
    co_await forward(ex, local, call);
    call.route = routed;  // `route` ends here
  }
  reached(call, Stage::Called);
  // Nothing generated: the rate limits keep the request but no tokens, the budget hold is
  // given back unspent, and no usage row is written.
  call.usage = {};
  finish_rate_limits(call);
  call.settled = true;
  co_await release_budget(call);
}

}  // namespace llmgw::proxy
