#include "events/usage_writer.hpp"

#include "core/log.hpp"
#include "core/thread.hpp"

#include <algorithm>

namespace llmgw::events {

namespace {
constexpr int kMaxAttempts = 5;
constexpr std::chrono::milliseconds kRetryDelay{200};
}  // namespace

UsageWriter::UsageWriter(store::Store& store, UsageWriterOptions opts)
    : store_(store), opts_(opts) {}

UsageWriter::~UsageWriter() { stop(); }

void UsageWriter::start() {
  thread_ = std::thread([this] {
    core::name_this_thread("llmgw-usage");
    run();
  });
}

bool UsageWriter::submit(store::UsageRecord&& r) {
  {
    std::lock_guard lock(mutex_);
    if (queue_.size() >= opts_.queue_limit) {
      dropped_.fetch_add(1, std::memory_order_relaxed);
      return false;
    }
    queue_.push_back(std::move(r));
    if (queue_.size() < opts_.batch_size) {
      return true;
    }
  }
  cv_.notify_one();
  return true;
}

void UsageWriter::stop() {
  {
    std::lock_guard lock(mutex_);
    if (stopping_ && !thread_.joinable()) {
      return;
    }
    stopping_ = true;
  }
  cv_.notify_one();
  if (thread_.joinable()) {
    thread_.join();
  }
}

bool UsageWriter::write_batch(std::vector<store::UsageRecord>& batch) {
  for (int attempt = 1; attempt <= kMaxAttempts; ++attempt) {
    try {
      store_.insert_usage(batch);
      written_.fetch_add(batch.size(), std::memory_order_relaxed);
      return true;
    } catch (const std::exception& e) {
      core::LogLine(core::LogLevel::Warn, "usage batch write failed")
          .field("attempt", attempt)
          .field("records", static_cast<std::uint64_t>(batch.size()))
          .field("error", e.what())
          .emit();
      std::this_thread::sleep_for(kRetryDelay * attempt);
    }
  }
  failed_batches_.fetch_add(1, std::memory_order_relaxed);
  return false;
}

void UsageWriter::run() {
  std::vector<store::UsageRecord> taken;
  while (true) {
    bool last = false;
    {
      std::unique_lock lock(mutex_);
      cv_.wait_for(lock, opts_.flush_interval,
                   [&] { return stopping_ || queue_.size() >= opts_.batch_size; });
      taken.swap(queue_);
      last = stopping_;
    }
    bool round_failed = false;
    for (std::size_t i = 0; i < taken.size(); i += opts_.batch_size) {
      const std::size_t n = std::min(opts_.batch_size, taken.size() - i);
      std::vector<store::UsageRecord> batch(std::make_move_iterator(taken.begin() + i),
                                            std::make_move_iterator(taken.begin() + i + n));
      if (!write_batch(batch)) {
        round_failed = true;
        // Put it back in front: it is retried on the next round instead of being lost.
        std::lock_guard lock(mutex_);
        queue_.insert(queue_.begin(), std::make_move_iterator(batch.begin()),
                      std::make_move_iterator(batch.end()));
      }
    }
    taken.clear();
    if (last) {
      std::lock_guard lock(mutex_);
      if (queue_.empty()) {
        break;
      }
      if (round_failed) {
        core::LogLine(core::LogLevel::Error, "usage records not written at shutdown")
            .field("records", static_cast<std::uint64_t>(queue_.size()))
            .emit();
        break;
      }
    }
  }
}

}  // namespace llmgw::events
