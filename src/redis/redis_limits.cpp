#include "redis/redis_limits.hpp"

#include "redis/rate_limits.hpp"
#include "redis/spend_ledger.hpp"

namespace llmgw::redis {

namespace {

class Worker final : public limits::WorkerLimits {
 public:
  Worker(boost::asio::io_context& ioc, const Options& options, unsigned soft_percent)
      : client_(ioc, options), limiter_(client_), ledger_(client_, soft_percent) {}
  limits::RateLimiter& rate_limiter() noexcept override { return limiter_; }
  limits::SpendLedger& ledger() noexcept override { return ledger_; }
  void shutdown() override { client_.close(); }

 private:
  Client client_;
  RedisRateLimiter limiter_;
  RedisSpendLedger ledger_;
};

}  // namespace

std::unique_ptr<limits::WorkerLimits> RedisLimits::make_worker(boost::asio::io_context& ioc) {
  return std::make_unique<Worker>(ioc, options_, soft_percent_);
}

}  // namespace llmgw::redis
