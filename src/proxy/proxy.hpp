#pragma once
/// The request path: route → authenticate → resolve model → forward (or answer locally) →
/// stream back → usage event. See docs/life-of-a-request.md.

#include "auth/key_cache.hpp"
#include "catalog/catalog.hpp"
#include "core/log.hpp"
#include "events/usage_writer.hpp"
#include "http/server.hpp"
#include "http/upstream.hpp"
#include "limits/rate_limiter.hpp"
#include "limits/spend_ledger.hpp"
#include "limits/worker_limits.hpp"
#include "events/audit/audit_log.hpp"
#include "events/audit/redact.hpp"
#include "metrics/bearer.hpp"
#include "metrics/registry.hpp"
#include "providers/adapter.hpp"
#include "store/store.hpp"

#include <boost/asio/thread_pool.hpp>

#include <atomic>
#include <cstdint>
#include <memory>
#include <optional>
#include <string_view>

namespace llmgw::proxy {

/// The stages of an inference call, in order. A test build of the request path can be made
/// to throw after one of them (LLMGW_TEST_FAULT_AFTER) to prove that a failure anywhere
/// answers 500 and gives back everything the call held.
enum class Stage : std::uint8_t {
  None,
  Authenticated,
  Inspected,
  Routed,
  Admitted,   ///< rate limits counted and the budget held (one step)
  Reserved,   ///< (directly after Admitted: kept as a fault-injection point)
  Called,     ///< the provider answered (or the echo provider did)
  Costed,
  Settled,
  LimitsFinished,
  Recorded,
};

/// "authenticated", "inspected", … ; nullopt for an unknown name.
std::optional<Stage> parse_stage(std::string_view name);

/// The state of each dependency as /readyz reports it: kept by the health thread
/// (src/app/health.hpp), read by /readyz and the metrics probes.
struct DependencyHealth {
  enum State : std::int8_t { Absent = -1, Down = 0, Up = 1 };
  std::atomic<std::int8_t> store{Up};    ///< the config reloader's last poll
  std::atomic<std::int8_t> redis{Absent};  ///< the last PING; Absent: no Redis configured
  std::atomic<std::int8_t> archive{Up};  ///< the audit archive sink's last upload
};

struct ProxyDeps {
  store::Store& store;
  catalog::Catalog& catalog;
  auth::KeyInvalidations& key_invalidations;
  events::UsageWriter& usage;
  boost::asio::thread_pool& blocking;
  boost::asio::ssl::context& tls;
  http::ProxySettings forward_proxy;
  /// Makes each I/O thread's rate limiter and spend ledger: in process, or in Redis (shared
  /// by replicas). The request path sees only their interfaces.
  limits::LimitsFactory& limits;
  /// While shared limits (Redis) do not answer, rate limits fail open (served unchecked,
  /// counted and logged) unless this says fail_closed (503).
  limits::FailurePolicy rate_limit_failure = limits::FailurePolicy::FailOpen;
  /// Likewise budgets, which fail closed (503) unless this says fail_open.
  limits::FailurePolicy budget_failure = limits::FailurePolicy::FailClosed;
  /// The Prometheus counters (one shard per I/O thread) served at GET /metrics.
  metrics::Registry& metrics;
  /// The bearer token GET /metrics asks for (METRICS_TOKEN); empty: open.
  std::string metrics_token;
  /// The audit log every inference request's record goes to; null: none.
  audit::AuditLog* audit = nullptr;
  core::AuditBodies audit_bodies = core::AuditBodies::Metadata;  ///< LOGGING_BODIES
  /// Redacted mode's masks (LOGGING_REDACT_PATHS); set whenever `audit` is.
  const audit::Redactor* audit_redactor = nullptr;
  std::size_t audit_max_body_bytes = 1u << 20;                     ///< LOGGING_MAX_BODY_BYTES
  /// Answers /admin/* (the admin API); null: those routes are 404.
  http::Handler* admin = nullptr;
  std::size_t key_cache_per_worker = 10'000;
  std::size_t max_upstream_response_bytes = 64u << 20;
  /// Output allowance reserved when neither the request nor the price list bounds it.
  std::int64_t default_max_output_tokens = 16'384;
  /// What /readyz reports per dependency; null: nothing beyond ready.
  const DependencyHealth* health = nullptr;
  /// Tests only: throw after this stage of the next `fault_count` inference calls.
  Stage fault_after = Stage::None;
  unsigned fault_count = 0;
};

class Proxy final : public http::Handler, public limits::SettlementListener {
 public:
  explicit Proxy(ProxyDeps deps)
      : deps_(std::move(deps)),
        metrics_check_(deps_.metrics_token),
        faults_left_(deps_.fault_count) {}

  std::unique_ptr<http::WorkerLocal> make_worker_local(http::Worker& w) override;
  boost::asio::awaitable<void> handle(http::Exchange& ex) override;
  /// An inference request the HTTP layer refused (413, 431, 400) has its metrics and audit
  /// record like any other exit.
  void rejected(http::Exchange& ex) override;

  /// Logs and stores a soft-threshold crossing (once per key and period).
  void soft_threshold_crossed(const std::string& key_id, const std::string& period_id,
                              const limits::Settled& settled) override;

  /// /readyz answers 200 once this is set (after the first catalog load).
  void set_ready(bool ready) noexcept { ready_.store(ready, std::memory_order_release); }
  /// /readyz's body: the status and each dependency's state.
  [[nodiscard]] std::string readiness() const;

  struct Local;
  struct Call;
  struct Ending;

