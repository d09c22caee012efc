#include "proxy/call.hpp"

#include "core/log.hpp"
#include "providers/messages/messages.hpp"

namespace llmgw::proxy {

using core::Errc;

asio::awaitable<void> Proxy::respond_error(http::Exchange& ex, providers::Format format,
                                           Errc e, std::string_view message,
                                           std::string_view param,
                                           std::string_view extra_headers) {
  if (format != providers::Format::AnthropicMessages) {
    co_await ex.respond_error(e, message, param, extra_headers);
    co_return;
  }
  providers::ProviderError pe;
  pe.status = core::http_status(e);
  pe.type = core::error_type(e);
  pe.message = message;
  co_await ex.respond(pe.status, "application/json",
                      providers::render_provider_error(format, pe), extra_headers);
}

std::unique_ptr<http::WorkerLocal> Proxy::make_worker_local(http::Worker& w) {
  return std::make_unique<Local>(w, deps_);
}

asio::awaitable<void> Proxy::handle(http::Exchange& ex) {
  using boost::beast::http::verb;
  auto& local = *static_cast<Local*>(ex.worker().local());
  const std::string_view path = ex.path();
  const verb method = ex.request().method;

  if (path == "/v1/chat/completions" || path == "/v1/embeddings") {
    if (method != verb::post) {
      co_await ex.respond_error(Errc::MethodNotAllowed, "Use POST for this endpoint.", {},
                                "Allow: POST\r\n");
      co_return;
    }
    co_await handle_inference(ex, local,
                              path == "/v1/embeddings" ? providers::Format::OpenAIEmbeddings
                                                       : providers::Format::OpenAIChat);
    co_return;
  }
  if (path == "/v1/messages") {
    if (method != verb::post) {
      co_await respond_error(ex, providers::Format::AnthropicMessages, Errc::MethodNotAllowed,
                             "Use POST for this endpoint.", {}, "Allow: POST\r\n");
      co_return;
    }
    co_await handle_inference(ex, local, providers::Format::AnthropicMessages);
    co_return;
  }
  if (path == "/v1/messages/count_tokens") {
    if (method != verb::post) {
      co_await respond_error(ex, providers::Format::AnthropicMessages, Errc::MethodNotAllowed,
                             "Use POST for this endpoint.", {}, "Allow: POST\r\n");
      co_return;
    }
    co_await handle_count_tokens(ex, local);
    co_return;
  }
  if (path == "/v1/models") {
    if (method != verb::get) {
      co_await ex.respond_error(Errc::MethodNotAllowed, "Use GET for this endpoint.", {},
                                "Allow: GET\r\n");
      co_return;
    }
    local.metrics.request_started();
    co_await handle_models(ex, local);
    local.metrics.request_finished();
    observe(ex, local, Call{}, metrics::Route::Models);
    co_return;
  }
  if (deps_.admin != nullptr && (path == "/admin" || path.starts_with("/admin/"))) {
    co_await deps_.admin->handle(ex);
    co_return;
  }
  if (path == "/metrics") {
    if (method != verb::get) {
      co_await ex.respond_error(Errc::MethodNotAllowed, "Use GET for this endpoint.", {},
                                "Allow: GET\r\n");
      co_return;
    }
    co_await handle_metrics(ex);
    co_return;
  }
  if (path == "/healthz" && (method == verb::get || method == verb::head)) {
    co_await ex.respond(200, "application/json", R"({"status":"ok"})");
    co_return;
  }
  if (path == "/readyz" && (method == verb::get || method == verb::head)) {
    if (ready_.load(std::memory_order_acquire) && !ex.worker().draining()) {
      co_await ex.respond(200, "application/json", readiness());
    } else {
      co_await ex.respond_error(Errc::NotReady, "The gateway is not ready to serve requests.");
    }
    co_return;
  }
  co_await ex.respond_error(Errc::NotFound, "Unknown request URL: " + std::string(path) + ".");
}

std::string Proxy::readiness() const {
  // A dependency that is down leaves the replica ready: every replica shares the store, Redis
  // and the archive, so taking one out of the load balancer would not help, and the gateway
  // serves on (the last snapshot, the limits' failure policies, the spools). It is reported
  // for the operator, and in the metrics (llmgw_database_up, llmgw_redis_up).
  if (deps_.health == nullptr) {
    return R"({"status":"ready"})";
  }
  const DependencyHealth& h = *deps_.health;
  bool degraded = false;
  std::string checks;
  for (const auto& [name, state] : {std::pair<std::string_view, const std::atomic<std::int8_t>*>{
                                        "store", &h.store},
                                    {"redis", &h.redis},
                                    {"archive", &h.archive}}) {
    const std::int8_t s = state->load(std::memory_order_relaxed);
    if (s == DependencyHealth::Absent) {
      continue;
    }
    degraded = degraded || s == DependencyHealth::Down;
    checks += checks.empty() ? "\"" : ",\"";
    checks += name;
    checks += s == DependencyHealth::Up ? "\":\"up\"" : "\":\"down\"";
  }
  return std::string(R"({"status":")") + (degraded ? "degraded" : "ready") + R"(","checks":{)" +
         checks + "}}";
}

namespace {
constexpr std::array<std::pair<std::string_view, Stage>, 10> kStageNames{{
    {"authenticated", Stage::Authenticated},
    {"inspected", Stage::Inspected},
    {"routed", Stage::Routed},
    {"admitted", Stage::Admitted},
    {"reserved", Stage::Reserved},
    {"called", Stage::Called},
    {"costed", Stage::Costed},
    {"settled", Stage::Settled},
    {"limits_finished", Stage::LimitsFinished},
    {"recorded", Stage::Recorded},
}};
}  // namespace

std::optional<Stage> parse_stage(std::string_view name) {
  for (const auto& [n, s] : kStageNames) {
    if (n == name) {
      return s;
    }
  }
  return std::nullopt;
}

void Proxy::reached(Call& call, Stage s) {
  call.stage = s;
  if (deps_.fault_after != s) [[likely]] {
    return;
  }
  unsigned left = faults_left_.load(std::memory_order_relaxed);
  while (left > 0 && !faults_left_.compare_exchange_weak(left, left - 1)) {
  }
  if (left > 0) {
    throw std::runtime_error("test fault injected after a stage (LLMGW_TEST_FAULT_AFTER)");
  }
}

namespace {
std::string failure_text(const std::exception& e) {
  std::string s = e.what();
  return s.empty() ? std::string("unknown") : s;
}
}  // namespace

/// A call's records — concluded (cost, settlement, usage record), metrics, audit record —
/// made once: just before the answer's last bytes are written when there is such a write, so
/// that a call whose answer the client has is on record even if the process dies right after;
/// else at the end of the request.
struct Proxy::Ending {
  Proxy& proxy;
  http::Exchange& ex;
  Local& local;
  Call& call;
  bool done = false;
  bool concluded = false;
  std::string failure;  ///< concluding threw (before the last write): recovered after it

  static void before_last_write(void* self) { static_cast<Ending*>(self)->run(true); }

  void run(bool early) {
    if (done) {
      return;
    }
    done = true;
    if (early && call.calling) {
      try {
        proxy.conclude(ex, call);
        concluded = true;
      } catch (const std::exception& e) {
        failure = failure_text(e);  // the answer still leaves; recover() finishes the rest
      }
    }
    local.metrics.request_finished();
    try {
      proxy.observe(ex, local, call);
      if (proxy.deps_.audit != nullptr) {
        proxy.audit(ex, call);
      }
    } catch (const std::exception& e) {
      core::LogLine(core::LogLevel::Error, "request record failed")
          .field("request_id", ex.gateway_request_id())
          .field("error", e.what())
          .emit();
    }
  }
};

asio::awaitable<void> Proxy::handle_inference(http::Exchange& ex, Local& local,
                                              providers::Format format) {
  Call call;
  call.format = format;
  local.metrics.request_started();
  if (deps_.audit != nullptr) {
    keep_bodies(ex, call, deps_.audit_bodies);
  }
  Ending ending{*this, ex, local, call, false, false, {}};
  ex.before_last_write = &Ending::before_last_write;
  ex.before_last_write_arg = &ending;
  // The data plane does not throw; this is the defence for when it does (bad_alloc, a bug):
  // the client gets a 500 without detail and the call's holds are given back here, with the
  // I/O it needs (Redis), which the server's own last-resort handler could not do.
  std::string failure;
  try {
    co_await run_call(ex, local, call);
    if (call.stage == Stage::Called && !ending.done) {
      conclude(ex, call);  // no last write (the client left mid-stream)
    }
  } catch (const std::exception& e) {
    failure = failure_text(e);
  }
  ex.before_last_write = nullptr;
  if (failure.empty()) {
    failure = std::move(ending.failure);
  }
  if (!failure.empty()) {
    co_await recover(ex, call, failure);
  }
  ending.run(false);
  ex.keep_body = nullptr;
}

asio::awaitable<void> Proxy::handle_metrics(http::Exchange& ex) {
  if (!metrics_check_.allows(ex.request().authorization)) {
    co_await ex.respond_error(Errc::InvalidApiKey,
                              "GET /metrics needs the metrics token: 'Authorization: Bearer "
                              "METRICS_TOKEN'.",
                              {}, "WWW-Authenticate: Bearer\r\n");
    co_return;
  }
  std::string text;
  deps_.metrics.render(text);
  co_await ex.respond(200, metrics::kContentType, text);
}

asio::awaitable<void> Proxy::run_call(http::Exchange& ex, Local& local, Call& call) {
  call.key = co_await authenticate(ex, local, call.format);
  if (!call.key) {
    co_return;
  }
  if (deps_.audit != nullptr && call.key->audit_bodies) {
    keep_bodies(ex, call, *call.key->audit_bodies);
  }
  reached(call, Stage::Authenticated);
  const std::string_view body = ex.request().body;
  const auto endpoint = call.format == providers::Format::OpenAIEmbeddings
                            ? providers::Endpoint::Embeddings
                            : providers::Endpoint::ChatCompletions;
  if (auto err = call.format == providers::Format::AnthropicMessages
                     ? providers::inspect_messages_request(body, call.req)
                     : providers::inspect_request(endpoint, body, call.req)) {
    co_await respond_error(ex, call.format, Errc::BadRequest, err->message, err->param);
    co_return;
  }
  ex.log.model = call.req.model;
  ex.log.stream = call.req.stream;
  reached(call, Stage::Inspected);
  if (!(co_await find_route(ex, call))) {
    co_return;
  }
  if (const std::string& why = call.route->provider->unavailable; !why.empty()) {
    note_unavailable_provider(*call.route->provider);
    co_await respond_error(ex, call.format, Errc::ProviderUnavailable,
                              "The provider of the model `" + call.req.model +
                                  "` is unavailable on this gateway; try again later.",
                              "model", "Retry-After: 30\r\n");
    co_return;
  }
  call.pricing = call.route->pricing.get();
  if (auto tier = pricing::parse_service_tier(call.req.service_tier)) {
    call.service = *tier;  // "auto", "scale" and unknown values bill at the default rates
  }
  reached(call, Stage::Routed);
  if (!(co_await admit(ex, local, call))) {
    co_return;
  }
  reached(call, Stage::Admitted);
  reached(call, Stage::Reserved);
  call.calling = true;  // from here a failure may have cost the provider's work
  if (call.route->provider->type == core::ProviderType::Echo) {
    co_await answer_echo(ex, call);
  } else {
    co_await forward(ex, local, call);
  }
  reached(call, Stage::Called);
}

asio::awaitable<bool> Proxy::find_route(http::Exchange& ex, Call& call) {
  call.snapshot = deps_.catalog.current();
  call.route = call.snapshot->find(call.req.model);
  if (call.route == nullptr) {
    co_await respond_error(ex, call.format, Errc::ModelNotFound,
                           "The model `" + call.req.model +
                               "` does not exist or you do not have access to it.",
                           "model");
    co_return false;
  }
  if (!call.key->allows(call.route->name) && !call.key->allows(call.route->model)) {
    co_await respond_error(ex, call.format, Errc::ModelNotAllowed,
                           "This API key is not allowed to use the model `" + call.req.model +
                               "`.",
                           "model");
    co_return false;
  }
  co_return true;
}

void Proxy::conclude(http::Exchange& ex, Call& call) {
  compute_cost(ex, call);  // streams and failures: their cost is known only now
  reached(call, Stage::Costed);
  settle_budget(call);
  reached(call, Stage::Settled);
  finish_rate_limits(call);
  reached(call, Stage::LimitsFinished);
  record_usage(ex, call);
  reached(call, Stage::Recorded);
}

asio::awaitable<void> Proxy::recover(http::Exchange& ex, Call& call, std::string_view what) {
  core::LogLine(core::LogLevel::Error, "inference call failed")
      .field("request_id", ex.gateway_request_id())
      .field("after_stage", static_cast<unsigned>(call.stage))
      .field("error", what)
      .emit();
  ex.log.error_type = "server_error";
  if (!call.calling) {
    // The provider was not called: nothing was spent, so everything is given back, before
    // the answer (the client's retry must not find this call still counted).
    co_await cancel_rate_limits(call);
    co_await release_budget(call);
  } else {
    if (call.status == 0) {
      call.status = ex.response_started() ? ex.status() : 500;
    }
    // The provider may have worked: the call is billed and counted like any other answer.
    // Each remaining step runs on its own, so one that throws again keeps back no other.
    const auto guarded = [&](auto&& step) {
      try {
        step();
      } catch (const std::exception& e) {
        core::LogLine(core::LogLevel::Error, "inference call clean-up step failed")
            .field("request_id", ex.gateway_request_id())
            .field("error", e.what())
            .emit();
      }
    };
    guarded([&] { compute_cost(ex, call); });
    if (!call.settled) {
      guarded([&] { settle_budget(call); });
    }
    if (!call.limits_finished) {
      guarded([&] { finish_rate_limits(call); });
    }
    if (!call.recorded) {
      guarded([&] { record_usage(ex, call); });
    }
    // A settlement or limit update that failed: at least free the hold and the slot.
    co_await release_budget(call);
    co_await cancel_rate_limits(call);
  }
  if (!ex.response_started()) {
    co_await respond_error(ex, call.format, Errc::Internal, "The gateway failed to process the request.");
  } else if (call.stage < Stage::Called) {
    ex.abort_connection();  // a started answer cannot be finished cleanly
  }
}

void Proxy::note_unavailable_provider(const catalog::Provider& provider) {
  if (unavailable_log_.allow()) {
    core::LogLine(core::LogLevel::Warn, "call to an unavailable provider refused")
        .field("provider", provider.name)
        .field("reason", provider.unavailable)
        .field("fix", provider.unavailable == "disabled" ? "enable the provider"
                      : provider.unavailable.starts_with("settings")
                          ? "fix the provider's settings"
                          : "give every gateway on this database the same LLMGW_MASTER_KEY")
        .emit();
  }
}

void Proxy::note_shared_failure(std::string_view what, limits::FailurePolicy policy) {
  const std::uint64_t n = shared_failures_.fetch_add(1) + 1;
  if (shared_failure_log_.allow()) {
    core::LogLine(core::LogLevel::Warn, "shared state unavailable (Redis)")
        .field("what", what)
        .field("policy", policy == limits::FailurePolicy::FailOpen ? "fail_open" : "fail_closed")
        .field("failures_total", n)
        .emit();
  }
}

void Proxy::soft_threshold_crossed(const std::string& key_id, const std::string& period_id,
                                   const limits::Settled& settled) {
  {
    store::BudgetEvent e{key_id, period_id, "soft_threshold",
                         settled.spent.to_string(), settled.budget.to_string(),
                         core::unix_micros()};
    core::LogLine(core::LogLevel::Warn, "budget soft threshold crossed")
        .field("key_id", e.key_id)
        .field("period", e.period)
        .field("spent_usd", e.spent_usd)
        .field("budget_usd", e.budget_usd)
        .emit();
    asio::post(deps_.blocking, [store = &deps_.store, e = std::move(e)] {
      try {
        store->insert_budget_event(e);
      } catch (const std::exception& ex) {
        core::LogLine(core::LogLevel::Error, "budget event not recorded")
            .field("error", ex.what())
            .emit();
      }
    });
  }
}
}  // namespace llmgw::proxy
