#pragma once
/// The health thread: once a second it records each dependency's state in a
/// proxy::DependencyHealth, which /readyz and the metrics probes read — the store (did the
/// config reloader's last poll reach it), Redis (a PING on its own connection, when Redis is
/// configured) and the audit archive's sink (did its last upload succeed). Nothing on an I/O
/// thread waits for a check.

#include "proxy/proxy.hpp"
#include "redis/redis_client.hpp"

#include <chrono>
#include <condition_variable>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <thread>

namespace llmgw::app {

class HealthMonitor {
 public:
  /// `store_up` and `archive_up` read their states; `redis` is nullopt without Redis.
  HealthMonitor(proxy::DependencyHealth& health, std::function<bool()> store_up,
                std::function<bool()> archive_up, std::optional<redis::Options> redis,
                std::chrono::milliseconds interval = std::chrono::seconds(1));
  ~HealthMonitor();
  HealthMonitor(const HealthMonitor&) = delete;
  HealthMonitor& operator=(const HealthMonitor&) = delete;

  /// One round of checks now, then one per interval on the thread.
  void start();
  void stop();

 private:
  void check();

  proxy::DependencyHealth& health_;
  std::function<bool()> store_up_;
  std::function<bool()> archive_up_;
  std::unique_ptr<redis::BlockingClient> redis_;
  std::chrono::milliseconds interval_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool stopping_ = false;
  std::thread thread_;
};

}  // namespace llmgw::app
