#include "app/health.hpp"

#include "core/log.hpp"
#include "core/thread.hpp"

namespace llmgw::app {

using proxy::DependencyHealth;

HealthMonitor::HealthMonitor(DependencyHealth& health, std::function<bool()> store_up,
                             std::function<bool()> archive_up,
                             std::optional<redis::Options> redis,
                             std::chrono::milliseconds interval)
    : health_(health),
      store_up_(std::move(store_up)),
      archive_up_(std::move(archive_up)),
      interval_(interval) {
  if (redis) {
    redis_ = std::make_unique<redis::BlockingClient>(std::move(*redis));
  }
}

HealthMonitor::~HealthMonitor() {
  stop();
}

void HealthMonitor::check() {
  const auto put = [](std::atomic<std::int8_t>& to, bool up, std::string_view what) {
    const std::int8_t now = up ? DependencyHealth::Up : DependencyHealth::Down;
    if (to.exchange(now, std::memory_order_relaxed) != now) {
      core::LogLine(up ? core::LogLevel::Info : core::LogLevel::Warn,
                    up ? "dependency healthy" : "dependency down")
          .field("dependency", what)
          .emit();
    }
  };
  put(health_.store, store_up_(), "store");
  put(health_.archive, archive_up_(), "archive");
  if (redis_) {
    const auto reply = redis_->command({"PING"});
    put(health_.redis, reply && reply->type == redis::Reply::Type::Status, "redis");
  }
}

void HealthMonitor::start() {
  check();
  thread_ = std::thread([this] {
    core::name_this_thread("llmgw-health");
    core::make_this_thread_background(0);
    std::unique_lock lock(mu_);
    while (!cv_.wait_for(lock, interval_, [this] { return stopping_; })) {
      lock.unlock();
      check();
      lock.lock();
    }
  });
}

void HealthMonitor::stop() {
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) {
    thread_.join();
  }
}

}  // namespace llmgw::app
