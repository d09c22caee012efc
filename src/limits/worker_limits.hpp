#pragma once
/// The limits of the shape that runs, per I/O thread. The request path sees only a
/// RateLimiter and a SpendLedger; which implementation stands behind them is the
/// application's choice, made once with a LimitsFactory: in process (LocalLimits: one limiter
/// and one ledger shared by every thread) or in Redis (redis/redis_limits.hpp: each thread
/// its own connection).

#include "limits/rate_limiter.hpp"
#include "limits/spend_ledger.hpp"

#include <memory>

namespace boost::asio {
class io_context;
}  // namespace boost::asio

namespace llmgw::limits {

/// The rate limiter and spend ledger the requests of one I/O thread use.
class WorkerLimits {
 public:
  virtual ~WorkerLimits() = default;
  virtual RateLimiter& rate_limiter() noexcept = 0;
  virtual SpendLedger& ledger() noexcept = 0;
  /// The server is shutting down: closes what the thread holds open.
  virtual void shutdown() {}
};

class LimitsFactory {
 public:
  virtual ~LimitsFactory() = default;
  /// Called once per I/O thread, before it serves; `ioc` is that thread's.
  virtual std::unique_ptr<WorkerLimits> make_worker(boost::asio::io_context& ioc) = 0;
};

/// The in-process shape: one limiter and one ledger for every thread (sharded by key).
class LocalLimits final : public LimitsFactory {
 public:
  explicit LocalLimits(unsigned soft_threshold_percent = 80) : ledger_(soft_threshold_percent) {}

  std::unique_ptr<WorkerLimits> make_worker(boost::asio::io_context& ioc) override;

  LocalRateLimiter& rate_limiter() noexcept { return limiter_; }
  LocalSpendLedger& ledger() noexcept { return ledger_; }

 private:
  LocalSpendLedger ledger_;
  LocalRateLimiter limiter_{&ledger_};
};

}  // namespace llmgw::limits
