#pragma once
/// Keeps the in-memory configuration equal to the store: polls the config version (cheap,
/// one row) every interval; when it moved — a CLI command, another replica, an admin write —
/// rebuilds the catalog snapshot and tells the key caches which keys changed.

#include "auth/key_cache.hpp"
#include "catalog/catalog.hpp"
#include "store/store.hpp"

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <thread>

namespace llmgw::proxy {

class ConfigReloader {
 public:
  /// `series` gives each route its metric series id (see catalog::SeriesIds); may be empty.
  ConfigReloader(store::Store& store, catalog::Catalog& catalog, auth::KeyInvalidations& keys,
                 std::chrono::milliseconds interval, catalog::SeriesIds series = {});
  ~ConfigReloader();

  /// Loads the catalog now (throws on failure: used at start-up), then starts polling.
  void start();
  void stop();
  /// One poll; returns true if something was reloaded. Never throws (logs instead). Safe to
  /// call from any thread: the admin API calls it after a write so the change is served
  /// before the write is answered.
  bool poll_once();
  /// Whether the last poll reached the store (for /readyz and llmgw_database_up).
  [[nodiscard]] bool healthy() const noexcept { return healthy_.load(std::memory_order_relaxed); }

 private:
  void run();

  store::Store& store_;
  catalog::Catalog& catalog_;
  auth::KeyInvalidations& keys_;
  std::chrono::milliseconds interval_;
  catalog::SeriesIds series_;
  std::int64_t seen_version_ = -1;
  bool failing_ = false;
  std::atomic<bool> healthy_{true};
  std::mutex poll_mutex_;  ///< one poll at a time (the reloader thread or an admin write)
  std::mutex mutex_;
  std::condition_variable cv_;
  bool stopping_ = false;
  std::thread thread_;
};

}  // namespace llmgw::proxy
