#include "proxy/config_reloader.hpp"

#include "core/log.hpp"
#include "core/thread.hpp"

#include <malloc.h>

namespace llmgw::proxy {

ConfigReloader::ConfigReloader(store::Store& store, catalog::Catalog& catalog,
                               auth::KeyInvalidations& keys, std::chrono::milliseconds interval,
                               catalog::SeriesIds series)
    : store_(store),
      catalog_(catalog),
      keys_(keys),
      interval_(interval),
      series_(std::move(series)) {}

ConfigReloader::~ConfigReloader() { stop(); }

void ConfigReloader::start() {
  {
    const auto data = store_.load_catalog();
    catalog_.publish(catalog::Snapshot::build(data, series_));
    seen_version_ = data.version;
  }
  malloc_trim(0);
  thread_ = std::thread([this] {
    core::name_this_thread("llmgw-reload");
    core::make_this_thread_background(0);
    run();
  });
}

void ConfigReloader::stop() {
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
  }
  cv_.notify_one();
  if (thread_.joinable()) {
    thread_.join();
  }
}

bool ConfigReloader::poll_once() {
  std::lock_guard poll_lock(poll_mutex_);
  try {
    const std::int64_t version = store_.config_version();
    healthy_.store(true, std::memory_order_relaxed);
    if (failing_) {
      failing_ = false;
      core::LogLine(core::LogLevel::Info, "config store reachable again").emit();
    }
    if (version == seen_version_) {
      return false;
    }
    // Keys first: a disabled key must stop working no later than a catalog change shows.
    std::vector<auth::KeyDigest> changed;
    for (const auto& hex : store_.key_hashes_changed_since(seen_version_)) {
      auth::KeyDigest d;
      if (auth::parse_digest_hex(hex, d)) {
        changed.push_back(d);
      }
    }
    keys_.publish(changed);
    const auto data = store_.load_catalog();
    catalog_.publish(catalog::Snapshot::build(data, series_));
    malloc_trim(0);  // the rows read to build it are garbage now: give the pages back
    core::LogLine(core::LogLevel::Info, "configuration reloaded")
        .field("version", data.version)
        .field("keys_changed", static_cast<std::uint64_t>(changed.size()))
        .emit();
    // `version`, not data.version: a change landing between the two reads is seen next poll.
    seen_version_ = version;
    return true;
  } catch (const std::exception& e) {
    healthy_.store(false, std::memory_order_relaxed);
    if (!failing_) {  // logged once per outage, not once per poll
      failing_ = true;
      core::LogLine(core::LogLevel::Warn, "config reload failed; serving the last snapshot")
          .field("error", e.what())
          .emit();
    }
    return false;
  }
}

void ConfigReloader::run() {
  std::unique_lock lock(mutex_);
  while (!stopping_) {
    cv_.wait_for(lock, interval_, [&] { return stopping_; });
    if (stopping_) {
      break;
    }
    lock.unlock();
    poll_once();
    lock.lock();
  }
}

}  // namespace llmgw::proxy