 private:
  boost::asio::awaitable<void> handle_models(http::Exchange& ex, Local& local);
  boost::asio::awaitable<void> handle_inference(http::Exchange& ex, Local& local,
                                               providers::Format format);
  /// The stages of a call up to the provider's answer (authenticate … call).
  boost::asio::awaitable<void> run_call(http::Exchange& ex, Local& local, Call& call);
  /// POST /v1/messages/count_tokens (proxy/count_tokens.cpp): authenticated, routed and
  /// admitted like a Messages call; counted by the provider (Anthropic) or the echo provider,
  /// refused for the others; never billed, no usage row.
  boost::asio::awaitable<void> handle_count_tokens(http::Exchange& ex, Local& local);
  boost::asio::awaitable<void> count_tokens(http::Exchange& ex, Local& local, Call& call);
  /// After the answer: cost, settle, finish the rate limits, record usage.
  void conclude(http::Exchange& ex, Call& call);
  /// A stage threw: answers 500 (or cuts a started answer off) and gives back what the call
  /// held — everything if the provider was not called; else the call is billed as answered.
  boost::asio::awaitable<void> recover(http::Exchange& ex, Call& call,
                                       std::string_view what);
  /// The route of the body's model, which the key must be allowed to use; otherwise answers
  /// 404 or 403 and returns false.
  boost::asio::awaitable<bool> find_route(http::Exchange& ex, Call& call);
  /// Throws when the test fault is set for `s` (LLMGW_TEST_FAULT_AFTER).
  void reached(Call& call, Stage s);
  boost::asio::awaitable<std::shared_ptr<const auth::KeyInfo>> authenticate(
      http::Exchange& ex, Local& local, providers::Format format);
  boost::asio::awaitable<void> forward(http::Exchange& ex, Local& local, Call& call);
  boost::asio::awaitable<void> answer_echo(http::Exchange& ex, Call& call);
  /// A provider's error answer (status >= 400, or a status the client's format cannot take):
  /// passed on, or translated into the client's format; the provider refusing the gateway's
  /// own credential becomes 502.
  boost::asio::awaitable<void> answer_provider_error(http::Exchange& ex, Call& call,
                                                     unsigned status, std::string_view body,
                                                     std::string_view retry_after,
                                                     std::string headers);
  void compute_cost(http::Exchange& ex, Call& call);
  /// Counts the call against the key's and the model's RPM, TPM and concurrency limits and
  /// holds its worst case against the key's budget, all or nothing; otherwise answers 429
  /// (with Retry-After) or 503 and returns false.
  boost::asio::awaitable<bool> admit(http::Exchange& ex, Local& local, Call& call);
  /// The call failed before the provider was called: take its rate-limit counts back.
  boost::asio::awaitable<void> cancel_rate_limits(Call& call);
  /// After the call: the actual tokens replace the estimate, the concurrency slot is freed.
  void finish_rate_limits(Call& call);
  static std::string cost_headers(const Call& call);
  /// x-ratelimit-{limit,remaining,reset}-{requests,tokens} of the key's windows.
  static std::string rate_headers(const limits::RateDecision& d);
  static void append_rate_headers(std::string& out, const limits::RateDecision& d);
  /// The provider's pass-through headers, minus its x-ratelimit-* when the key has its own.
  static std::string upstream_headers(const Call& call, const std::string& passthrough);
  /// An error answer in the client's format (OpenAI's, or Anthropic's for /v1/messages).
  static boost::asio::awaitable<void> respond_error(http::Exchange& ex, providers::Format format,
                                                    core::Errc e, std::string_view message,
                                                    std::string_view param = {},
                                                    std::string_view extra_headers = {});
  void settle_budget(Call& call);
  /// Frees the call's budget hold without spending it.
  boost::asio::awaitable<void> release_budget(Call& call);
  core::Money worst_case(http::Exchange& ex, const Call& call,
                         const pricing::ModelPricing& pricing) const;
  static std::string over_budget_message(const auth::KeyInfo& key, limits::BudgetPeriod period,
                                         const limits::PeriodWindow& window, core::Money spent);
  /// Logs (at most every 10 s) that a model of an unavailable provider was asked for.
  void note_unavailable_provider(const catalog::Provider& provider);
  /// Counts a shared-state failure and logs it at most every 10 s.
  void note_shared_failure(std::string_view what, limits::FailurePolicy policy);
  void record_usage(http::Exchange& ex, Call& call);
  /// The end of every inference request, on every exit path: its facts into the metrics.
  /// `route`: the metrics' route when not the call's format's (count_tokens, /v1/models).
  void observe(http::Exchange& ex, Local& local, const Call& call,
               std::optional<metrics::Route> route = std::nullopt);
  /// The end of every inference request, on every exit path: its audit record.
  void audit(http::Exchange& ex, const Call& call);
  /// Sets what the call's audit record keeps of the bodies, and whether the answer is kept.
  static void keep_bodies(http::Exchange& ex, Call& call, core::AuditBodies mode);
  /// GET /metrics: the Prometheus text exposition.
  boost::asio::awaitable<void> handle_metrics(http::Exchange& ex);

  ProxyDeps deps_;
  metrics::BearerCheck metrics_check_;
  std::atomic<bool> ready_{false};
  std::atomic<std::uint64_t> shared_failures_{0};
  std::atomic<unsigned> faults_left_{0};
  core::LogThrottle shared_failure_log_;
  core::LogThrottle unavailable_log_;
};

}  // namespace llmgw::proxy
