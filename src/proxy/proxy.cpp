#include "proxy/proxy.hpp"

#include "core/ids.hpp"
#include "core/json.hpp"
#include "core/log.hpp"
#include "http/response_parser.hpp"
#include "providers/echo.hpp"
#include "providers/openai.hpp"
#include "pricing/cost.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/string.hpp>
#include <boost/beast/http/error.hpp>

#include <charconv>

namespace llmgw::proxy {

namespace asio = boost::asio;
using core::Errc;
using providers::Endpoint;

namespace {

constexpr auto use_tuple = asio::as_tuple(asio::use_awaitable);
constexpr std::size_t kUpstreamReadChunk = 16 * 1024;
constexpr std::uint32_t kMaxUpstreamHeaderBytes = 64 * 1024;
/// A pooled connection keeps its buffers; beyond this they are given back to the allocator.
constexpr std::size_t kKeepBufferBytes = 64 * 1024;
constexpr int kEndpointChat = static_cast<int>(Endpoint::ChatCompletions);
constexpr int kEndpointEmbeddings = static_cast<int>(Endpoint::Embeddings);

std::int64_t micros_since(http::Clock::time_point t) {
  return std::chrono::duration_cast<std::chrono::microseconds>(http::Clock::now() - t).count();
}

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

std::string_view endpoint_name(int endpoint) {
  return endpoint == kEndpointChat ? "chat.completions" : "embeddings";
}

std::string_view endpoint_path(int endpoint) {
  return endpoint == kEndpointChat ? "/chat/completions" : "/embeddings";
}

/// Looks a key up in the store; runs on the blocking pool.
asio::awaitable<std::shared_ptr<const auth::KeyInfo>> lookup_key(store::Store* store,
                                                                  std::string digest_hex) {
  auto rec = store->find_key_by_hash(digest_hex);
  co_return rec ? auth::KeyInfo::from_record(*rec) : nullptr;
}

}  // namespace

/// Per-worker state: key cache and upstream connection pool, used only on that thread.
struct Proxy::Local final : http::WorkerLocal {
  Local(http::Worker& w, const ProxyDeps& deps)
      : worker(w),
        keys(deps.key_cache_per_worker, deps.key_invalidations),
        pool(w.io_context(), deps.tls, deps.forward_proxy),
        limits(deps.limits.make_worker(w.io_context())) {}
  void shutdown() override {
    pool.close_all();
    limits->shutdown();
  }

  http::Worker& worker;
  auth::KeyCache keys;
  http::UpstreamPool pool;
  std::unique_ptr<limits::WorkerLimits> limits;  ///< this thread's rate limiter and ledger
};

/// Everything one inference call carries through the path.
struct Proxy::Call {
  int endpoint = kEndpointChat;
  std::shared_ptr<const auth::KeyInfo> key;
  std::shared_ptr<const catalog::Snapshot> snapshot;
  const catalog::Route* route = nullptr;
  providers::InspectedRequest req;
  pricing::ServiceTier service = pricing::ServiceTier::Default;
  std::string usage_json;  ///< the provider's usage object (OpenAI shape), if it sent one
  std::int64_t streamed_events = 0;  ///< basis of the estimate when a stream had no usage
  pricing::TokenUsage usage;
  pricing::Cost cost;
  std::string cost_text;  ///< cost.total as decimal, formatted once
  bool cost_computed = false;
  limits::Reservation reservation;  ///< the budget hold
  /// What the rate limits counted: the key's, then the model's (shared by every key), each
  /// only if it has limits.
  std::array<limits::RateTicket, 2> tickets;
  limits::RateDecision rate;  ///< the windows the client sees in x-ratelimit-*
  /// The limiter and ledger of `tickets` and `reservation` (set at admission).
  limits::WorkerLimits* limits = nullptr;
  /// A call that ends without settling (its coroutine destroyed) gives back what needs no I/O.
  ~Call() {
    if (limits != nullptr) {
      limits->ledger().abandon(reservation);
      limits->rate_limiter().abandon(tickets);
    }
  }
  std::int64_t upstream_us = 0;
  unsigned status = 0;
  Stage stage = Stage::None;  ///< the last stage passed
  bool calling = false;       ///< the provider (or echo) was called
  bool settled = false;
  bool limits_finished = false;
  bool recorded = false;
};

namespace {
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
                              path == "/v1/embeddings" ? kEndpointEmbeddings : kEndpointChat);
    co_return;
  }
  if (path == "/v1/models") {
    if (method != verb::get) {
      co_await ex.respond_error(Errc::MethodNotAllowed, "Use GET for this endpoint.", {},
                                "Allow: GET\r\n");
      co_return;
    }
    co_await handle_models(ex, local);
    co_return;
  }
  if (deps_.admin != nullptr && (path == "/admin" || path.starts_with("/admin/"))) {
    co_await deps_.admin->handle(ex);
    co_return;
  }
  if (path == "/healthz" && (method == verb::get || method == verb::head)) {
    co_await ex.respond(200, "application/json", R"({"status":"ok"})");
    co_return;
  }
  if (path == "/readyz" && (method == verb::get || method == verb::head)) {
    if (ready_.load(std::memory_order_acquire) && !ex.worker().draining()) {
      co_await ex.respond(200, "application/json", R"({"status":"ready"})");
    } else {
      co_await ex.respond_error(Errc::NotReady, "The gateway is not ready to serve requests.");
    }
    co_return;
  }
  co_await ex.respond_error(Errc::NotFound, "Unknown request URL: " + std::string(path) + ".");
}

