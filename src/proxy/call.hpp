#pragma once
/// What the stages of the request path share (internal to src/proxy/): the per-worker state
/// and the call that each stage advances. See docs/life-of-a-request.md.

#include "proxy/proxy.hpp"

#include "core/ids.hpp"
#include "metrics/registry.hpp"
#include "providers/adapter.hpp"
#include "providers/openai.hpp"
#include "pricing/cost.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <array>
#include <chrono>

namespace llmgw::proxy {

namespace asio = boost::asio;

inline constexpr auto use_tuple = asio::as_tuple(asio::use_awaitable);

inline std::int64_t micros_since(http::Clock::time_point t) {
  return std::chrono::duration_cast<std::chrono::microseconds>(http::Clock::now() - t).count();
}

/// Per-worker state: key cache and upstream connection pool, used only on that thread.
struct Proxy::Local final : http::WorkerLocal {
  Local(http::Worker& w, const ProxyDeps& deps)
      : worker(w),
        keys(deps.key_cache_per_worker, deps.key_invalidations),
        pool(w.io_context(), deps.tls, deps.forward_proxy),
        limits(deps.limits.make_worker(w.io_context())),
        metrics(deps.metrics.add_shard()) {}
  void shutdown() override {
    pool.close_all();
    limits->shutdown();
  }

  http::Worker& worker;
  auth::KeyCache keys;
  http::UpstreamPool pool;
  std::unique_ptr<limits::WorkerLimits> limits;  ///< this thread's rate limiter and ledger
  metrics::Shard& metrics;                       ///< this thread's counters
};

/// Everything one inference call carries through the path.
struct Proxy::Call {
  /// The client's format: the endpoint it called and the shape of every answer it gets.
  providers::Format format = providers::Format::OpenAIChat;
  std::shared_ptr<const auth::KeyInfo> key;
  std::shared_ptr<const catalog::Snapshot> snapshot;
  const catalog::Route* route = nullptr;
  providers::InspectedRequest req;
  pricing::ServiceTier service = pricing::ServiceTier::Default;
  std::int64_t streamed_events = 0;  ///< basis of the estimate when a stream had no usage
  /// What the provider reported (usage.reported false: nothing), then what is billed.
  pricing::TokenUsage usage;
  /// The price list the call is billed by: the route's, or (Azure) the one of the model the
  /// provider reports answering. Owned by `snapshot`.
  const pricing::ModelPricing* pricing = nullptr;
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
  /// From the request's start to the first bytes of a streamed answer sent on; -1: none.
  std::int64_t first_token_us = -1;
  /// How the provider failed, if it did (the metrics' upstream error count).
  std::optional<metrics::UpstreamError> upstream_error;
  /// What refused the call, if a limit or the budget did.
  std::optional<metrics::Refusal> refusal;
  /// What the audit record keeps of the bodies: LOGGING_BODIES, or the key's own setting.
  core::AuditBodies audit_bodies = core::AuditBodies::Metadata;
  /// The answer sent, for the audit record when it keeps bodies: a whole answer as sent, a
  /// stream as its assembled message.
  std::string response_body;
  unsigned status = 0;
  Stage stage = Stage::None;  ///< the last stage passed
  bool calling = false;       ///< the provider (or echo) was called
  bool settled = false;
  bool limits_finished = false;
  bool recorded = false;
};

}  // namespace llmgw::proxy
