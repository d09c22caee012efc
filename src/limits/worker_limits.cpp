#include "limits/worker_limits.hpp"

namespace llmgw::limits {

namespace {

class SharedLocal final : public WorkerLimits {
 public:
  SharedLocal(LocalRateLimiter& limiter, LocalSpendLedger& ledger)
      : limiter_(limiter), ledger_(ledger) {}
  RateLimiter& rate_limiter() noexcept override { return limiter_; }
  SpendLedger& ledger() noexcept override { return ledger_; }

 private:
  LocalRateLimiter& limiter_;
  LocalSpendLedger& ledger_;
};

}  // namespace

std::unique_ptr<WorkerLimits> LocalLimits::make_worker(boost::asio::io_context&) {
  return std::make_unique<SharedLocal>(limiter_, ledger_);
}

}  // namespace llmgw::limits