asio::awaitable<std::shared_ptr<const auth::KeyInfo>> Proxy::authenticate(http::Exchange& ex,
                                                                          Local& local) {
  const auto& rq = ex.request();
  const std::string_view presented = auth::extract_api_key(rq.authorization, rq.api_key);
  if (presented.empty()) {
    co_await ex.respond_error(Errc::InvalidApiKey,
                              "You didn't provide an API key. Provide it in the Authorization "
                              "header as 'Bearer YOUR_KEY' or in the api-key header.");
    co_return nullptr;
  }
  const auth::KeyDigest digest = auth::digest_api_key(presented);
  local.keys.sync();
  std::shared_ptr<const auth::KeyInfo> key;
  if (auto hit = local.keys.find(digest)) {
    key = std::move(*hit);
  } else {
    const std::uint64_t generation = local.keys.generation();
    auto [eptr, found] = co_await asio::co_spawn(
        deps_.blocking, lookup_key(&deps_.store, auth::digest_hex(digest)), use_tuple);
    if (eptr) {
      std::string why = "unknown";
      try {
        std::rethrow_exception(eptr);
      } catch (const std::exception& e) {
        why = e.what();
      }
      core::LogLine(core::LogLevel::Error, "key lookup failed").field("error", why).emit();
      co_await ex.respond_error(Errc::NotReady, "The gateway could not check the API key.");
      co_return nullptr;
    }
    local.keys.insert(digest, found, generation);
    key = std::move(found);
  }
  if (key == nullptr) {
    co_await ex.respond_error(Errc::InvalidApiKey, "Incorrect API key provided.");
    co_return nullptr;
  }
  ex.log.key_id = key->id;
  if (!key->enabled) {
    co_await ex.respond_error(Errc::InvalidApiKey, "This API key has been disabled.");
    co_return nullptr;
  }
  if (key->expired(core::unix_seconds())) {
    co_await ex.respond_error(Errc::InvalidApiKey, "This API key has expired.");
    co_return nullptr;
  }
  co_return key;
}

