#pragma once
/// The distributed shape's limits: each I/O thread gets its own Redis connection, with a
/// RedisRateLimiter and a RedisSpendLedger on it, so replicas share windows and budgets.

#include "limits/worker_limits.hpp"
#include "redis/redis_client.hpp"

#include <utility>

namespace llmgw::redis {

class RedisLimits final : public limits::LimitsFactory {
 public:
  RedisLimits(Options options, unsigned soft_threshold_percent)
      : options_(std::move(options)), soft_percent_(soft_threshold_percent) {}

  std::unique_ptr<limits::WorkerLimits> make_worker(boost::asio::io_context& ioc) override;

 private:
  Options options_;
  unsigned soft_percent_;
};

}  // namespace llmgw::redis