asio::awaitable<void> Proxy::handle_models(http::Exchange& ex, Local& local) {
  auto key = co_await authenticate(ex, local);
  if (!key) {
    co_return;
  }
  const auto snap = deps_.catalog.current();
  std::string body = R"({"object":"list","data":[)";
  bool first = true;
  for (const catalog::Route* r : snap->listing()) {
    if (!key->allows(r->name) && !key->allows(r->model)) {
      continue;
    }
    body += first ? "{" : ",{";
    first = false;
    body += R"("id":)";
    core::append_json_string(body, r->name);
    body += R"(,"object":"model","created":)";
    body += std::to_string(r->created);
    body += R"(,"owned_by":)";
    core::append_json_string(body, r->provider->name);
    body += "}";
  }
  body += "]}";
  co_await ex.respond(200, "application/json", body);
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

asio::awaitable<void> Proxy::handle_inference(http::Exchange& ex, Local& local, int endpoint) {
  Call call;
  call.endpoint = endpoint;
  // The data plane does not throw; this is the defence for when it does (bad_alloc, a bug):
  // the client gets a 500 without detail and the call's holds are given back here, with the
  // I/O it needs (Redis), which the server's own last-resort handler could not do.
  std::string failure;
  try {
    co_await run_call(ex, local, call);
    if (call.stage == Stage::Called) {
      conclude(ex, call);
    }
  } catch (const std::exception& e) {
    failure = e.what();
    if (failure.empty()) {
      failure = "unknown";
    }
  }
  if (!failure.empty()) {
    co_await recover(ex, call, failure);
  }
}

asio::awaitable<void> Proxy::run_call(http::Exchange& ex, Local& local, Call& call) {
  call.key = co_await authenticate(ex, local);
  if (!call.key) {
    co_return;
  }
  reached(call, Stage::Authenticated);
  const std::string_view body = ex.request().body;
  if (auto err =
          providers::inspect_request(static_cast<Endpoint>(call.endpoint), body, call.req)) {
    co_await ex.respond_error(Errc::BadRequest, err->message, err->param);
    co_return;
  }
  ex.log.model = call.req.model;
  ex.log.stream = call.req.stream;
  reached(call, Stage::Inspected);
  call.snapshot = deps_.catalog.current();
  call.route = call.snapshot->find(call.req.model);
  if (call.route == nullptr) {
    co_await ex.respond_error(Errc::ModelNotFound,
                              "The model `" + call.req.model +
                                  "` does not exist or you do not have access to it.",
                              "model");
    co_return;
  }
  if (!call.key->allows(call.route->name) && !call.key->allows(call.route->model)) {
    co_await ex.respond_error(Errc::ModelNotAllowed,
                              "This API key is not allowed to use the model `" + call.req.model +
                                  "`.",
                              "model");
    co_return;
  }
  if (const std::string& why = call.route->provider->unavailable; !why.empty()) {
    note_unavailable_provider(*call.route->provider);
    co_await ex.respond_error(Errc::ProviderUnavailable,
                              "The provider of the model `" + call.req.model +
                                  "` is unavailable on this gateway; try again later.",
                              "model", "Retry-After: 30\r\n");
    co_return;
  }
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
    co_await ex.respond_error(Errc::Internal, "The gateway failed to process the request.");
  } else if (call.stage < Stage::Called) {
    ex.abort_connection();  // a started answer cannot be finished cleanly
  }
}

asio::awaitable<void> Proxy::release_budget(Call& call) {
  if (call.limits != nullptr && call.reservation.active) {
    co_await call.limits->ledger().release(call.reservation, *this);
  }
}

namespace {

/// The budget period containing now, recomputed once per UTC day per thread (calendar
/// arithmetic with gmtime and formatting is not for every request).
const limits::PeriodWindow& current_window(limits::BudgetPeriod p) {
  struct Cached {
    std::int64_t day = -1;
    limits::PeriodWindow window;
  };
  thread_local Cached cache[3];
  const std::int64_t now = core::unix_seconds();
  Cached& c = cache[static_cast<int>(p)];
  if (c.day != now / 86'400) {
    c.day = now / 86'400;
    c.window = limits::period_window(p, now);
  }
  return c.window;
}

/// Sums a key's recorded spend over a period; runs on the blocking pool.
asio::awaitable<core::Money> load_spend(store::Store* store, std::string key_id,
                                        std::string first_day, std::string last_day) {
  core::Money total;
  for (const auto& row : store->spend(key_id, first_day, last_day)) {
    if (auto m = core::Money::parse(row.cost_usd)) {
      total += *m;
    }
  }
  co_return total;
}

}  // namespace

core::Money Proxy::worst_case(http::Exchange& ex, const Call& call,
                              const pricing::ModelPricing& pricing) const {
  // Every body byte a prompt token (no tokenizer makes fewer bytes per token), and the full
  // output allowance.
  const std::int64_t prompt_bound = static_cast<std::int64_t>(ex.request().body.size());
  std::int64_t max_out = call.req.max_output_tokens;
  if (max_out < 0) {
    max_out = pricing.max_output_tokens.value_or(deps_.default_max_output_tokens);
  }
  max_out *= call.req.choices;  // each of the `n` choices may use the whole allowance
  if (call.endpoint == kEndpointEmbeddings) {
    max_out = 0;
  }
  return pricing::worst_case_cost(pricing, prompt_bound, max_out, call.service);
}

std::string Proxy::over_budget_message(const auth::KeyInfo& key, limits::BudgetPeriod period,
                                       const limits::PeriodWindow& window, core::Money spent) {
  return "This API key has reached its budget of $" + key.budget->to_string(2) + " for the " +
         std::string(limits::to_string(period)) + " period " + window.id + " ($" +
         spent.to_string(2) + " spent); the call would risk exceeding it.";
}

void Proxy::note_unavailable_provider(const catalog::Provider& provider) {
  if (unavailable_log_.allow()) {
    core::LogLine(core::LogLevel::Warn, "call to an unavailable provider refused")
        .field("provider", provider.name)
        .field("reason", provider.unavailable)
        .field("fix", provider.unavailable == "disabled"
                          ? "enable the provider"
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

void Proxy::compute_cost(http::Exchange& ex, Call& call) {
  if (call.cost_computed) {
    return;
  }
  call.cost_computed = true;
  pricing::TokenUsage u;
  bool estimated = false;
  if (call.usage_json.empty() || !pricing::normalize_openai(call.usage_json, u)) {
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
  call.cost = pricing::compute_cost(call.route->pricing.get(), u, call.service, estimated);
  if (call.cost.known()) {
    call.cost_text = call.cost.total.to_string();
  }
}

std::string Proxy::cost_headers(const Call& call) {
  std::string h = "x-llmgw-cost-usd: ";
  h += call.cost.known() ? call.cost_text : "unknown";
  h += "\r\nx-llmgw-cost-status: ";
  h += pricing::to_string(call.cost.status);
  h += "\r\n";
  h += rate_headers(call.rate);
  return h;
}

std::string Proxy::rate_headers(const limits::RateDecision& d) {
  std::string h;
  auto add = [&h](std::string_view what, const limits::WindowState& w) {
    h += "x-ratelimit-limit-";
    h += what;
    h += ": " + std::to_string(w.limit) + "\r\nx-ratelimit-remaining-";
    h += what;
    h += ": " + std::to_string(w.remaining) + "\r\nx-ratelimit-reset-";
    h += what;
    h += ": " + limits::format_reset(w.reset_ms) + "\r\n";
  };
  if (d.requests) {
    add("requests", *d.requests);
  }
  if (d.tokens) {
    add("tokens", *d.tokens);
  }
  return h;
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

namespace {
/// "Rate limit reached …" for the limit that refused (`whose`: "this API key" or "model `m`").
std::string refusal_message(limits::RateVerdict v, const limits::RateLimits& lim,
                            std::string_view whose, std::int64_t estimate) {
  switch (v) {
    case limits::RateVerdict::Requests:
      return "Rate limit reached for requests: " + std::to_string(*lim.rpm) + " per minute for " +
             std::string(whose) + ".";
    case limits::RateVerdict::Tokens:
      return "Rate limit reached for tokens: " + std::to_string(*lim.tpm) + " per minute for " +
             std::string(whose) + ".";
    case limits::RateVerdict::Concurrency:
      return "Too many requests in flight for " + std::string(whose) + " (limit " +
             std::to_string(*lim.max_concurrent) + ").";
    default:
      return "Request too large: about " + std::to_string(estimate) + " tokens, above the limit of " +
             std::to_string(*lim.tpm) + " tokens per minute for " + std::string(whose) + ".";
  }
}
}  // namespace

void Proxy::finish_rate_limits(Call& call) {
  call.limits_finished = true;
  if (!call.tickets[0].active && !call.tickets[1].active) {
    return;
  }
  const std::int64_t actual = call.usage.prompt_total() + call.usage.completion_total();
  call.limits->rate_limiter().finish(call.tickets, actual);
}

asio::awaitable<void> Proxy::cancel_rate_limits(Call& call) {
  if (call.limits != nullptr) {
    co_await call.limits->rate_limiter().cancel(call.tickets);
  }
}

asio::awaitable<bool> Proxy::admit(http::Exchange& ex, Local& local, Call& call) {
  const auth::KeyInfo& key = *call.key;
  const limits::RateLimits key_lim{key.rpm_limit, key.tpm_limit, key.max_concurrent};
  // The model's own limits protect the provider's quota: shared by every key (and alias).
  const limits::RateLimits model_lim{call.route->model_rpm, call.route->model_tpm, std::nullopt};
  // An unpriced model's calls are flagged, not blocked: no budget hold for them.
  const bool budgeted = key.budget && call.route->pricing;
  if (!key_lim.any() && !model_lim.any() && !budgeted) {
    co_return true;
  }
  // Before the call only its size is known: about four bytes of JSON per prompt token, plus
  // the output it asked for. Reconciled with the reported usage afterwards.
  const std::int64_t estimate =
      static_cast<std::int64_t>(ex.request().body.size() / 4) +
      std::max<std::int64_t>(0, call.req.max_output_tokens) * call.req.choices;
  std::string model_subject;
  std::array<limits::RateSubject, 2> subjects;
  std::size_t n = 0;
  if (key_lim.any()) {
    subjects[n++] = {key.id, key_lim};
  }
  if (model_lim.any()) {
    model_subject = "model:" + call.route->model;
    subjects[n++] = {model_subject, model_lim};
  }
  auto period = limits::BudgetPeriod::Monthly;
  limits::PeriodWindow window;
  limits::BudgetRequest budget;
  if (budgeted) {
    period = limits::parse_budget_period(key.budget_period).value_or(period);
    window = current_window(period);  // a copy: the cache may roll over while this waits
    budget = {.key_id = key.id,
              .period_id = window.id,
              .period_end_unix = window.end_unix,
              .budget = *key.budget,
              .amount = worst_case(ex, call, *call.route->pricing)};
  }
  const limits::AdmitRequest rq{.subjects = std::span(subjects.data(), n),
                                .est_tokens = estimate,
                                .call_id = ex.gateway_request_id(),
                                .budget = budgeted ? &budget : nullptr};
  std::array<limits::RateDecision, 2> decisions;
  const auto tickets = std::span(call.tickets.data(), n);
  limits::RateLimiter& limiter = local.limits->rate_limiter();
  call.limits = local.limits.get();
  auto adm = co_await limiter.admit(rq, std::span(decisions.data(), n), tickets, call.reservation);
  if (!adm.unavailable && adm.budget == limits::BudgetStatus::NotLoaded) {
    // The first call of the period (on this gateway, or anywhere with Redis, or Redis lost
    // its data): seed the ledger from the store, then ask again.
    auto [eptr, spent] = co_await asio::co_spawn(
        deps_.blocking, load_spend(&deps_.store, key.id, window.first_day, window.last_day),
        use_tuple);
    if (eptr) {
      // Budgets fail closed: without the spend so far, a call could overrun.
      co_await ex.respond_error(Errc::NotReady,
                                "The gateway could not read this key's spend; try again.");
      co_return false;
    }
    budget.seed = spent;
    adm = co_await limiter.admit(rq, std::span(decisions.data(), n), tickets, call.reservation);
  }
  if (adm.unavailable) {
    const bool limited = key_lim.any() || model_lim.any();
    const bool closed =
        (budgeted && deps_.budget_failure == limits::FailurePolicy::FailClosed) ||
        (limited && deps_.rate_limit_failure == limits::FailurePolicy::FailClosed);
    note_shared_failure(budgeted ? "rate limiter and budget ledger" : "rate limiter",
                        closed ? limits::FailurePolicy::FailClosed
                               : limits::FailurePolicy::FailOpen);
    if (!closed) {
      co_return true;
    }
    co_await ex.respond_error(Errc::NotReady,
                              "The gateway cannot check this API key's limits right now.", {},
                              "Retry-After: 1\r\n");
    co_return false;
  }
  if (adm.budget == limits::BudgetStatus::NotLoaded) {
    // The period turned over while the spend was being read: fail closed, the retry loads it.
    co_await ex.respond_error(Errc::NotReady,
                              "The budget period of this key just changed; try again.");
    co_return false;
  }
  if (adm.budget == limits::BudgetStatus::OverBudget) {
    co_await ex.respond_error(
        Errc::BudgetExceeded, over_budget_message(key, period, window, adm.spent), {},
        "Retry-After: " + std::to_string(window.end_unix - core::unix_seconds()) +
            "\r\nx-llmgw-cost-usd: 0\r\nx-llmgw-cost-status: exact\r\n");
    co_return false;
  }
  // The key's windows are the client's: its headers; a key without limits sees the model's.
  if (n > 0) {
    call.rate = decisions[0];
  }
  if (adm.refused == limits::Admission::kNone) {
    co_return true;
  }
  const limits::RateDecision& refused = decisions[adm.refused];
  const bool model_refused = !key_lim.any() || adm.refused == 1;  // the key's come first
  const std::string msg =
      model_refused
          ? refusal_message(refused.verdict, model_lim, "model `" + call.route->model + "`", estimate)
          : refusal_message(refused.verdict, key_lim, "this API key", estimate);
  std::string headers = rate_headers(call.rate);
  if (refused.verdict != limits::RateVerdict::TooLarge) {
    headers += "Retry-After: " + std::to_string((refused.retry_after_ms + 999) / 1000) + "\r\n";
  }
  co_await ex.respond_error(Errc::RateLimited, msg, {}, headers);
  co_return false;
}

void Proxy::settle_budget(Call& call) {
  call.settled = true;
  if (!call.reservation.active) {
    return;
  }
  const core::Money actual = call.cost.known() ? call.cost.total : call.reservation.amount;
  call.limits->ledger().settle(call.reservation, actual, *this);
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

asio::awaitable<void> Proxy::answer_echo(http::Exchange& ex, Call& call) {
  const std::string_view body = ex.request().body;
  const auto& route = *call.route;
  const std::int64_t created = core::unix_seconds();
  if (call.endpoint == kEndpointEmbeddings) {
    std::string error;
    std::string param;
    const std::string out =
        providers::echo::embeddings_json(body, route.upstream_model, error, param);
    if (out.empty()) {
      co_await ex.respond_error(Errc::BadRequest, error, param);
      call.status = ex.status();
      co_return;
    }
    call.usage_json = std::string(providers::find_usage_object(out));
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
  call.usage_json = std::string(providers::find_usage_object(json));
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

asio::awaitable<void> Proxy::forward(http::Exchange& ex, Local& local, Call& call) {
  namespace bhttp = boost::beast::http;
  const catalog::Provider& provider = *call.route->provider;
  const std::string_view client_body = ex.request().body;
  const bool stream = call.endpoint == kEndpointChat && call.req.stream;
  const bool request_usage = stream && !call.req.client_wants_usage;
  // Per call, not per worker: other calls on this thread run while this one waits.
  std::string rewritten_body;
  const auto rewritten = providers::rewrite_request(client_body, call.req,
                                                    call.route->upstream_model, request_usage,
                                                    rewritten_body);
  if (rewritten == providers::RewriteResult::Inconsistent) {
    // Never forward a body other than the one the gateway authorized and priced.
    core::LogLine(core::LogLevel::Error, "request body rewrite found a different body")
        .field("request_id", ex.gateway_request_id())
        .emit();
    call.status = 500;
    co_await ex.respond_error(Errc::Internal, "The gateway failed to process the request.");
    co_return;
  }
  const std::string_view up_body = rewritten == providers::RewriteResult::Rewritten
                                       ? std::string_view(rewritten_body)
                                       : client_body;

  std::string head;
  head.reserve(256 + provider.static_headers.size());
  head += "POST ";
  head += provider.origin.base_path;
  head += endpoint_path(call.endpoint);
  head += " HTTP/1.1\r\n";
  head += provider.static_headers;
  head += stream ? "Accept: text/event-stream\r\n" : "Accept: application/json\r\n";
  head += "Content-Length: ";
  head += std::to_string(up_body.size());
  head += "\r\n\r\n";

  LazyClientWatch watch(ex);

  const auto upstream_start = http::Clock::now();
  auto finish_error = [&](Errc e, std::string_view msg) -> asio::awaitable<void> {
    call.upstream_us = micros_since(upstream_start);
    ex.log.upstream_us = call.upstream_us;
    if (watch.client_gone()) {
      call.status = 499;  // client closed request (nginx's convention); nothing to send
      ex.abort_connection();
      co_return;
    }
    call.status = core::http_status(e);
    compute_cost(ex, call);
    co_await ex.respond_error(e, msg, {}, cost_headers(call));
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
  const bool is_sse = parser->content_type().starts_with("text/event-stream");
  if (stream && status == 200 && is_sse) {
    std::string extra = "Cache-Control: no-cache\r\n";
    extra += upstream_headers(call, parser->passthrough_headers());
    extra += rate_headers(call.rate);
    co_await ex.start_stream(200, "text/event-stream", extra);  // sent with the first chunk
    call.status = 200;
    providers::SseFilter filter(request_usage);
    std::string out;
    bool client_ok = true;
    while (true) {
      filter.feed(pending, out);
      if (parser->is_done()) {
        break;  // the rest leaves with the terminating chunk, in one write
      }
      // A slow client must not count against the provider's idle deadline.
      deadline.disarm();
      if (!out.empty()) {
        if (co_await ex.write_stream(out)) {
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
    call.usage_json = filter.usage_json();  // what the provider reported so far is billed
    call.streamed_events = static_cast<std::int64_t>(filter.events());
    if (!client_ok || watch.client_gone()) {
      conn->close();
      call.status = 499;
      ex.abort_connection();
      co_return;
    }
    filter.finish(pending, out);
    call.usage_json = filter.usage_json();
    call.streamed_events = static_cast<std::int64_t>(filter.events());
    const bool complete = parser->is_done() && !ec;
    if (!complete) {
      // The provider's stream broke off: tell the client in the stream itself.
      conn->close();
      const bool timeout = deadline.fired;
      out += "data: ";
      out += core::render_error(timeout ? Errc::UpstreamTimeout : Errc::UpstreamUnavailable,
                                timeout ? "The provider stopped sending within the gateway's "
                                          "time limit; the response is incomplete."
                                        : "The connection to the provider was lost mid-stream; "
                                          "the response is incomplete.");
      out += "\n\n";
      call.status = timeout ? 504 : 502;
      ex.log.error_type = timeout ? "timeout_error" : "upstream_error";
    }
    if (co_await ex.write_stream(out, /*last=*/true)) {
      if (complete) {
        conn->close();
      }
      call.status = 499;  // the client left before the end
      co_return;
    }
    if (complete && parser->keep_alive()) {
      release(local, provider, std::move(conn));
    } else if (complete) {
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
  if (status >= 200 && status < 300) {
    call.usage_json = std::string(providers::find_usage_object(pending));
  }
  std::string_view content_type = parser->content_type();
  if (status == 401 || status == 403) {
    // The provider refused the gateway's credential, not the client's key: passing that on
    // would blame the client (and OpenAI's message quotes part of the credential).
    core::LogLine(core::LogLevel::Warn, "provider refused the gateway's credential")
        .field("provider", provider.name)
        .field("status", status)
        .emit();
    call.status = 502;
    compute_cost(ex, call);
    co_await ex.respond_error(Errc::UpstreamUnavailable,
                              "The provider refused the gateway's credentials for `" +
                                  provider.name + "`; the operator must fix the provider key.",
                              {}, cost_headers(call));
  } else if (status >= 400 && !core::validate_json(pending)) {
    // Not the provider's JSON error (a proxy's HTML page, say): give the client OpenAI's shape.
    std::string msg = "The provider answered HTTP " + std::to_string(status) + ".";
    compute_cost(ex, call);
    std::string headers = upstream_headers(call, parser->passthrough_headers());
    headers += cost_headers(call);
    co_await ex.respond(status, "application/json",
                        core::render_error(status >= 500 ? Errc::UpstreamUnavailable
                                                         : Errc::BadRequest,
                                           msg),
                        headers);
  } else {
    if (content_type.empty()) {
      content_type = "application/json";
    }
    compute_cost(ex, call);
    std::string headers = upstream_headers(call, parser->passthrough_headers());
    headers += cost_headers(call);
    co_await ex.respond(status, content_type, pending, headers);
  }
  if (status >= 400) {
    ex.log.error_type = "upstream_error";
  }
  // Only now: `pending` lives in the connection, which the pool may hand to the next call.
  if (parser->keep_alive()) {
    release(local, provider, std::move(conn));
  } else {
    conn->close();
  }
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
  r.endpoint = std::string(endpoint_name(call.endpoint));
  r.status = static_cast<int>(call.status != 0 ? call.status : ex.status());
  r.pricing_model = call.route->pricing ? call.route->pricing->name : std::string();
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

}  // namespace llmgw::proxy
